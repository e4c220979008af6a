import Foundation
import GRDB
import SluiceModel

/// A recorded command as the store holds it: the `Command` event (its fields read through, `stored.text`), then
/// what later events added (when a hold was decided; how it ended). Read by `sluice commands` and the TUI's
/// Commands view.
@dynamicMemberLookup
public struct StoredCommand: Sendable, Equatable, Identifiable {
    /// The row's id: increasing in the order the commands were recorded, so it orders and pages the history
    /// (`Store.commands(before:)`).
    public var id: Int64
    /// The command as the model's event carries it, with its decision so far.
    public var command: Command
    public var decidedAt: Date?
    /// Nil until the protocol said how the command ended (an exec's exit, an SQL result).
    public var outcome: CommandOutcome?
    public var finishedAt: Date?

    public subscript<T>(dynamicMember keyPath: KeyPath<Command, T>) -> T { command[keyPath: keyPath] }

    init(row: Row) throws(StoreError) {
        id = try row.required("id", Int64.self)
        command = Command(
            flowID: FlowID(try row.required("flow_id", Int64.self)), index: try row.required("idx", Int64.self),
            time: Date(timeIntervalSince1970: try row.required("at", Double.self)), kind: try row.required("kind", as: CommandKind.self),
            text: try row.required("text", String.self), user: try row.required("user", String.self),
            target: try row.required("target", String.self), risk: try row.required("risk", as: RiskLevel.self),
            action: try row.required("action", as: PolicyAction.self), rule: row.optional("rule", String.self),
            decision: try row.required("decision", as: CommandDecision.self), decidedBy: try row.optional("decided_by", as: Decider.self),
            database: row.optional("database", String.self), parameters: Self.parameters(row.optional("parameters", String.self))
        )
        decidedAt = row.optional("decided_at", Double.self).map(Date.init(timeIntervalSince1970:))
        finishedAt = row.optional("finished_at", Double.self).map(Date.init(timeIntervalSince1970:))
        let exitStatus = row.optional("exit_status", Int.self)
        let exitSignal = row.optional("exit_signal", String.self)
        let result = row.optional("result", String.self)
        let error = row.optional("error", String.self)
        if finishedAt != nil || exitStatus != nil || exitSignal != nil || result != nil || error != nil {
            outcome = CommandOutcome(exitStatus: exitStatus, exitSignal: exitSignal, result: result, error: error)
        } else {
            outcome = nil
        }
    }
}

/// A recorded alert: raised by a command the policy flagged (`flowID` and `commandIndex` say which), or by the
/// recorder itself (`store.on_full`, with neither). Its fields read through to the model's `Alert`.
@dynamicMemberLookup
public struct StoredAlert: Sendable, Equatable, Identifiable {
    /// The row's id, increasing in the order the alerts were recorded (`Store.alerts(before:)`).
    public var id: Int64
    public var alert: Alert
    /// Someone said they have seen it (`POST /api/alerts/{id}/ack`); the first acknowledgement stays.
    public var acknowledgement: Acknowledgement?

    /// When an alert was acknowledged, and by whom when they said.
    public struct Acknowledgement: Sendable, Equatable {
        public var time: Date
        public var by: String?

        public init(time: Date, by: String?) {
            self.time = time
            self.by = by
        }
    }

    public subscript<T>(dynamicMember keyPath: KeyPath<Alert, T>) -> T { alert[keyPath: keyPath] }

    init(row: Row) throws(StoreError) {
        id = try row.required("id", Int64.self)
        acknowledgement = row.optional("acknowledged_at", Double.self).map { seconds in
            Acknowledgement(time: Date(timeIntervalSince1970: seconds), by: row.optional("acknowledged_by", String.self))
        }
        alert = Alert(
            flowID: row.optional("flow_id", Int64.self).map { FlowID($0) }, commandIndex: row.optional("command_idx", Int64.self),
            time: Date(timeIntervalSince1970: try row.required("at", Double.self)), level: try row.required("level", as: RiskLevel.self),
            rule: try row.required("rule", String.self), message: try row.required("message", String.self)
        )
    }
}

extension Row {
    /// A column that holds one of an enum's names; anything else is a damaged store, said in one line.
    func required<T: RawRepresentable>(_ column: String, as type: T.Type) throws(StoreError) -> T where T.RawValue == String {
        guard let value = try optional(column, as: type) else {
            throw StoreError("damaged store: column \(column) is empty where \(T.self) belongs")
        }
        return value
    }

    func optional<T: RawRepresentable>(_ column: String, as type: T.Type) throws(StoreError) -> T? where T.RawValue == String {
        guard let name = optional(column, String.self) else { return nil }
        guard let value = T(rawValue: name) else {
            throw StoreError("damaged store: column \(column) holds '\(name.visible)', not a \(T.self)")
        }
        return value
    }
}

extension StoredCommand {
    /// Reads the `parameters` column, `{"p": [...]}`; nil when absent or unreadable.
    static func parameters(_ text: String?) -> [String]? {
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        return object["p"] as? [String]
    }
}
