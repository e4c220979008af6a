/// A policy file or `policy:` section that cannot be used: one line naming the file, the line when known, and what
/// is wrong, e.g. `policy.yaml:12: rule 'x': unknown key 'foo'`.
public struct PolicyError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var line: Int?
    public var message: String

    public init(source: String, line: Int?, message: String) {
        self.source = source
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(source):\(line): \(message)" }
        return "\(source): \(message)"
    }
}
