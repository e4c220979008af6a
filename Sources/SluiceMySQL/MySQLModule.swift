import NIOCore
import NIOSSL
import SluiceCore
import SluiceModel
import SluiceTLS

/// MySQL or MariaDB to one server (`mysql://LISTEN=>TARGET:3306`): every session relayed with a `MySQLInspector`,
/// one flow per connection, its statements recorded and judged as commands.
///
/// With `?tls=intercept` a client that asks for TLS gets it with Sluice's certificate for the target's name (minted
/// by its CA), and Sluice's own connection to the server turns TLS at the same point, verified like any of its
/// upstream connections. Without it, SSL is taken out of the server's greeting and the session stays in clear.
public struct MySQLModule: DatabaseProtocolModule {
    public static var schemes: [ListenScheme] { [.mysql] }

    private let tls: TLSInterception?

    /// Behind a transparent listener: the server greets first and the client waits for it, so there is nothing to
    /// sniff; MySQL is chosen by its port (or by a target's `protocol: mysql`).
    public static var transparentProtocols: [TransparentProtocol] {
        [TransparentProtocol(scheme: .mysql, ports: [3306], opening: .serverFirst)]
    }

    /// - Parameter tls: Sluice's CA and upstream TLS settings, for listeners with `tls=intercept`.
    public init(tls: TLSInterception? = nil) {
        self.tls = tls
    }

    public func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target else {
            connection.channel.close(promise: nil)
            return
        }
        var limits = RecordingLimits(connection.configuration)
        limits.recordPayloads = limits.recordPayloads && connection.configuration.sqlRecordBytes
        var legs: (client: () throws -> ChannelHandler, server: () throws -> ChannelHandler)?
        if connection.spec.options["tls"] == "intercept", let tls {
            let hostname = ServerName.sni(for: target.host)
            let leaves = tls.leaves
            let upstream = tls.upstreamContext
            legs = (
                client: { NIOSSLServerHandler(context: try leaves.serverContext(forHost: target.host)) },
                server: { try NIOSSLClientHandler(context: upstream, serverHostname: hostname) }
            )
        }
        connection.relayToTarget(kind: .mysql, limits: limits) { recorder in
            let commands = CommandLog(
                flowID: recorder.flowID, target: target, bus: connection.bus, policy: connection.policy, gate: connection.gate
            )
            return MySQLInspector(recorder: recorder, gate: connection.gate, commands: commands, tls: legs)
        }
    }
}

extension MySQLModule {
    /// The client a replay logs in and sends statements with.
    public func clientSession(login: DatabaseLogin) -> any DatabaseClientSession {
        MySQLClientSession(login: login)
    }
}

extension ListenScheme {
    /// MySQL or MariaDB to one server; `?tls=intercept` terminates TLS on both legs.
    public static let mysql = ListenScheme(name: "mysql", target: .endpoint, options: ["tls": ["intercept", "off"]])
}
