import Dispatch
import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// What the TUI may ask of a running engine. `sluice view` runs with none.
public protocol EngineControl: AnyObject, Sendable {
    var gate: InterceptGate { get }
    var openConnections: [OpenConnection] { get }
    @discardableResult func kill(_ flowID: FlowID) -> Bool
    @discardableResult func send(_ data: Data, kind: MessageKind, direction: Direction, into flowID: FlowID) -> Bool
}

extension Engine: EngineControl {}

/// Sends a recorded request again, as a new flow linked to the original. The executable provides it (it needs the
/// HTTP module); `completion` gets one line for the status bar, on any thread.
public protocol FlowReplaying: Sendable {
    func replay(_ flowID: FlowID, completion: @escaping @Sendable (_ line: String, _ failed: Bool) -> Void)
}

/// The terminal UI's state and its reactions to keys and engine events. Runs on one thread (the UI thread);
/// disk reads and writes go to a background queue and come back through `inbox`, so no keypress waits on them.
public final class App {
    enum PromptKind: Equatable {
        case filter, intercept, search, save
        /// A text message to send into the open WebSocket: to the server (`up`) or to the client.
        case send(Direction)

        var label: String {
            switch self {
            case .filter: return "filter"
            case .intercept: return "intercept"
            case .search: return "search"
            case .save: return "save as"
            case .send(let direction): return direction == .up ? "send to server" : "send to client"
            }
        }
    }

    struct Prompt: Equatable {
        var kind: PromptKind
        var text: String
        var error: String?
    }

    struct ConnectionRow {
        var connection: OpenConnection
        var upRate: Double = 0
        var downRate: Double = 0
    }

    // Collaborators
    let engine: EngineControl?
    /// Set when this UI runs an engine that can replay HTTP requests.
    public var replayer: FlowReplaying?
    let store: Store?
    let feed: LiveFeed?
    /// The writer filling `store` while this UI watches it live: the feed is ahead of the store by up to a batch.
    let storeProgress: StoreWriteProgress?
    /// Where `w` saves: under the data directory.
    let saveDestination: SaveDestination
    let title: String
    private let background = DispatchQueue(label: "sluice-tui-background")
    private let inbox = Inbox()

    // Screen
    var view: ViewKind = .flows
    private var viewStack: [ViewKind] = []
    var running = true
    var dirty = true

    // Flows
    private(set) var rows: [FlowRow] = []
    private var rowIndex: [FlowID: Int] = [:]
    private(set) var visible: [Int] = []
    /// How many of `rows` have been checked against the filter; new rows start here.
    private var scannedCount = 0
    var viewFilter: Filter?
    private var clearedThrough: FlowID?
    var selected = 0
    var scroll = 0
    var follow = true
    var marks: FlowMarks
    private var search = ""
    var historyLoading = false

    // Everything else
    var prompt: Prompt?
    var status: (text: String, isError: Bool)?
    var held: [HeldMessage] = []
    var heldSelected = 0
    var connections: [ConnectionRow] = []
    var connectionSelected = 0
    var detail: FlowDetail?
    var helpScroll = 0
    var editor: (editor: HexEditor, holdID: Int64)?
    private var lastSample: (time: Date, bytes: [FlowID: (Int64, Int64)])?
    /// The open detail's flow changed; reload it on a later tick (at most a few times a second), once the store has
    /// what the feed has shown of it (`storeHasAllShown`).
    private var detailStale = false
    private var lastDetailLoad = Date.distantPast

    /// `marks` keeps the operator's marks in the store (the writer, while recording); `dataDirectory` is where `w`
    /// saves (its `exports/`).
    public init(
        engine: EngineControl?, store: Store?, feed: LiveFeed?, storeProgress: StoreWriteProgress? = nil, marks: FlowMarking? = nil,
        dataDirectory: DataDirectory = DataDirectory(path: Configuration.defaultDataDirectory), title: String
    ) {
        self.engine = engine
        self.store = store
        self.feed = feed
        self.storeProgress = storeProgress
        self.marks = FlowMarks(writer: marks)
        self.saveDestination = SaveDestination(dataDirectory: dataDirectory)
        self.title = title
    }

    // MARK: Loading and events

