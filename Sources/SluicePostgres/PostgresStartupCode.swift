/// The 32-bit codes that open an untyped startup-phase packet (PostgreSQL docs §55.7: StartupMessage, SSLRequest,
/// GSSENCRequest, CancelRequest). The special requests use major version 1234, which no real protocol will reach.
public enum PostgresStartupCode {
    /// 1234.5679: "may I speak TLS?"; answered with one byte, `S` or `N`.
    public static let sslRequest: UInt32 = 80_877_103
    /// 1234.5680: "may I speak GSSAPI encryption?"; answered with one byte, `G` or `N`.
    public static let gssEncRequest: UInt32 = 80_877_104
    /// 1234.5678: cancel the query running on another connection; never answered, the server just closes.
    public static let cancelRequest: UInt32 = 80_877_102

    /// The StartupMessage code for a protocol version: major in the high 16 bits, minor in the low 16.
    public static func startupMessage(_ version: PostgresProtocolVersion) -> UInt32 {
        UInt32(version.major) << 16 | UInt32(version.minor)
    }
}
