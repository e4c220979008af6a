import Dispatch
import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// What decides whether a row of any list is listed: the view filter (`f`) and what it can ask about besides the
/// row (marks, holds, the full-text index), and the flow list's `z`. A value, so it can be taken to the background
/// queue; `query` is the part SQL can decide for the store's flows.
struct ListFilter: Sendable {
    var filter: Filter?
    var clearedThrough: FlowID?
    /// Marks made and taken back in this session (`FlowMarks`); other flows are as their rows say.
    var marked: Set<FlowID> = []
    var unmarked: Set<FlowID> = []
    var held: Set<FlowID> = []
    var heldCommands: Set<CommandRow.Key> = []
    /// The flows the full-text index found each bare word in.
    var indexHits: [String: Set<FlowID>] = [:]

    var query: FlowQuery {
        FlowQuery(shape: filter?.shape, after: clearedThrough, marked: marked, unmarked: unmarked, held: held)
    }

    func isMarked(_ id: FlowID, stored: Bool) -> Bool {
        marked.contains(id) || (stored && !unmarked.contains(id))
    }

    func shows(_ row: FlowRow) -> Bool {
        if let clearedThrough, row.id <= clearedThrough { return false }
        guard let filter else { return true }
        var subject = row.subject(marked: isMarked(row.id, stored: row.storedMark), held: held.contains(row.id))
        for (word, flows) in indexHits where flows.contains(row.id) { subject.indexedWords.insert(word) }
        return filter.matches(subject)
    }

    /// A command, with its flow's row when the list has it (for `~k`, `~src`, `~dst`).
    func shows(_ row: CommandRow, flow: FlowRow?) -> Bool {
        guard let filter else { return true }
        let marked = isMarked(row.command.flowID, stored: flow?.storedMark ?? false)
        return filter.matches(row.subject(flow: flow, marked: marked, held: heldCommands.contains(row.key)))
    }

    func shows(_ row: AlertRow, flow: FlowRow?, command: CommandRow?) -> Bool {
        guard let filter else { return true }
        let marked = row.alert.flowID.map { isMarked($0, stored: flow?.storedMark ?? false) } ?? false
        return filter.matches(row.subject(flow: flow, command: command, marked: marked))
    }
}

/// The flow list (screen 1): the window of listed flows around the selection (`FlowWindow`), filled from the store
/// a page at a time (`FlowSource`, on a queue of its own) and from the live flows (`LiveFlows`). One place knows how
/// an event changes a flow's row (`apply`), and one how a page read from the store meets the live rows (`merged`):
/// a live row is fresher than its stored copy and replaces it.
struct FlowList {
    var window = FlowWindow()
    var live = LiveFlows()
    /// `z`: the flows up to this one are no longer listed (the store keeps them).
    var clearedThrough: FlowID?
    /// The flows of the commands the Commands view lists, read with them (the filter looks at a command's flow).
    var commandFlows: [FlowID: FlowRow] = [:]
    private(set) var count = FlowCount()
    /// The flows opened after the count's `through` that `count.listed` includes, so a live flow that comes to match
    /// the filter, or stops matching it, moves the count once.
    private var countedAsListed: Set<FlowID> = []
    /// A reload (a new filter, a jump) is on its way: the window shows the old rows until it comes.
    private(set) var loading = false
    private var readingOlder = false
    private var readingNewer = false
    /// Keys that moved the selection while a reload was on its way.
    private var movedWhileLoading = 0
    private var generation = 0
    private let current = Generation()
    /// The newest count's number (a jump reads the window again, but counts nothing new).
    private var counting = 0
    private let countCurrent = Generation()
    private let source: FlowSource?
    /// A second connection to the store, so a count of millions of rows holds up no page.
    private let counter: FlowSource?
    private let queue = DispatchQueue(label: "sluice-tui-flows")
    private let countQueue = DispatchQueue(label: "sluice-tui-flow-count")
    private let inbox: Inbox

    /// Where a reload puts the selection.
    enum Anchor: Equatable {
        case newest, oldest
        case around(FlowID)
    }