    /// Reads the store's history in the background: the newest screenful first, so the first screen comes at
    /// once, then the rest. Live flows that arrive meanwhile are kept.
    public func loadHistory(limit: Int = 100_000) {
        guard let store else { return }
        historyLoading = true
        background.async { [inbox] in
            do {
                let newest = try store.flowsWithPreview(limit: min(limit, 500))
                let newestRows = newest.map(FlowRow.init(stored:))
                let newestMarks = newest.filter(\.marked).map(\.id)
                inbox.post { app in app.mergeHistory(newestRows, marked: newestMarks, complete: newest.count < 500) }
                guard newest.count >= 500 else { return }
                let all = try store.flowsWithPreview(limit: limit)
                let allRows = all.map(FlowRow.init(stored:))
                let allMarks = all.filter(\.marked).map(\.id)
                inbox.post { app in app.mergeHistory(allRows, marked: allMarks, complete: true) }
            } catch {
                inbox.post { app in
                    app.historyLoading = false
                    app.setStatus("\(error)", isError: true)
                }
            }
        }
    }

    /// `marked`: the stored marks among `history`.
    func mergeHistory(_ history: [FlowRow], marked: [FlowID] = [], complete: Bool = true) {
        historyLoading = !complete
        // Flows that went live while history loaded are newer or fresher than their stored rows: keep them, and
        // the marks of rows listed already (a mark made since the store was read wins).
        marks.adopt(marked.filter { rowIndex[$0] == nil })
        var merged = history.filter { rowIndex[$0.id] == nil }
        merged += rows
        merged.sort { $0.id < $1.id }
        rows = merged
        rowIndex = Dictionary(rows.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { _, last in last })
        recomputeVisible()
    }

    /// Applies engine events that arrived since the last tick.
    func apply(_ events: [ProxyEvent]) {
        guard !events.isEmpty else { return }
        var newRows = false
        for event in events where event.flowID != nil && event.flowID == detail?.flowID {
            detailStale = true
        }
        for event in events {
            switch event {
            case .flowOpened(let opened):
                guard rowIndex[opened.flowID] == nil else { continue }
                rowIndex[opened.flowID] = rows.count
                rows.append(FlowRow(opened: opened))
                newRows = true
            case .message(let message):
                guard let index = rowIndex[message.flowID] else { continue }
                if message.direction == .up, rows[index].previewUp.isEmpty { rows[index].previewUp = message.payload }
                if message.direction == .down, rows[index].previewDown.isEmpty { rows[index].previewDown = message.payload }
            case .flowError(let error):
                guard let index = rowIndex[error.flowID] else { continue }
                rows[index].error = rows[index].error ?? "\(error.phase.rawValue): \(error.message)"
            case .flowClosed(let closed):
                guard let index = rowIndex[closed.flowID] else { continue }
                rows[index].end = closed.time
                rows[index].bytesUp = closed.bytesUp
                rows[index].bytesDown = closed.bytesDown
                rows[index].state = closed.state
                rows[index].error = closed.error
            case .httpRequest(let request):
                guard let index = rowIndex[request.flowID] else { continue }
                rows[index].request(method: request.method, url: request.url, headers: request.headers, replayOf: request.replayOf)
            case .httpResponse(let response):
                guard let index = rowIndex[response.flowID] else { continue }
                rows[index].response(status: response.status, headers: response.headers)
            case .messageHeld, .messageReleased:
                refreshHeld()
            case .command, .commandDecided, .commandFinished, .alert:
                // The Commands and Alerts views come with the SSH issue's TUI slice.
                break
            }
        }
        if let storeProgress {
            // The writer is the bus's first subscriber: it has received every event the feed has passed on.
            let received = storeProgress.eventsReceived
            for event in events {
                if let id = event.flowID, let index = rowIndex[id] { rows[index].shownAtEvent = received }
            }
        }
        if newRows { appendVisible() }
        dirty = true
    }

    /// Called about 30 times a second by the loop: events, held messages' countdowns, connection rates.
    public func tick(now: Date = Date()) {
        let finished = inbox.take()
        // A detail's messages, the history, a filter's result, a save's outcome: the screen waits for each, so it is
        // drawn on this frame, not at the loop's once-a-second redraw.
        if !finished.isEmpty { dirty = true }
        for action in finished { action(self) }
        if let feed { apply(feed.take()) }
        if !held.isEmpty || view == .intercept { dirty = true }
        if detailStale, let detail, now.timeIntervalSince(lastDetailLoad) > 0.3, storeHasAllShown(of: detail.flowID) {
            loadDetail(detail.flowID)
        }
        if view == .connections, (lastSample.map { now.timeIntervalSince($0.time) >= 1 } ?? true) {
            sampleConnections(now: now)
        }
    }

