import Dispatch
import SluiceModel
import SluiceStore

/// Reads what the store already holds when the UI starts (or `sluice view` opens a file): the newest screenful of
/// flows first, so the first screen comes at once, then the rest, then the commands and alerts. Runs on the
/// background queue; each part comes back through the inbox and is merged with what went live meanwhile.
enum History {
    /// The first read: about a screenful, drawn before the rest is read.
    static let firstFlows = 500
    static let commandLimit = 100_000
    static let alertLimit = 10_000

    static func load(from store: Store, flowLimit: Int, on background: DispatchQueue, into inbox: Inbox) {
        background.async {
            do {
                let newest = try store.flowsWithPreview(limit: min(flowLimit, firstFlows))
                post(newest, into: inbox)
                if newest.count >= firstFlows {
                    post(try store.flowsWithPreview(limit: flowLimit), into: inbox)
                }
            } catch {
                inbox.post { app in app.historyFailed("\(error)") }
                return
            }
            do {
                let commands = try store.commands(limit: commandLimit)
                let alerts = try store.alerts(limit: alertLimit)
                inbox.post { app in app.mergeCommandHistory(commands, alerts: alerts) }
            } catch {
                inbox.post { app in app.historyFailed("\(error)") }
            }
        }
    }

    private static func post(_ flows: [StoredFlow], into inbox: Inbox) {
        let rows = flows.map(FlowRow.init(stored:))
        let marked = flows.filter(\.marked).map(\.id)
        inbox.post { app in app.mergeHistory(rows, marked: marked, complete: false) }
    }
}