    init(store: Store?, inbox: Inbox) {
        self.source = store.map { FlowSource(store: $0) }
        self.counter = store.flatMap { try? $0.reopened() }.map { FlowSource(store: $0) }
        self.inbox = inbox
        // With no store, every flow is a live one, counted as it opens.
        if store == nil { count = FlowCount(listed: 0, total: 0) }
    }

    /// A flow's row, wherever the list has it.
    subscript(id: FlowID) -> FlowRow? { live[id] ?? window[id] ?? commandFlows[id] }

    /// Whether a read of the window is under way: the loop then looks for its answer more often, and with a filter
    /// the status line says it is still filtering.
    var reading: Bool { loading || readingOlder || readingNewer }

    // MARK: Live events

    /// Applies one engine event to the rows. Returns the flow it opened (to be listed by `arrived`), and the flow
    /// whose row it changed in a way a filter may see (to be checked again by `recheck`): a request, a response, a
    /// first payload, an error, a close, a command.
    mutating func apply(_ event: ProxyEvent) -> (opened: FlowID?, changed: FlowID?) {
        let changed: Bool
        switch event {
        case .flowOpened(let opened):
            return (live.add(FlowRow(opened: opened)) ? opened.flowID : nil, nil)
        case .message(let message):
            // Only a flow's first bytes each way are in its row; later messages change nothing a filter sees.
            var previewed = false
            update(message.flowID) { row in
                if message.direction == .up, row.previewUp.isEmpty {
                    row.previewUp = message.payload
                    previewed = true
                }
                if message.direction == .down, row.previewDown.isEmpty {
                    row.previewDown = message.payload
                    previewed = true
                }
            }
            changed = previewed
        case .flowError(let error):
            changed = update(error.flowID) { row in row.error = row.error ?? "\(error.phase.rawValue): \(error.message)" }
        case .flowClosed(let closed):
            changed = update(closed.flowID) { row in
                row.end = closed.time
                row.bytesUp = closed.bytesUp
                row.bytesDown = closed.bytesDown
                row.state = closed.state
                row.error = closed.error
            }
        case .httpRequest(let request):
            changed = update(request.flowID) { row in
                row.request(method: request.method, url: request.url, headers: request.headers, replayOf: request.replayOf)
            }
        case .httpResponse(let response):
            changed = update(response.flowID) { row in row.response(status: response.status, headers: response.headers) }
        case .command(let command):
            changed = update(command.flowID) { row in row.note(command: command.text, risk: command.risk) }
        case .messageHeld, .messageReleased, .commandDecided, .commandFinished, .alert:
            changed = false
        }
        return (nil, changed ? event.flowID : nil)
    }

    /// Changes a flow's row in the live flows and the window, wherever it is.
    @discardableResult
    private mutating func update(_ id: FlowID, _ change: (inout FlowRow) -> Void) -> Bool {
        let inLive = live.update(id, change) != nil
        let inWindow = window.update(id, change)
        return inLive || inWindow
    }

    /// Flows that opened: counted, and listed at the end of the window when it shows the end.
    mutating func arrived(_ ids: [FlowID], _ rule: ListFilter) {
        for id in ids {
            guard let row = live[id] else { continue }
            let listed = rule.shows(row)
            if id.rawValue > count.through {
                count.total = count.total.map { $0 + 1 }
                // A flow opened and changed within one tick may have been counted by `recheck` already.
                if listed, count.listed != nil, countedAsListed.insert(id).inserted { count.listed? += 1 }
            }
            if !loading { window.arrive(row, listed: listed) }
        }
        // Flows that left the live rows can change no more; their ids need not be remembered.
        if countedAsListed.count > 2 * LiveFlows.capacity, let oldest = live.rows.first?.id {
            countedAsListed = countedAsListed.filter { $0 >= oldest }
        }
    }