    func refreshHeld() {
        held = engine?.gate.held ?? []
        heldSelected = min(heldSelected, max(0, held.count - 1))
        dirty = true
    }

    private func sampleConnections(now: Date) {
        let open = engine?.openConnections ?? []
        var bytes: [FlowID: (Int64, Int64)] = [:]
        connections = open.map { connection in
            bytes[connection.flowID] = (connection.bytesUp, connection.bytesDown)
            var row = ConnectionRow(connection: connection)
            if let sample = lastSample, let before = sample.bytes[connection.flowID] {
                let seconds = max(0.001, now.timeIntervalSince(sample.time))
                row.upRate = Double(connection.bytesUp - before.0) / seconds
                row.downRate = Double(connection.bytesDown - before.1) / seconds
            }
            return row
        }
        lastSample = (now, bytes)
        connectionSelected = min(connectionSelected, max(0, connections.count - 1))
        dirty = true
    }

    // MARK: The visible list

    /// What decides whether a row is listed; a value, so it can be taken to the background queue.
    struct Visibility: Sendable {
        var filter: Filter?
        var clearedThrough: FlowID?
        var marked: Set<FlowID>
        var held: Set<FlowID>

        func shows(_ row: FlowRow) -> Bool {
            if let clearedThrough, row.id <= clearedThrough { return false }
            guard let filter else { return true }
            return filter.matches(row.subject(marked: marked.contains(row.id), held: held.contains(row.id)))
        }
    }

    private var visibility: Visibility {
        Visibility(filter: viewFilter, clearedThrough: clearedThrough, marked: marks.ids, held: Set(held.map(\.flowID)))
    }

    private func isVisible(_ row: FlowRow) -> Bool {
        visibility.shows(row)
    }

    /// Lists above this size are filtered on the background queue, so typing a filter never freezes the screen.
    static let backgroundFilterThreshold = 20_000
    private var filterGeneration = 0
    private(set) var filtering = false

    func recomputeVisible() {
        filterGeneration += 1
        let generation = filterGeneration
        let snapshot = rows
        let rule = visibility
        guard snapshot.count > Self.backgroundFilterThreshold, rule.filter != nil else {
            applyVisible(snapshot.indices.filter { rule.shows(snapshot[$0]) }, scanned: snapshot.count)
            return
        }
        filtering = true
        dirty = true
        background.async { [inbox] in
            let indices = snapshot.indices.filter { rule.shows(snapshot[$0]) }
            inbox.post { app in
                guard app.filterGeneration == generation else { return }
                app.filtering = false
                app.applyVisible(indices, scanned: snapshot.count)
                app.appendVisible()
                if let filter = app.viewFilter, app.status?.text.hasSuffix("(filtering…)") == true {
                    app.setStatus("filter: \(filter.text)  (\(app.visible.count) of \(app.rows.count) flows)")
                }
            }
        }
    }

    private func applyVisible(_ indices: [Int], scanned: Int) {
        let selectedID = visible.indices.contains(selected) && visible[selected] < rows.count ? rows[visible[selected]].id : nil
        visible = indices
        scannedCount = scanned
        if follow || selectedID == nil {
            selected = max(0, visible.count - 1)
        } else if let selectedID, let position = visible.firstIndex(where: { rows[$0].id == selectedID }) {
            selected = position
        } else {
            selected = min(selected, max(0, visible.count - 1))
        }
        dirty = true
    }

    private func appendVisible() {
        guard !filtering else { return }
        let rule = visibility
        for index in scannedCount..<rows.count where rule.shows(rows[index]) {
            visible.append(index)
        }
        scannedCount = rows.count
        if follow { selected = max(0, visible.count - 1) }
    }

    var selectedRow: FlowRow? {
        visible.indices.contains(selected) && visible[selected] < rows.count ? rows[visible[selected]] : nil
    }

    // MARK: Keys

    /// Reacts to one key. Returns quickly: nothing here waits on the network or the disk.
    public func handle(_ key: Key) {
        dirty = true
        if key == .resize { return }
        if editor != nil {
            handleEditor(key)
            return
        }
        if prompt != nil {
            handlePrompt(key)
            return
        }
        status = nil
        guard let binding = Bindings.binding(for: key, in: view) else { return }
        if let reason = capabilities.disabledReason(binding) {
            return setStatus("\(key): \(reason)", isError: true)
        }
        perform(binding.action)
    }

