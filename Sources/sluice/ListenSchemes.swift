import SluiceCore
import SluiceHTTP
import SluiceModel
import SluiceMySQL
import SluicePostgres
import SluiceSSH

/// Every listen scheme this build serves, as the modules declare them: what the config file and `--listen` accept.
enum ListenSchemes {
    static let all: [ListenScheme] =
        Configuration.coreSchemes + HTTPProxyModule.schemes + SSHModule.schemes + PostgresModule.schemes + MySQLModule.schemes

    /// Every protocol transparent listeners can hand connections to, in the order they are asked about first bytes:
    /// what a target's `protocol:` may name.
    static let protocols: [TransparentProtocol] =
        SSHModule.transparentProtocols + PostgresModule.transparentProtocols + HTTPProxyModule.transparentProtocols
        + MySQLModule.transparentProtocols

    /// What Sluice listens on when nothing is configured: an explicit HTTP proxy on loopback, like mitmproxy.
    static let defaultListener = ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 8080), target: nil)
}