    /// A flow's row changed in a way the filter may see: it joins or leaves the window, and the count, when the
    /// filter's answer changed.
    mutating func recheck(_ id: FlowID, _ rule: ListFilter) {
        guard let row = live[id] ?? window[id] else { return }
        let listed = rule.shows(row)
        window.recheck(row, listed: listed)
        // Flows the store's count covered were counted as the store had them; the ones opened since, here.
        guard id.rawValue > count.through, count.listed != nil else { return }
        if listed, countedAsListed.insert(id).inserted {
            count.listed? += 1
        } else if !listed, countedAsListed.remove(id) != nil {
            count.listed? -= 1
        }
    }

    /// The store's writer had received `received` events when these were shown: the flows they touch are in the
    /// store as shown once it has written that many.
    mutating func stamp(_ events: [ProxyEvent], received: Int) {
        for event in events {
            if let id = event.flowID { update(id) { $0.shownAtEvent = received } }
        }
    }

    // MARK: Reading the store

    /// Reads the window again around `anchor` (a new filter, `z`, a jump to either end or to a search's match) and,
    /// for a new rule, counts again. The old rows stay on screen until the new ones come (`App.flowsLoaded`); moves
    /// made meanwhile are made in the new rows.
    mutating func reload(_ rule: ListFilter, around anchor: Anchor, recounting: Bool = true) {
        generation += 1
        current.set(generation)
        loading = true
        readingOlder = false
        readingNewer = false
        movedWhileLoading = 0
        if recounting { recount(rule) }
        let generation = self.generation
        guard let source else {
            let none = FlowSource.Page(rows: [], reached: 0, exhausted: true)
            let older = none
            let newer = FlowSource.Page(rows: [], reached: .max, exhausted: true)
            finishReload(generation: generation, older: older, newer: newer, anchor: anchor, rule)
            return
        }
        let current = self.current
        let size = FlowWindow.pageSize
        queue.async { [inbox] in
            let isCurrent = { current.value == generation }
            do {
                let older: FlowSource.Page
                let newer: FlowSource.Page
                switch anchor {
                case .newest:
                    older = try source.page(.older, from: .max, limit: size, rule: rule, isCurrent: isCurrent)
                    newer = FlowSource.Page(rows: [], reached: .max, exhausted: true, storedThrough: older.storedThrough)
                case .oldest:
                    newer = try source.page(.newer, from: 0, limit: size, rule: rule, isCurrent: isCurrent)
                    older = FlowSource.Page(rows: [], reached: 0, exhausted: true, storedThrough: newer.storedThrough)
                case .around(let id):
                    older = try source.page(.older, from: id.rawValue + 1, limit: size, rule: rule, isCurrent: isCurrent)
                    newer = try source.page(.newer, from: id.rawValue, limit: size, rule: rule, isCurrent: isCurrent)
                }
                inbox.post { app in app.flowsLoaded(generation: generation, older: older, newer: newer, anchor: anchor) }
            } catch {
                inbox.post { app in app.flowsFailed(generation: generation, "\(error)") }
            }
        }
    }

    /// A reload's pages: merged with the live flows and shown. Returns false for a reload superseded since.
    @discardableResult
    mutating func finishReload(
        generation: Int, older: FlowSource.Page, newer: FlowSource.Page, anchor: Anchor, _ rule: ListFilter
    ) -> Bool {
        guard generation == self.generation else { return false }
        loading = false
        let low = older.exhausted ? 0 : older.reached
        let high = newer.exhausted ? Int64.max : newer.reached
        let rows = merged(older.rows + newer.rows, in: low...high, rule)
        let reachedHigh = newer.exhausted ? max(newer.storedThrough, live.newest?.rawValue ?? 0, rows.last?.id.rawValue ?? 0) : high
        var selecting: FlowID?
        switch anchor {
        case .newest: selecting = nil
        case .oldest: selecting = rows.first?.id
        case .around(let id): selecting = id
        }
        window.replace(rows, low: low, high: reachedHigh, reachesStart: older.exhausted, reachesEnd: newer.exhausted, selecting: selecting)
        if movedWhileLoading != 0 { window.move(movedWhileLoading) }
        movedWhileLoading = 0
        extend(rule)
        return true
    }

