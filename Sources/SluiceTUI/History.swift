import Dispatch
import SluiceModel
import SluiceStore

/// Reads the commands and alerts the store already holds when the UI starts (or `sluice view` opens a file), with
/// the flows they belong to; the flows themselves are read a page at a time by the flow list (`FlowList`). Runs on
/// the background queue; the answer comes back through the inbox and is merged with what went live meanwhile.
enum History {
    static let commandLimit = 100_000
    static let alertLimit = 10_000

    static func load(from store: Store, on background: DispatchQueue, into inbox: Inbox) {
        background.async {
            do {
                let commands = try store.commands(limit: commandLimit)
                let alerts = try store.alerts(limit: alertLimit)
                let ids = Set(commands.map(\.command.flowID)).union(alerts.compactMap(\.alert.flowID))
                let flows = try store.flows(ids.sorted { $0 < $1 }).map(FlowRow.init(stored:))
                inbox.post { app in app.mergeCommandHistory(commands, alerts: alerts, flows: flows) }
            } catch {
                inbox.post { app in app.historyFailed("\(error)") }
            }
        }
    }
}
