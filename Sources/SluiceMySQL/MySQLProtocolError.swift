/// Why a MySQL/MariaDB byte stream, packet or response was rejected.
///
/// Peer input is hostile (DESIGN.md): every failure is a value with a one-line reason for the error flow, never a
/// trap. After a framing error the connection must be failed; the framer's state and the buffer are not meaningful
/// any more. A decoding error concerns one payload only. `Kind` is a struct of constants rather than an enum so
/// kinds can be added without breaking callers.
public struct MySQLProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A continuation packet whose sequence id is not its predecessor's plus one: the server would answer
        /// "Packets out of order" (ER_NET_PACKETS_OUT_OF_ORDER) and close.
        public static let packetsOutOfOrder = Kind("packets out of order")
        /// The payload does not match its declared format (a field beyond the end, a count larger than the payload,
        /// a length-encoded integer with the invalid prefix 0xFF, trailing bytes…).
        public static let malformedPacket = Kind("malformed packet")
        /// A greeting whose protocol version is not 10 (HandshakeV10), or a client response without
        /// CLIENT_PROTOCOL_41 (HandshakeResponse320): neither can be relayed by Sluice.
        public static let unsupportedProtocol = Kind("unsupported protocol")
        /// A well-formed packet that cannot come at this point of a command's response (a response-side packet after
        /// the response ended, a payload too large to inspect where a status packet was due…).
        public static let unexpectedPacket = Kind("unexpected packet")
        /// The payload cannot be read without context the caller did not give: an execution that sends no parameter
        /// types when none are known from an earlier one, or a parameter type whose encoding is unknown.
        public static let missingContext = Kind("missing context")
    }

    public var kind: Kind
    /// One line for the log and the error flow: names the packet and what was wrong.
    public var reason: String

    public init(kind: Kind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    static func malformed(_ reason: String) -> MySQLProtocolError {
        MySQLProtocolError(kind: .malformedPacket, reason: reason)
    }

    public var description: String {
        "mysql protocol error (\(kind)): \(reason)"
    }
}