    /// Asks for the next page beyond an end the selection is near.
    mutating func extend(_ rule: ListFilter) {
        guard !loading else { return }
        if window.wantsOlder, !readingOlder {
            readingOlder = true
            read(.older, from: window.low, rule)
        }
        if window.wantsNewer, !readingNewer {
            readingNewer = true
            read(.newer, from: window.high, rule)
        }
    }

    private mutating func read(_ direction: FlowSource.Direction, from cursor: Int64, _ rule: ListFilter) {
        let generation = self.generation
        guard let source else {
            let page = FlowSource.Page(rows: [], reached: direction == .older ? 0 : .max, exhausted: true)
            return finishRead(direction, from: cursor, generation: generation, page: page, rule)
        }
        let current = self.current
        queue.async { [inbox] in
            do {
                let page = try source.page(
                    direction, from: cursor, limit: FlowWindow.pageSize, rule: rule, isCurrent: { current.value == generation }
                )
                inbox.post { app in app.flowsRead(direction, from: cursor, generation: generation, page: page) }
            } catch {
                inbox.post { app in app.flowsFailed(generation: generation, "\(error)") }
            }
        }
    }

    /// A page beyond one end of the window, read from `cursor`: merged with the live flows and added; then the
    /// next, if still wanted. A page that no longer meets the window (its end was dropped meanwhile) is read again.
    mutating func finishRead(
        _ direction: FlowSource.Direction, from cursor: Int64, generation: Int, page: FlowSource.Page, _ rule: ListFilter
    ) {
        guard generation == self.generation else { return }
        switch direction {
        case .older:
            readingOlder = false
            guard window.low > 0, cursor == window.low else { break }
            let low = page.exhausted ? 0 : min(page.reached, window.low - 1)
            window.prepend(merged(page.rows, in: low...(window.low - 1), rule), low: low, reachesStart: page.exhausted)
        case .newer:
            readingNewer = false
            guard window.high < .max, cursor == window.high else { break }
            let high = page.exhausted ? Int64.max : max(page.reached, window.high + 1)
            let rows = merged(page.rows, in: (window.high + 1)...high, rule)
            let reached = page.exhausted ? max(page.storedThrough, live.newest?.rawValue ?? 0, rows.last?.id.rawValue ?? 0, window.high) : high
            window.append(rows, high: reached, reachesEnd: page.exhausted)
        }
        extend(rule)
    }

    /// Stored rows read for the ids `ids`, with the live flows there: a live row replaces its stored copy, and is
    /// listed if the filter lists it now.
    private func merged(_ stored: [FlowRow], in ids: ClosedRange<Int64>, _ rule: ListFilter) -> [FlowRow] {
        let liveRows = live.rows(in: ids)
        guard !liveRows.isEmpty else { return stored }
        var rows = stored.filter { live[$0.id] == nil }
        rows += liveRows.filter(rule.shows)
        rows.sort { $0.id < $1.id }
        return rows
    }

    /// A read failed (the store could not be read): nothing is on its way any more.
    mutating func failed(generation: Int) {
        guard generation == self.generation else { return }
        loading = false
        readingOlder = false
        readingNewer = false
    }

    // MARK: Counting

    /// Counts the listed and stored flows again, in the background; live flows above the store's count are added.
    private mutating func recount(_ rule: ListFilter) {
        count.listed = nil
        countedAsListed = []
        guard let counter else {
            let rows = live.rows
            countedAsListed = Set(rows.filter(rule.shows).map(\.id))
            count = FlowCount(listed: countedAsListed.count, total: rows.count, isBound: false, through: 0)
            return
        }
        counting += 1
        countCurrent.set(counting)
        let generation = counting
        let current = countCurrent
        // A count of millions of rows takes seconds: the one under way is for a filter no longer shown.
        counter.store.interrupt()
        countQueue.async { [inbox] in
            guard current.value == generation else { return }
            do {
                let counted = try counter.count(rule)
                inbox.post { app in app.flowsCounted(generation: generation, counted) }
            } catch {
                guard current.value == generation else { return }
                inbox.post { app in app.historyFailed("\(error)") }
            }
        }
    }

