import Foundation
import GRDB
import SluiceModel

/// A recorded command as the store holds it: the `Command` event's fields, then what later events added (who
/// decided a hold and when; how it ended). Read by `sluice commands` and the TUI's Commands view.
public struct StoredCommand: Sendable, Equatable, Identifiable {
    /// The row's id: increasing in the order the commands were recorded, so it orders and pages the history
    /// (`Store.commands(before:)`).
    public var id: Int64
    public var flowID: FlowID
    /// Position among the flow's commands, from 0 (an alert's `commandIndex` points here).
    public var index: Int64
    public var time: Date
    public var kind: CommandKind
    public var text: String
    public var user: String
    public var target: String
    public var risk: RiskLevel
    /// What the policy asked for.
    public var action: PolicyAction
    public var rule: String?
    public var decision: CommandDecision
    /// Nil while the decision is pending.
    public var decidedBy: Decider?
    public var decidedAt: Date?
    /// Nil until the protocol said how the command ended (an exec's exit, an SQL result).
    public var outcome: CommandOutcome?
    public var finishedAt: Date?

    init(row: Row) throws(StoreError) {
        id = try row.required("id", Int64.self)
        flowID = FlowID(try row.required("flow_id", Int64.self))
        index = try row.required("idx", Int64.self)
        time = Date(timeIntervalSince1970: try row.required("at", Double.self))
        kind = try row.required("kind", as: CommandKind.self)
        text = try row.required("text", String.self)
        user = try row.required("user", String.self)
        target = try row.required("target", String.self)
        risk = try row.required("risk", as: RiskLevel.self)
        action = try row.required("action", as: PolicyAction.self)
        rule = row.optional("rule", String.self)
        decision = try row.required("decision", as: CommandDecision.self)
        decidedBy = try row.optional("decided_by", as: Decider.self)
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

    /// The command as the model's event carries it, e.g. to merge history with live events.
    public var command: Command {
        Command(
            flowID: flowID, index: index, time: time, kind: kind, text: text, user: user, target: target, risk: risk,
            action: action, rule: rule, decision: decision, decidedBy: decidedBy
        )
    }
}

/// A recorded alert: raised by a command the policy flagged (`flowID` and `commandIndex` say which), or by the
/// recorder itself (`store.on_full`, with neither).
public struct StoredAlert: Sendable, Equatable, Identifiable {
    /// The row's id, increasing in the order the alerts were recorded (`Store.alerts(before:)`).
    public var id: Int64
    public var flowID: FlowID?
    public var commandIndex: Int64?
    public var time: Date
    public var level: RiskLevel
    public var rule: String
    public var message: String

    init(row: Row) throws(StoreError) {
        id = try row.required("id", Int64.self)
        flowID = row.optional("flow_id", Int64.self).map { FlowID($0) }
        commandIndex = row.optional("command_idx", Int64.self)
        time = Date(timeIntervalSince1970: try row.required("at", Double.self))
        level = try row.required("level", as: RiskLevel.self)
        rule = try row.required("rule", String.self)
        message = try row.required("message", String.self)
    }

    public var alert: Alert {
        Alert(flowID: flowID, commandIndex: commandIndex, time: time, level: level, rule: rule, message: message)
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
