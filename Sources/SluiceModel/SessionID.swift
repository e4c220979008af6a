/// Identifies a session: one user reaching one resource through proxies a bastion's front end opened for them
/// (the control API's `/api/sessions`). The engine only carries it, from the listener that accepted a connection
/// to the flows that connection opened, so the store can say which session ran which commands.
public struct SessionID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64

    public init(rawValue: Int64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: Int64) {
        self.rawValue = rawValue
    }

    public var description: String { String(rawValue) }

    public static func < (lhs: SessionID, rhs: SessionID) -> Bool { lhs.rawValue < rhs.rawValue }
}
