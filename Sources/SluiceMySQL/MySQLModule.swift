import NIOCore
import SluiceCore
import SluiceModel

/// MySQL or MariaDB to one server (`mysql://LISTEN=>TARGET:3306`): every session relayed with a `MySQLInspector`,
/// one flow per connection, its statements recorded and judged as commands.
public struct MySQLModule: DatabaseProtocolModule {
    public static var schemes: [ListenScheme] { [.mysql] }

    /// Behind a transparent listener: the server greets first and the client waits for it, so there is nothing to
    /// sniff; MySQL is chosen by its port (or by a target's `protocol: mysql`).
    public static var transparentProtocols: [TransparentProtocol] {
        [TransparentProtocol(scheme: .mysql, ports: [3306], opening: .serverFirst)]
    }

    public init() {}

    public func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target else {
            connection.channel.close(promise: nil)
            return
        }
        var limits = RecordingLimits(connection.configuration)
        limits.recordPayloads = limits.recordPayloads && connection.configuration.sqlRecordBytes
        connection.relayToTarget(kind: .mysql, limits: limits) { recorder in
            let commands = CommandLog(
                flowID: recorder.flowID, target: target, bus: connection.bus, policy: connection.policy, gate: connection.gate
            )
            return MySQLInspector(recorder: recorder, gate: connection.gate, commands: commands)
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
    /// MySQL or MariaDB to one server.
    public static let mysql = ListenScheme(name: "mysql", target: .endpoint)
}
