import Dispatch
import Foundation
import SluiceModel
import SluiceStore

/// The detail screen's flow and its reads from the store. A read goes to the background queue and its answer
/// comes back through the inbox, so opening a flow never waits on the disk.
///
/// The feed runs ahead of the store by up to a batch: a detail opened the moment its flow closed shows what the
/// store has now, and reads again (at most a few times a second) once the store has everything the list has shown
/// of the flow.
struct DetailLoader {
    private(set) var detail: FlowDetail?
    /// The open flow changed since it was read.
    private(set) var stale = false
    private var lastLoad = Date.distantPast
    /// Reads under way. While one is, the loop waits for keys only briefly, so what it brings is drawn as soon as it
    /// is back, not after a whole key wait.
    private(set) var reads = 0
    private let store: Store?
    private let background: DispatchQueue
    private let inbox: Inbox

    /// The shortest gap between two reads of a changing flow.
    static let reloadGap: TimeInterval = 0.3

    init(store: Store?, background: DispatchQueue, inbox: Inbox) {
        self.store = store
        self.background = background
        self.inbox = inbox
    }

    /// Opens (or reads again) flow `id`. `complete`: the store already has all the list has shown of it.
    mutating func load(_ id: FlowID, complete: Bool, now: Date = Date()) {
        stale = !complete
        lastLoad = now
        var next = FlowDetail(flowID: id)
        if let current = detail, current.flowID == id {
            next.hex = current.hex
            next.scroll = current.scroll
            next.messages = current.messages
            next.focusCommand = current.focusCommand
        }
        detail = next
        guard let store else { return }
        reads += 1
        background.async { [inbox] in
            do {
                let contents = try FlowDetail.read(id, from: store)
                inbox.post { app in app.details.finished(id) { $0.show(contents) } }
            } catch {
                inbox.post { app in app.details.finished(id) { $0.loadError = "\(error)" } }
            }
        }
    }

    private mutating func finished(_ id: FlowID, _ change: (inout FlowDetail) -> Void) {
        reads -= 1
        guard detail?.flowID == id, var current = detail else { return }
        change(&current)
        detail = current
    }

    /// Events arrived: the open flow's mean a read later.
    mutating func noteEvents(_ events: [ProxyEvent]) {
        guard let id = detail?.flowID else { return }
        if events.contains(where: { $0.flowID == id }) { stale = true }
    }

    /// Whether to read the open flow again now.
    func wantsReload(now: Date, complete: (FlowID) -> Bool) -> FlowID? {
        guard stale, let detail, now.timeIntervalSince(lastLoad) > Self.reloadGap, complete(detail.flowID) else { return nil }
        return detail.flowID
    }

    mutating func close() {
        detail = nil
    }

    /// Scrolling, the hex toggle, the command to show: what the screen changes of the open detail.
    mutating func change(_ body: (inout FlowDetail) -> Void) {
        guard var current = detail else { return }
        body(&current)
        detail = current
    }
}
