/// A frontend/backend protocol version as sent in StartupMessage.
///
/// Servers accept any 3.x minor and answer a newer minor than they know with NegotiateProtocolVersion, so the
/// framer accepts every 3.x; 3.0 is what every libpq sends by default, 3.2 is PostgreSQL 18's (longer cancel keys).
public struct PostgresProtocolVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// 196608: every libpq before 18, and 18 by default.
    public static let v3_0 = PostgresProtocolVersion(major: 3, minor: 0)
    /// 196610: PostgreSQL 18 with `max_protocol_version=3.2`; BackendKeyData keys become 4 to 256 bytes.
    public static let v3_2 = PostgresProtocolVersion(major: 3, minor: 2)

    public var description: String { "\(major).\(minor)" }
}
