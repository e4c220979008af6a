import Foundation
import SluiceModel
import SluiceStore

/// The Commands (4) and Alerts (5) screens' rows: every command and alert, live from the engine's events and from
/// the store's history. One place knows how a command event changes a row: `apply`.
struct CommandLog {
    var commands = ListModel<CommandRow>()
    var alerts = ListModel<AlertRow>()

    /// Applies one engine event. Returns what it changed: a new row to check (`added`), or a command whose row
    /// changed in place (its decision: `~held` may now see it differently).
    mutating func apply(_ event: ProxyEvent) -> (added: Bool, changed: CommandRow.Key?) {
        switch event {
        case .command(let command):
            let row = CommandRow(command)
            if commands.append(row) { return (true, nil) }
            // The same command again (a protocol that reports it once judged): the newer copy wins.
            commands.update(row.key) { $0.command = command }
            return (false, row.key)
        case .commandDecided(let decided):
            let key = CommandRow.Key(flowID: decided.flowID, index: decided.index)
            return (false, commands.update(key) { $0.decided(decided) } ? key : nil)
        case .commandFinished(let finished):
            commands.update(CommandRow.Key(flowID: finished.flowID, index: finished.index)) { $0.finished(finished) }
        case .alert(let alert):
            return (alerts.append(AlertRow(alert: alert)), nil)
        default:
            break
        }
        return (false, nil)
    }

    /// The store's history, merged with what arrived live meanwhile (a live row is fresher and stays).
    mutating func merge(commands stored: [StoredCommand], alerts storedAlerts: [StoredAlert]) {
        commands.merge(stored.map(CommandRow.init(stored:))) { a, b in
            (a.command.time, a.command.flowID, a.command.index) < (b.command.time, b.command.flowID, b.command.index)
        }
        alerts.merge(storedAlerts.map { AlertRow(alert: $0.alert, acknowledgement: $0.acknowledgement) }) { $0.alert.time < $1.alert.time }
        acknowledge(storedAlerts)
    }

    /// Marks the listed alerts the store says are acknowledged (an alert that went live has no acknowledgement of
    /// its own). Returns whether a row changed.
    @discardableResult
    mutating func acknowledge(_ storedAlerts: [StoredAlert]) -> Bool {
        var changed = false
        for stored in storedAlerts {
            guard let acknowledgement = stored.acknowledgement else { continue }
            let row = AlertRow(alert: stored.alert)
            alerts.update(row.key) { listed in
                if listed.acknowledgement == nil {
                    listed.acknowledgement = acknowledgement
                    changed = true
                }
            }
        }
        return changed
    }

    /// A flow's commands, in order (the detail screen lists them).
    func commands(of flow: FlowID) -> [CommandRow] {
        commands.rows.filter { $0.command.flowID == flow }.sorted { $0.command.index < $1.command.index }
    }

    /// The command that raised an alert, when the list has it.
    func command(of alert: AlertRow) -> CommandRow? {
        alert.commandKey.flatMap { commands[$0] }
    }
}
