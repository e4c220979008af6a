import NIOCore
import SluiceCore
import SluiceModel

/// PostgreSQL to one server (`postgres://LISTEN=>TARGET:5432`): every session relayed with a `PostgresInspector`,
/// one flow per connection, its statements recorded and judged as commands.
public struct PostgresModule: ProtocolModule {
    public static var schemes: [ListenScheme] { [.postgres] }

    /// Cancel keys of every session this module relays, for the CancelRequests that arrive on connections of their
    /// own.
    private let cancelKeys = PostgresCancelKeys()

    public init() {}

    public func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target else {
            connection.channel.close(promise: nil)
            return
        }
        let cancelKeys = self.cancelKeys
        var limits = RecordingLimits(connection.configuration)
        limits.recordPayloads = limits.recordPayloads && connection.configuration.sqlRecordBytes
        connection.relayToTarget(kind: .postgres, limits: limits) { recorder in
            let commands = CommandLog(
                flowID: recorder.flowID, target: target, bus: connection.bus, policy: connection.policy, gate: connection.gate
            )
            return PostgresInspector(
                recorder: recorder, gate: connection.gate, commands: commands, cancelKeys: cancelKeys, server: target
            )
        }
    }
}

extension ListenScheme {
    /// PostgreSQL to one server.
    public static let postgres = ListenScheme(name: "postgres", target: .endpoint)
}