    /// What this UI can do, which decides the keys it offers: `sluice view` has no engine.
    var capabilities: Capabilities {
        Capabilities(engine: engine != nil, replayer: replayer != nil)
    }

    func perform(_ action: Action) {
        switch action {
        case .quit:
            running = false
        case .help:
            show(.help)
        case .back:
            if let previous = viewStack.popLast() { view = previous } else { view = .flows }
            if view != .detail { detail = nil }
        case .show(let kind):
            show(kind)
        case .up: move(-1)
        case .down: move(1)
        case .pageUp: move(-pageSize)
        case .pageDown: move(pageSize)
        case .top: move(Int.min / 2)
        case .bottom: move(Int.max / 2)
        case .open:
            openSelected()
        case .follow:
            follow.toggle()
            if follow { selected = max(0, visible.count - 1) }
            setStatus(follow ? "following new flows" : "follow off")
        case .filter:
            prompt = Prompt(kind: .filter, text: viewFilter?.text ?? "")
        case .intercept:
            prompt = Prompt(kind: .intercept, text: engine?.gate.filter?.text ?? "")
        case .search:
            prompt = Prompt(kind: .search, text: "")
        case .searchNext:
            findNext(from: selected + 1)
        case .mark:
            let id = view == .detail ? detail?.flowID : selectedRow?.id
            if let id {
                setStatus(marks.toggle(id))
                if view == .flows { move(1) }
            }
        case .clearView:
            clearedThrough = rows.last?.id
            recomputeVisible()
            setStatus("view cleared; the store keeps everything")
        case .save:
            prompt = Prompt(kind: .save, text: saveDestination.suggestedPath(at: Date()))
        case .forward:
            decide(.forward(edited: nil))
        case .forwardAll:
            guard let gate = engine?.gate else { return noEngine() }
            let count = gate.held.count
            gate.resolveAll(.forward(edited: nil))
            refreshHeld()
            setStatus("forwarded \(count) held message\(count == 1 ? "" : "s")")
        case .drop:
            decide(.drop)
        case .kill:
            killSelected()
        case .edit:
            guard let message = targetHeld else { return setStatus("nothing held here", isError: true) }
            editor = (HexEditor(Array(message.payload)), message.id)
        case .toggleHex:
            detail?.hex.toggle()
        case .replay:
            replaySelected()
        case .sendToServer, .sendToClient:
            guard engine != nil else { return noEngine() }
            guard detail != nil else { return }
            prompt = Prompt(kind: .send(action == .sendToServer ? .up : .down), text: "")
        }
    }

    private func show(_ kind: ViewKind) {
        guard kind != view else { return }
        viewStack.append(view)
        if viewStack.count > 8 { viewStack.removeFirst() }
        view = kind
        if kind == .intercept { refreshHeld() }
        if kind == .connections { sampleConnections(now: Date()) }
    }

    var contentHeight: Int = 20
    private var pageSize: Int { max(1, contentHeight - 2) }

    private func move(_ delta: Int) {
        switch view {
        case .flows:
            guard !visible.isEmpty else { return }
            selected = max(0, min(visible.count - 1, selected + delta))
            follow = selected == visible.count - 1 && delta > 0 ? follow : false
        case .intercept:
            heldSelected = max(0, min(max(0, held.count - 1), heldSelected + delta))
        case .connections:
            connectionSelected = max(0, min(max(0, connections.count - 1), connectionSelected + delta))
        case .detail:
            let current = detail?.scroll ?? 0
            detail?.scroll = max(0, current + delta)
        case .help:
            helpScroll = max(0, min(Bindings.helpLines(capabilities).count - 1, helpScroll + delta))
        case .commands, .alerts:
            break
        }
    }

    private func openSelected() {
        let id: FlowID?
        switch view {
        case .intercept: id = held.indices.contains(heldSelected) ? held[heldSelected].flowID : nil
        case .connections: id = connections.indices.contains(connectionSelected) ? connections[connectionSelected].connection.flowID : nil
        default: id = selectedRow?.id
        }
        guard let id else { return }
        show(.detail)
        loadDetail(id)
    }

