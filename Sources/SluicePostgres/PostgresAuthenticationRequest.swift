/// What an Authentication (`R`) message asks of the client (PostgreSQL docs §55.7; PROTOCOLS.md §1).
///
/// Sluice relays authentication and never takes part, so challenge and response payloads (SASL server messages,
/// GSS tokens) are not kept: only the method and the outcome are recorded.
public enum PostgresAuthenticationRequest: Equatable, Sendable {
    /// 0: authentication succeeded; ParameterStatus, BackendKeyData and ReadyForQuery follow.
    case ok
    /// 2: Kerberos V5, no longer supported by servers.
    case kerberosV5
    /// 3: the password in clear.
    case cleartextPassword
    /// 5: MD5 of the password with this 4-byte salt.
    case md5Password(salt: [UInt8])
    /// 7: GSSAPI.
    case gss
    /// 8: a GSSAPI or SSPI continuation token (not kept).
    case gssContinue
    /// 9: SSPI.
    case sspi
    /// 10: SASL with these mechanisms, in the server's order (`SCRAM-SHA-256-PLUS` when the server's leg is TLS).
    case sasl(mechanisms: [String])
    /// 11: a SASL challenge (not kept).
    case saslContinue
    /// 12: the SASL outcome data (not kept).
    case saslFinal
    /// A code this decoder does not know (6 was SCM credentials, long gone); relayed as is.
    case other(code: Int32)

    /// The `R` code for each request.
    public var code: Int32 {
        switch self {
        case .ok: 0
        case .kerberosV5: 2
        case .cleartextPassword: 3
        case .md5Password: 5
        case .gss: 7
        case .gssContinue: 8
        case .sspi: 9
        case .sasl: 10
        case .saslContinue: 11
        case .saslFinal: 12
        case .other(let code): code
        }
    }

    /// The SASL mechanism that binds to the TLS channel, which cannot work through a proxy that terminates TLS.
    public static let scramChannelBindingMechanism = "SCRAM-SHA-256-PLUS"
}
