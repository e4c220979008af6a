/// Everything that can go wrong while setting up TLS: a missing or unsafe file, a bad PEM, a hostile host name.
///
/// A plain one-line message rather than an enum, because every caller does the same thing with it: show it to the
/// operator (or log it against the flow) and stop.
public struct TLSSetupError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String

    public init(_ message: String) {
        // Keep it one line: messages quote library errors and file names, which may hold newlines.
        self.message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    public var description: String { self.message }
}
