import NIOCore
import NIOSSL
import SluiceCore
import SluiceModel
import SluiceTLS

/// PostgreSQL to one server (`postgres://LISTEN=>TARGET:5432`): every session relayed with a `PostgresInspector`,
/// one flow per connection, its statements recorded and judged as commands.
///
/// With `?tls=intercept` Sluice terminates TLS on both legs: clients that ask for TLS get Sluice's certificate for
/// the target's name (minted by its CA), and Sluice's own connection to the server is TLS, verified like any of its
/// upstream connections (`--upstream-ca` adds roots). Without it, SSLRequest is answered `N` and both legs are clear.
public struct PostgresModule: DatabaseProtocolModule {
    public static var schemes: [ListenScheme] { [.postgres] }

    /// Cancel keys of every session this module relays, for the CancelRequests that arrive on connections of their
    /// own.
    private let cancelKeys = PostgresCancelKeys()
    private let tls: TLSInterception?

    /// - Parameter tls: Sluice's CA and upstream TLS settings, for listeners with `tls=intercept`.
    public init(tls: TLSInterception? = nil) {
        self.tls = tls
    }

    public func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target else {
            connection.channel.close(promise: nil)
            return
        }
        let cancelKeys = self.cancelKeys
        var limits = RecordingLimits(connection.configuration)
        limits.recordPayloads = limits.recordPayloads && connection.configuration.sqlRecordBytes
        let intercept = connection.spec.options["tls"] == "intercept"
        var prepareServer: ((Channel) -> EventLoopFuture<Void>)?
        var clientTLS: (() throws -> ChannelHandler)?
        if intercept, let tls {
            let hostname = ServerName.sni(for: target.host)
            prepareServer = { server in PostgresUpstreamTLS.start(on: server, context: tls.upstreamContext, serverHostname: hostname) }
            let leaves = tls.leaves
            clientTLS = { NIOSSLServerHandler(context: try leaves.serverContext(forHost: target.host)) }
        }
        connection.relayToTarget(kind: .postgres, limits: limits, prepareServer: prepareServer) { recorder in
            let commands = CommandLog(
                flowID: recorder.flowID, target: target, bus: connection.bus, policy: connection.policy, gate: connection.gate
            )
            return PostgresInspector(
                recorder: recorder, gate: connection.gate, commands: commands, cancelKeys: cancelKeys, server: target,
                clientTLS: clientTLS, serverLegIsTLS: intercept
            )
        }
    }
}

extension PostgresModule {
    /// The client a replay logs in and sends statements with.
    public func clientSession(login: DatabaseLogin) -> any DatabaseClientSession {
        PostgresClientSession(login: login)
    }
}

extension ListenScheme {
    /// PostgreSQL to one server; `?tls=intercept` terminates TLS on both legs.
    public static let postgres = ListenScheme(name: "postgres", target: .endpoint, options: ["tls": ["intercept", "off"]])
}
