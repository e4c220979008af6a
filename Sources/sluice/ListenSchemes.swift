import SluiceCore
import SluiceHTTP
import SluiceModel
import SluiceMySQL
import SluicePostgres
import SluiceSSH

/// Every listen scheme this build serves, as the modules declare them: what the config file and `--listen` accept.
enum ListenSchemes {
    static let all: [ListenScheme] = [.tcp] + HTTPProxyModule.schemes + SSHModule.schemes + PostgresModule.schemes + MySQLModule.schemes

    /// What Sluice listens on when nothing is configured: an explicit HTTP proxy on loopback, like mitmproxy.
    static let defaultListener = ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 8080), target: nil)
}
