/// Why a PostgreSQL byte stream or message was rejected.
///
/// Peer input is hostile (DESIGN.md): every failure is a value with a one-line reason for the error flow, never a
/// trap. After any error the connection must be failed; the framer's state and the buffer are not meaningful any
/// more. `Kind` is a struct of constants rather than an enum so kinds can be added without breaking callers.
public struct PostgresProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A length field below the protocol's minimum (4 for typed messages, 8 for startup packets), negative, or
        /// over the server's own 1 GiB limit.
        public static let invalidLength = Kind("invalid length")
        /// A message over `maxInspectedMessageBytes` that the proxy would have to buffer whole, or a startup packet
        /// over 10,000 bytes.
        public static let messageTooLarge = Kind("message too large")
        /// A type letter that does not exist in this direction.
        public static let unknownMessageType = Kind("unknown message type")
        /// A startup packet whose code is not a 3.x StartupMessage, SSLRequest, GSSENCRequest or CancelRequest.
        public static let unsupportedStartupCode = Kind("unsupported startup code")
        /// The message body does not match its declared format (missing NUL, count beyond the body, trailing bytes…).
        public static let malformedMessage = Kind("malformed message")
        /// Bytes where the protocol allows none (after a CancelRequest).
        public static let unexpectedData = Kind("unexpected data")
    }

    public var kind: Kind
    /// One line for the log and the error flow: names the message type and what was wrong.
    public var reason: String

    public init(kind: Kind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    static func malformed(_ reason: String) -> PostgresProtocolError {
        PostgresProtocolError(kind: .malformedMessage, reason: reason)
    }

    public var description: String {
        "postgres protocol error (\(kind)): \(reason)"
    }
}