    mutating func finishCount(generation: Int, _ counted: FlowCount, _ rule: ListFilter) {
        guard generation == counting else { return }
        let newer = live.rows(in: (counted.through + 1)...Int64.max)
        count = counted
        count.total = counted.total.map { $0 + newer.count }
        countedAsListed = counted.listed == nil ? [] : Set(newer.filter(rule.shows).map(\.id))
        count.listed = counted.listed.map { $0 + countedAsListed.count }
    }

    // MARK: Moving

    mutating func move(_ delta: Int, _ rule: ListFilter) {
        guard !loading else {
            movedWhileLoading = max(Int.min / 4, min(Int.max / 4, movedWhileLoading + delta))
            return
        }
        window.move(delta)
        extend(rule)
    }

    /// Home: the oldest listed flow, read again unless the window has it.
    mutating func top(_ rule: ListFilter) {
        if window.reachesStart { return move(Int.min / 2, rule) }
        window.follow = false
        reload(rule, around: .oldest, recounting: false)
    }

    /// End: the newest listed flow.
    mutating func bottom(_ rule: ListFilter) {
        if window.reachesEnd { return move(Int.max / 2, rule) }
        reload(rule, around: .newest, recounting: false)
    }

    // MARK: Searching

    /// Looks for the first listed flow after `id` that `matches` (then from the start up to `id`), in the background;
    /// the answer goes to `App.searchFound` (nil: none).
    func seek(after id: FlowID, _ rule: ListFilter, search: String, matches: @escaping @Sendable (FlowRow) -> Bool) {
        let liveMatch = live.rows.first { $0.id > id && rule.shows($0) && matches($0) }?.id
        let liveWrapped = live.rows.first { $0.id <= id && rule.shows($0) && matches($0) }?.id
        guard let source else {
            let found = liveMatch ?? liveWrapped
            inbox.post { app in app.searchFound(found, search: search) }
            return
        }
        queue.async { [inbox] in
            var found: FlowID?
            do {
                // After the selection, then (wrapping round) from the start to it.
                for (start, end) in [(id.rawValue, Int64.max), (0, id.rawValue)] {
                    var cursor = start
                    while found == nil, cursor < end {
                        let page = try source.page(.newer, from: cursor, limit: 1, rule: rule, also: matches)
                        found = page.rows.first.map(\.id).flatMap { $0.rawValue <= end ? $0 : nil }
                        if page.exhausted { break }
                        cursor = page.reached
                    }
                    if found == nil, start > 0 { found = liveMatch }
                    if found != nil { break }
                }
            } catch {
                inbox.post { app in app.historyFailed("\(error)") }
                return
            }
            let answer = found ?? liveWrapped
            inbox.post { app in app.searchFound(answer, search: search) }
        }
    }

    /// The ids of every listed flow (stored and live), for `w`; answered on the UI thread through the inbox.
    func listedIDs(_ rule: ListFilter, then finish: @escaping @Sendable (App, [FlowID]) -> Void) {
        let liveIDs = live.rows.filter(rule.shows).map(\.id)
        guard let source else {
            inbox.post { app in finish(app, liveIDs) }
            return
        }
        queue.async { [inbox] in
            do {
                let stored = try source.ids(rule)
                let ids = Array(Set(stored).union(liveIDs)).sorted { $0 < $1 }
                inbox.post { app in finish(app, ids) }
            } catch {
                inbox.post { app in app.historyFailed("\(error)") }
            }
        }
    }
}

/// The newest reload's number, read by the background reads to stop when superseded.
final class Generation: @unchecked Sendable {
    // @unchecked: `number` is only touched under `lock`.
    private let lock = NSLock()
    private var number = 0

    var value: Int { lock.withLock { number } }
    func set(_ value: Int) { lock.withLock { number = value } }
}