    /// The detail shows what the store has now, and loads again once the store has everything the feed has shown
    /// of the flow: a flow opened the moment it closed is still on its way to the disk.
    func loadDetail(_ id: FlowID) {
        detailStale = !storeHasAllShown(of: id)
        lastDetailLoad = Date()
        var next = FlowDetail(flowID: id)
        if let current = detail, current.flowID == id {
            next.hex = current.hex
            next.scroll = current.scroll
            next.messages = current.messages
        }
        detail = next
        guard let store else { return }
        detailReads += 1
        background.async { [inbox] in
            do {
                let contents = try FlowDetail.read(id, from: store)
                inbox.post { app in
                    app.detailReads -= 1
                    guard app.detail?.flowID == id else { return }
                    app.detail?.show(contents)
                }
            } catch {
                inbox.post { app in
                    app.detailReads -= 1
                    guard app.detail?.flowID == id else { return }
                    app.detail?.loadError = "\(error)"
                }
            }
        }
    }

    /// Detail reads under way. While one is, the loop waits for keys only briefly, so what it brings is drawn as
    /// soon as it is back, not after a whole key wait.
    private(set) var detailReads = 0

    /// Whether the store has every event of flow `id` that the list has shown (always, for flows read from it).
    private func storeHasAllShown(of id: FlowID) -> Bool {
        guard let storeProgress, let index = rowIndex[id] else { return true }
        return storeProgress.eventsWritten >= rows[index].shownAtEvent
    }

    private func findNext(from start: Int) {
        guard !search.isEmpty, !visible.isEmpty else { return }
        let needle = search.lowercased()
        for offset in 0..<visible.count {
            let position = (start + offset) % visible.count
            let row = rows[visible[position]]
            let haystack = "\(row.id) \(row.kind.rawValue) \(row.origin) \(row.server) \(row.summary)".lowercased()
            if haystack.contains(needle) {
                selected = position
                follow = false
                return
            }
        }
        setStatus("no match for '\(search)'", isError: true)
    }

    /// The held message the current screen points at: the selected one in the queue, the flow's oldest in detail.
    var targetHeld: HeldMessage? {
        switch view {
        case .intercept: return held.indices.contains(heldSelected) ? held[heldSelected] : nil
        case .detail: return held.first { $0.flowID == detail?.flowID }
        default: return nil
        }
    }

    private func decide(_ verdict: Verdict) {
        guard let gate = engine?.gate else { return noEngine() }
        guard let message = targetHeld else { return setStatus("nothing held here", isError: true) }
        if gate.resolve(message.id, verdict) {
            setStatus("message \(message.sequence) of flow \(message.flowID) \(verdict.disposition)")
        } else {
            setStatus("that message was already decided", isError: true)
        }
        refreshHeld()
    }

    private func killSelected() {
        guard let engine else { return noEngine() }
        let id: FlowID?
        switch view {
        case .connections: id = connections.indices.contains(connectionSelected) ? connections[connectionSelected].connection.flowID : nil
        case .intercept, .detail:
            if let message = targetHeld {
                engine.gate.resolve(message.id, .kill)
                refreshHeld()
                return setStatus("flow \(message.flowID) killed")
            }
            id = detail?.flowID
        default: id = selectedRow?.id
        }
        guard let id else { return }
        setStatus(engine.kill(id) ? "flow \(id) killed" : "flow \(id) is not open", isError: !engine.openConnections.contains { $0.flowID == id })
        lastSample = nil
    }

    private func replaySelected() {
        guard let replayer else { return noEngine() }
        guard let id = view == .detail ? detail?.flowID : selectedRow?.id else { return }
        setStatus("replaying flow \(id)…")
        replayer.replay(id) { [inbox] line, failed in
            inbox.post { app in app.setStatus(line, isError: failed) }
        }
    }

    private func noEngine() {
        setStatus("read-only: no engine in `sluice view`", isError: true)
    }

    public func setStatus(_ text: String, isError: Bool = false) {
        status = (text, isError)
        dirty = true
    }

    // MARK: Prompt

    private func handlePrompt(_ key: Key) {
        guard var current = prompt else { return }
        switch key {
        case .escape:
            prompt = nil
            return
        case .enter:
            submit(current)
            return
        case .backspace:
            if !current.text.isEmpty { current.text.removeLast() }
        case .control("u"):
            current.text = ""
        case .character(let character):
            current.text.append(character)
        default:
            return
        }
        current.error = nil
        prompt = current
        if current.kind == .search {
            search = current.text
            findNext(from: selected)
        }
    }

