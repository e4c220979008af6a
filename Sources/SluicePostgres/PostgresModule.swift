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

    /// Behind a transparent listener: a client opens with an untyped startup packet (a StartupMessage, an SSLRequest,
    /// a GSSENCRequest or a CancelRequest), recognised on any port.
    public static var transparentProtocols: [TransparentProtocol] {
        [TransparentProtocol(scheme: .postgres, ports: [5432], opening: .clientFirst(sniff))]
    }

    /// A startup packet's head: a 32-bit length (8 to `maxStartupPacketLength`, so its first two bytes are 0) and a
    /// 32-bit code, the protocol version 3.x or one of the special requests at their fixed lengths (PostgreSQL docs
    /// §55.7). Decided on 8 bytes; refused from the first byte that cannot fit.
    static func sniff(_ bytes: ByteBufferView, port: Int) -> SniffResult {
        let head = Array(bytes.prefix(8))
        if head.count >= 1 && head[0] != 0 { return .noMatch }
        if head.count >= 2 && head[1] != 0 { return .noMatch }
        guard head.count == 8 else { return .needMoreData }
        let length = head[0..<4].reduce(0) { $0 << 8 | Int($1) }
        let code = head[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        switch code {
        case PostgresStartupCode.sslRequest, PostgresStartupCode.gssEncRequest:
            return length == 8 ? .match : .noMatch
        case PostgresStartupCode.cancelRequest:
            return length == 16 ? .match : .noMatch
        default:
            // A StartupMessage carries at least `user`, so it is longer than its head.
            return code >> 16 == 3 && length > 8 && length <= PostgresFramer.maxStartupPacketLength ? .match : .noMatch
        }
    }

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
