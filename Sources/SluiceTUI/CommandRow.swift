import Foundation
import SluiceModel
import SluiceStore

/// One command as the Commands view lists it: as captured and judged, then how it was decided and how it ended.
/// Built from the live events (`.command`, `.commandDecided`, `.commandFinished`) or from the store's history.
struct CommandRow: Sendable, Equatable, ListRow {
    struct Key: Hashable, Sendable {
        var flowID: FlowID
        var index: Int64
    }

    var command: Command
    var decidedAt: Date?
    var outcome: CommandOutcome?
    var finishedAt: Date?

    var key: Key { Key(flowID: command.flowID, index: command.index) }

    init(_ command: Command) {
        self.command = command
        if command.decidedBy != nil { decidedAt = command.time }
    }

    init(stored: StoredCommand) {
        command = stored.command
        decidedAt = stored.decidedAt
        outcome = stored.outcome
        finishedAt = stored.finishedAt
    }

    mutating func decided(_ decided: CommandDecided) {
        command.decision = decided.decision
        command.decidedBy = decided.decidedBy
        decidedAt = decided.time
    }

    mutating func finished(_ finished: CommandFinished) {
        outcome = finished.outcome
        finishedAt = finished.time
    }

    /// `user@target` (for SQL `user@database`), or the target alone when the user is not known.
    var userAtTarget: String {
        guard !command.user.isEmpty else { return command.target }
        return "\(command.user)@\(command.database ?? command.target)"
    }

    /// What the policy asked and what became of it: `hold→allowed by operator`, `hold→blocked by timeout`, `hold→…`
    /// while nobody has decided; what the policy settled alone is its action (`allow`, `alert`, `block`).
    var actionText: String {
        let action = command.action.rawValue
        switch (command.decision, command.decidedBy) {
        case (.pending, _): return "\(action)→…"
        case (_, nil), (_, .policy): return action
        case (let decision, let by?): return "\(action)→\(decision.rawValue) by \(by.rawValue)"
        }
    }

    /// How it ended, when the protocol said: `exit 0`, `signal KILL`, an SQL result or error.
    var outcomeText: String? {
        guard let outcome else { return nil }
        if let error = outcome.error { return "error: \(error)" }
        if let signal = outcome.exitSignal { return "signal \(signal)" }
        if let status = outcome.exitStatus { return "exit \(status)" }
        return outcome.result
    }

    /// The outcome and how long the command took: `SELECT 3 · 1.2 ms`, `exit 0 · 2.5 s`; empty until it ended.
    var resultText: String {
        guard let outcome = outcomeText else { return "" }
        guard let finishedAt else { return outcome }
        return outcome + " · " + Formatting.duration(seconds: finishedAt.timeIntervalSince(command.time))
    }

    /// What the view filter sees of the command: `~risk` and `~cmd` match it alone; the flow's kind and endpoints
    /// (when the list knows the flow) serve `~k`, `~src`, `~dst`; its text counts as the client's payload for `~b`.
    func subject(flow: FlowRow?, marked: Bool, held: Bool) -> FilterSubject {
        FilterSubject(
            kind: flow?.kind ?? (command.kind == .sql ? .postgres : .ssh), client: flow?.client, server: flow?.server,
            requestPayloads: [Data(command.text.utf8)], hasError: outcome?.error != nil, isMarked: marked,
            isHeld: held, risk: command.risk, commands: [command.text]
        )
    }

    static func role(_ risk: RiskLevel) -> Role {
        switch risk {
        case .low: return .riskLow
        case .medium: return .riskMedium
        case .high: return .riskHigh
        case .critical: return .riskCritical
        }
    }
}

/// One alert as the Alerts view lists it.
struct AlertRow: Sendable, Equatable, ListRow {
    /// Alerts have no identity of their own in the events; a live alert and its stored copy agree on these.
    struct Key: Hashable, Sendable {
        var flowID: FlowID?
        var commandIndex: Int64?
        var milliseconds: Int64
        var rule: String
        var message: String
    }

    var alert: Alert
    /// Someone acknowledged it (the control API's `POST /api/alerts/{id}/ack`), as the store says.
    var acknowledgement: StoredAlert.Acknowledgement?

    init(alert: Alert, acknowledgement: StoredAlert.Acknowledgement? = nil) {
        self.alert = alert
        self.acknowledgement = acknowledgement
    }

    var key: Key {
        Key(
            flowID: alert.flowID, commandIndex: alert.commandIndex,
            milliseconds: Int64((alert.time.timeIntervalSince1970 * 1000).rounded()), rule: alert.rule, message: alert.message
        )
    }

    /// The command that raised it.
    var commandKey: CommandRow.Key? {
        guard let flowID = alert.flowID, let index = alert.commandIndex else { return nil }
        return CommandRow.Key(flowID: flowID, index: index)
    }

    /// `~risk` matches the alert's level, `~cmd` the command that raised it (its text, when listed) or else the
    /// message.
    func subject(flow: FlowRow?, command: CommandRow?, marked: Bool) -> FilterSubject {
        FilterSubject(
            kind: flow?.kind ?? .ssh, client: flow?.client, server: flow?.server, isMarked: marked, risk: alert.level,
            commands: [command?.command.text ?? alert.message]
        )
    }
}