    private func submit(_ current: Prompt) {
        switch current.kind {
        case .filter, .intercept:
            var filter: Filter?
            if !current.text.trimmingCharacters(in: .whitespaces).isEmpty {
                do {
                    filter = try Filter(current.text)
                } catch {
                    prompt?.error = error.description
                    return
                }
            }
            prompt = nil
            if current.kind == .filter {
                viewFilter = filter
                recomputeVisible()
                setStatus(filter.map { "filter: \($0.text)" + (filtering ? "  (filtering…)" : "  (\(visible.count) of \(rows.count) flows)") } ?? "filter cleared")
            } else if let gate = engine?.gate {
                gate.filter = filter
                setStatus(filter.map { "intercepting: \($0.text)" } ?? "intercept off")
            } else {
                noEngine()
            }
        case .search:
            prompt = nil
            search = current.text
        case .save:
            prompt = nil
            save(to: current.text)
        case .send(let direction):
            prompt = nil
            guard let engine else { return noEngine() }
            guard let id = detail?.flowID else { return }
            let sent = engine.send(Data(current.text.utf8), kind: .text, direction: direction, into: id)
            setStatus(
                sent ? "sent \(current.text.utf8.count) bytes to the \(direction == .up ? "server" : "client") of flow \(id)"
                    : "flow \(id) is not an open WebSocket", isError: !sent
            )
        }
    }

    /// Saves the marked flows, or else the listed ones, to a store file (see `SaveDestination`).
    private func save(to typed: String) {
        guard let store else { return setStatus("no store to save from", isError: true) }
        let ids = marks.isEmpty ? visible.map { rows[$0].id } : marks.ids.sorted()
        guard !ids.isEmpty else { return setStatus("nothing to save", isError: true) }
        let destination = saveDestination
        let path = destination.resolve(typed)
        setStatus("saving \(ids.count) flows to \(path)…")
        background.async { [inbox] in
            do {
                try destination.prepare(for: path)
                try store.export(ids, to: path)
                inbox.post { app in app.setStatus("saved \(ids.count) flows to \(path); open with `sluice view \(path)`") }
            } catch {
                inbox.post { app in app.setStatus("\(error)", isError: true) }
            }
        }
    }

    // MARK: Hex editor

    private func handleEditor(_ key: Key) {
        guard var current = editor else { return }
        switch key {
        case .escape:
            editor = nil
            setStatus("edit abandoned; the message is still held")
            return
        case .enter:
            editor = nil
            guard let gate = engine?.gate else { return noEngine() }
            let bytes = current.editor.bytes
            let verdict: Verdict = current.editor.isEdited ? .forward(edited: Data(bytes)) : .forward(edited: nil)
            if gate.resolve(current.holdID, verdict) {
                setStatus(current.editor.isEdited ? "forwarded \(bytes.count) edited bytes" : "forwarded unchanged")
            } else {
                setStatus("that message was already decided (timed out?)", isError: true)
            }
            refreshHeld()
            return
        case .left: current.editor.move(by: -1)
        case .right: current.editor.move(by: 1)
        case .up: current.editor.move(by: -Hexdump.bytesPerLine)
        case .down: current.editor.move(by: Hexdump.bytesPerLine)
        case .home: current.editor.moveTo(0)
        case .end: current.editor.moveTo(current.editor.bytes.count)
        case .tab: current.editor.toggleColumn()
        case .insert: current.editor.toggleInsert()
        case .delete: current.editor.delete()
        case .backspace: current.editor.backspace()
        case .control("z"): current.editor.undo()
        case .control("o"): current.editor.insertLineBreak()
        case .character(let character): current.editor.type(character)
        default: break
        }
        editor = current
    }
}

/// Work finished on the background queue, waiting for the UI thread.
final class Inbox: @unchecked Sendable {
    // @unchecked: `actions` is only touched under `lock`.
    private let lock = NSLock()
    private var actions: [(App) -> Void] = []

    func post(_ action: @escaping (App) -> Void) {
        lock.withLock { actions.append(action) }
    }

    func take() -> [(App) -> Void] {
        lock.withLock {
            defer { actions.removeAll() }
            return actions
        }
    }
}
