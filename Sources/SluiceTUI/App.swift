import Dispatch
import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// What the TUI may ask of a running engine. `sluice view` runs with none.
public protocol EngineControl: AnyObject, Sendable {
    /// The queue of held messages and commands, and its filter.
    var intercept: any InterceptQueue { get }
    var openConnections: [OpenConnection] { get }
    /// The listeners running, and the schemes a new one may use.
    var listeners: [RunningListener] { get }
    var listenSchemes: [ListenScheme] { get }
    @discardableResult func listen(_ spec: ListenSpec) throws(EngineError) -> RunningListener
    @discardableResult func stopListening(_ id: Int) -> RunningListener?
    @discardableResult func kill(_ flowID: FlowID) -> Bool
    @discardableResult func send(_ data: Data, kind: MessageKind, direction: Direction, into flowID: FlowID) -> Bool
}

extension Engine: EngineControl {
    public var intercept: any InterceptQueue { gate }
}

/// Sends recorded traffic again, as a new flow linked to the original. The executable provides it (it needs the
/// protocol modules); completions get one line for the status bar, on any thread.
public protocol FlowReplaying: Sendable {
    /// An HTTP flow's request.
    func replay(_ flowID: FlowID, completion: @escaping @Sendable (_ line: String, _ failed: Bool) -> Void)
    /// One recorded SQL statement, against the target its session went to, logged in as its user.
    func rerun(_ statement: StatementRerun, password: String?, completion: @escaping @Sendable (RerunOutcome) -> Void)
}

/// The terminal UI: takes keys and engine events on one thread (the UI thread) and dispatches them to the models
/// that own each job: the lists (`FlowList`, `CommandLog`), the detail (`DetailLoader`), the intercept queue
/// (`InterceptController`), the connections (`ConnectionMonitor`) and the prompt (`Prompt`). Disk reads and writes
/// go to a background queue and come back through `inbox`, so no keypress waits on them.
public final class App {
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
    let background = DispatchQueue(label: "sluice-tui-background")
    let inbox = Inbox()

    // Screen
    var view: ViewKind = .flows
    private var viewStack: [ViewKind] = []
    var running = true
    var dirty = true
    var contentHeight: Int = 20
    var helpScroll = 0

    // What each screen shows
    var flows: FlowList
    var log = CommandLog()
    var details: DetailLoader
    /// The recording player of an SSH flow's detail (`p`, or Enter on a command).
    var recording: RecordingPane
    var intercept = InterceptController()
    var connections = ConnectionMonitor()
    /// The view filter (`f`), one for every list.
    var viewFilter: Filter?
    var marks: FlowMarks
    var search = ""
    var historyLoading = false
    /// When the Alerts view next reads which alerts are acknowledged.
    private var nextAcknowledgementRead = Date.distantPast
    var prompt: Prompt?
    /// Passwords typed for re-runs, by `user@target`: in memory for this session only, never stored or logged.
    var rerunPasswords: [String: String] = [:]
    var status: StatusMessage?

    /// `marks` keeps the operator's marks in the store (the writer, while recording); `dataDirectory` is where `w`
    /// saves (its `exports/`).
    /// Reads the risk policy again (`R` in Commands and Alerts); returns the line to show. Set by the executable,
    /// which knows where the policy came from.
    public var reloadPolicy: (() -> String)?
    /// What is wrong with the engine's connection now (a recorder attached to through its API that stopped
    /// answering); nil while all is well. Read every tick; a change is shown on the status line.
    public var connectionProblem: (() -> String?)?
    /// The store's full-text index, when it has one: bare words of the filter and searches are looked up in it.
    public var searchIndex: SearchIndex?
    /// What the index answered for each word looked up: the flows it found the word in.
    var indexHits: [String: Set<FlowID>] = [:]
    private var shownProblem: String?

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
        self.flows = FlowList(store: store, inbox: inbox)
        self.details = DetailLoader(store: store, background: background, inbox: inbox)
        self.recording = RecordingPane(background: background, inbox: inbox)
    }

    // MARK: What the screens read

    /// The flows the window holds, listed, in order.
    var listed: [FlowRow] { flows.window.rows }
    var selectedRow: FlowRow? { flows.window.selectedRow }
    /// A new filter's rows are being read, or the filter's next matches looked for.
    var filtering: Bool { viewFilter != nil && flows.reading }
    var held: [HeldMessage] { intercept.held }
    var detail: FlowDetail? { details.detail }
    /// Reads the screen waits for (the loop waits for keys briefly while there are).
    var detailReads: Int { details.reads + (flows.reading ? 1 : 0) }

    /// What the view filter decides with, for every list.
    var listFilter: ListFilter {
        ListFilter(
            filter: viewFilter, clearedThrough: flows.clearedThrough, marked: marks.marked, unmarked: marks.unmarked,
            held: Set(held.map(\.flowID)),
            heldCommands: Set(held.compactMap { $0.command.map { CommandRow.Key(flowID: $0.flowID, index: $0.index) } }), indexHits: indexHits
        )
    }

    // MARK: Loading and events

    /// Reads the newest flows of the store (a page: the rest is read as the selection moves), then the commands and
    /// alerts (see `History`). Live flows that arrive meanwhile are kept.
    public func loadHistory() {
        flows.reload(listFilter, around: .newest)
        guard let store else { return }
        historyLoading = true
        History.load(from: store, on: background, into: inbox)
    }

    /// A reload's pages are back (see `FlowList.reload`).
    func flowsLoaded(generation: Int, older: FlowSource.Page, newer: FlowSource.Page, anchor: FlowList.Anchor) {
        guard flows.finishReload(generation: generation, older: older, newer: newer, anchor: anchor, listFilter) else { return }
        refreshFilterStatus()
    }

    /// A page beyond one end of the window is back.
    func flowsRead(_ direction: FlowSource.Direction, from cursor: Int64, generation: Int, page: FlowSource.Page) {
        flows.finishRead(direction, from: cursor, generation: generation, page: page, listFilter)
        refreshFilterStatus()
    }

    func flowsFailed(generation: Int, _ message: String) {
        flows.failed(generation: generation)
        historyFailed(message)
    }

    func flowsCounted(generation: Int, _ counted: FlowCount) {
        flows.finishCount(generation: generation, counted, listFilter)
        refreshFilterStatus()
    }

    /// The status line still says what a new filter lists: with the count and whether it is still being read.
    private func refreshFilterStatus() {
        guard view == .flows, let filter = viewFilter, status?.text.hasPrefix("filter: \(filter.text)  (") == true else { return }
        setStatus("filter: \(filter.text)" + filterCount)
    }

    /// The stored commands and alerts, and the flows they belong to (which the filter looks at with them).
    func mergeCommandHistory(_ commands: [StoredCommand], alerts: [StoredAlert], flows commandFlows: [FlowRow]) {
        historyLoading = false
        for row in commandFlows { flows.commandFlows[row.id] = row }
        log.merge(commands: commands, alerts: alerts)
        refilterCommandLists()
        dirty = true
    }

    func historyFailed(_ message: String) {
        historyLoading = false
        setStatus(message, isError: true)
    }

    /// Applies engine events that arrived since the last tick.
    func apply(_ events: [ProxyEvent]) {
        guard !events.isEmpty else { return }
        details.noteEvents(events)
        var newFlows: [FlowID] = []
        var newCommands = false
        var newAlerts = false
        var changedFlows: [FlowID] = []
        var changedCommands: [CommandRow.Key] = []
        for event in events {
            let flow = flows.apply(event)
            if let id = flow.opened { newFlows.append(id) }
            if let id = flow.changed, changedFlows.last != id { changedFlows.append(id) }
            let command = log.apply(event)
            if case .alert = event { newAlerts = newAlerts || command.added } else { newCommands = newCommands || command.added }
            if let key = command.changed { changedCommands.append(key) }
            switch event {
            case .messageHeld, .messageReleased, .commandDecided: refreshHeld()
            default: break
            }
        }
        if let storeProgress {
            // The writer is the bus's first subscriber: it has received every event the feed has passed on.
            flows.stamp(events, received: storeProgress.eventsReceived)
        }
        let rule = listFilter
        if rule.filter != nil {
            // Once per flow per tick; a flow that opened in this tick is judged whole when it arrives, just below.
            var rechecked = Set(newFlows)
            for id in changedFlows where rechecked.insert(id).inserted { flows.recheck(id, rule) }
            let shows = commandFilter(rule)
            for key in changedCommands { log.commands.recheck(key, shows) }
        }
        flows.arrived(newFlows, rule)
        if newCommands { log.commands.appendVisible(commandFilter(rule)) }
        if newAlerts { log.alerts.appendVisible(alertFilter(rule)) }
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
        if let connectionProblem { noteConnection(connectionProblem()) }
        // On the queue's screen, read it every tick: an attached TUI's queue also changes by a poll of the
        // recorder, which sends no event.
        if view == .intercept { intercept.refresh(from: engine?.intercept) }
        if !held.isEmpty || view == .intercept { dirty = true }
        if let id = details.wantsReload(now: now, complete: storeHasAllShown(of:)) { loadDetail(id) }
        if view == .player, recording.tick(now: now) { dirty = true }
        if view == .connections, connections.wantsSample(now: now) { sampleConnections(now: now) }
        if view == .alerts, now >= nextAcknowledgementRead { readAcknowledgements(now: now) }
    }

    /// While the Alerts view is shown, reads again every few seconds which alerts the store says are acknowledged
    /// (the control API acknowledges them; no engine event says so).
    private func readAcknowledgements(now: Date) {
        nextAcknowledgementRead = now.addingTimeInterval(2)
        guard let store else { return }
        let inbox = self.inbox
        background.async {
            guard let acknowledged = try? store.alerts(acknowledged: true, limit: History.alertLimit) else { return }
            inbox.post { app in
                if app.log.acknowledge(acknowledged) { app.dirty = true }
            }
        }
    }

    private func noteConnection(_ problem: String?) {
        guard problem != shownProblem else { return }
        if let problem {
            setStatus(problem, isError: true)
        } else if shownProblem != nil {
            setStatus("the recorder answers again")
            refreshHeld()
        }
        shownProblem = problem
    }

    func refreshHeld() {
        intercept.refresh(from: engine?.intercept)
        dirty = true
    }

    private func sampleConnections(now: Date) {
        connections.sample(engine?.openConnections ?? [], now: now)
        dirty = true
    }

    // MARK: Filtering

    /// Lists the flows the filter shows: the window is read again around the selected flow (or the newest, when
    /// following), in the background (`filtering`).
    func refilterFlows() {
        let anchor = flows.window.follow ? nil : selectedRow?.id
        flows.reload(listFilter, around: anchor.map(FlowList.Anchor.around) ?? .newest)
        dirty = true
    }

    func refilterCommandLists() {
        let rule = listFilter
        log.commands.refilter(commandFilter(rule))
        log.alerts.refilter(alertFilter(rule))
    }

    /// Whether a command is listed: the filter sees it with its flow (for `~k`, `~src`, `~dst`).
    private func commandFilter(_ rule: ListFilter) -> (CommandRow) -> Bool {
        let flowRows = flows
        return { rule.shows($0, flow: flowRows[$0.command.flowID]) }
    }

    /// Whether an alert is listed: the filter sees it with its flow and the command that raised it.
    private func alertFilter(_ rule: ListFilter) -> (AlertRow) -> Bool {
        let flowRows = flows
        let commandRows = log.commands
        return { row in
            rule.shows(row, flow: row.alert.flowID.flatMap { flowRows[$0] }, command: row.commandKey.flatMap { commandRows[$0] })
        }
    }

    // MARK: Keys

    /// Reacts to one key. Returns quickly: nothing here waits on the network or the disk.
    public func handle(_ key: Key) {
        dirty = true
        if key == .resize { return }
        if intercept.editor != nil {
            if let message = intercept.editorKey(key, queue: engine?.intercept) { show(message) }
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
            if view != .detail && view != .player {
                details.close()
                recording.close()
            }
        case .show(let kind):
            show(kind)
        case .up: move(-1)
        case .down: move(1)
        case .pageUp: move(-pageSize)
        case .pageDown: move(pageSize)
        case .top:
            if view == .flows { flows.top(listFilter) } else { move(Int.min / 2) }
        case .bottom:
            if view == .flows { flows.bottom(listFilter) } else { move(Int.max / 2) }
        case .open:
            openSelected()
        case .follow:
            flows.window.toggleFollow()
            if flows.window.follow, !flows.window.reachesEnd { flows.bottom(listFilter) }
            setStatus(flows.window.follow ? "following new flows" : "follow off")
        case .filter:
            prompt = Prompt(kind: .filter, text: viewFilter?.text ?? "")
        case .intercept:
            prompt = Prompt(kind: .intercept, text: engine?.intercept.filter?.text ?? "")
        case .search:
            prompt = Prompt(kind: .search, text: "")
        case .searchNext:
            findNext(from: flows.window.selected + 1)
        case .mark:
            let id = view == .detail || view == .player ? detail?.flowID : selectedRow?.id
            if let id {
                setStatus(marks.toggle(id, stored: flows[id]?.storedMark ?? false))
                if view == .flows { move(1) }
            }
        case .clearView:
            let newest = max(flows.window.rows.last?.id.rawValue ?? 0, flows.live.newest?.rawValue ?? 0, flows.count.through)
            flows.clearedThrough = FlowID(newest)
            refilterFlows()
            setStatus("view cleared; the store keeps everything")
        case .save:
            prompt = Prompt(kind: .save, text: saveDestination.suggestedPath(at: Date()))
        case .forward:
            decide(.forward(edited: nil))
        case .forwardAll:
            guard let queue = engine?.intercept else { return noEngine() }
            show(intercept.forwardAll(queue: queue))
        case .drop:
            decide(.drop)
        case .kill:
            killSelected()
        case .edit:
            guard let message = targetHeld else { return setStatus("nothing held here", isError: true) }
            if let refusal = intercept.edit(message) { show(refusal) }
        case .toggleHex:
            details.change { $0.hex.toggle() }
        case .replay:
            replaySelected()
        case .sendToServer, .sendToClient:
            guard engine != nil else { return noEngine() }
            guard detail != nil else { return }
            prompt = Prompt(kind: .send(action == .sendToServer ? .up : .down), text: "")
        case .block:
            guard engine != nil else { return noEngine() }
            guard targetHeld != nil else {
                return setStatus(view == .commands ? "this command is not held" : "nothing held here", isError: true)
            }
            prompt = Prompt(kind: .block, text: "")
        case .commandLine:
            guard engine != nil else { return noEngine() }
            prompt = Prompt(kind: .command, text: "")
        case .reloadPolicy:
            guard let reloadPolicy else { return noEngine() }
            let line = reloadPolicy()
            setStatus(line, isError: line.hasPrefix("policy not reloaded"))
        case .togglePlayer:
            togglePlayer()
        case .playPause: recording.change { $0.togglePlaying() }
        case .seekBack: recording.change { $0.seek(by: -RecordingPlayer.seekStep) }
        case .seekForward: recording.change { $0.seek(by: RecordingPlayer.seekStep) }
        case .previousCommand: recording.change { $0.previousMarker() }
        case .nextCommand: recording.change { $0.nextMarker() }
        case .recordingStart: recording.change { $0.seek(to: 0) }
        case .recordingEnd: recording.change { $0.seek(to: $0.duration) }
        }
    }

    /// `p`: the detail's player opens (reading the recording again, at the same place) or closes. The two are one
    /// screen as far as `back` goes: either returns to where the flow was opened from.
    private func togglePlayer() {
        guard let id = detail?.flowID else { return }
        if view == .player {
            recording.change { player in if player.isPlaying { player.togglePlaying() } }
            view = .detail
            return
        }
        if let kind = flows[id]?.kind, kind != .ssh {
            return setStatus("flow \(id) is \(kind.rawValue): only SSH sessions are recorded", isError: true)
        }
        view = .player
        recording.open(id, path: saveDestination.dataDirectory.recordingPath(id), at: nil)
    }

    private func show(_ kind: ViewKind) {
        guard kind != view else { return }
        viewStack.append(view)
        if viewStack.count > 8 { viewStack.removeFirst() }
        view = kind
        if kind == .intercept { refreshHeld() }
        if kind == .connections { sampleConnections(now: Date()) }
    }

    private var pageSize: Int { max(1, contentHeight - 2) }

    private func move(_ delta: Int) {
        switch view {
        case .flows: flows.move(delta, listFilter)
        case .intercept: intercept.move(delta)
        case .connections: connections.move(delta)
        case .commands: log.commands.move(delta)
        case .alerts: log.alerts.move(delta)
        case .detail, .player: details.change { $0.scroll = max(0, $0.scroll + delta) }
        case .help: helpScroll = max(0, min(Bindings.helpLines(capabilities).count - 1, helpScroll + delta))
        }
    }

    private func openSelected() {
        var focus: Int64?
        let id: FlowID?
        switch view {
        case .intercept:
            id = intercept.selectedHold?.flowID
            focus = intercept.selectedHold?.command?.index
        case .connections: id = connections.selectedFlow
        case .commands:
            id = log.commands.selectedRow?.command.flowID
            focus = log.commands.selectedRow?.command.index
        case .alerts:
            id = log.alerts.selectedRow?.alert.flowID
            focus = log.alerts.selectedRow?.alert.commandIndex
        default: id = selectedRow?.id
        }
        guard let id else {
            if view == .alerts, log.alerts.selectedRow != nil { setStatus("this alert belongs to no flow", isError: true) }
            return
        }
        // A command of a terminal session opens the player at its moment, the flow's commands below it.
        let start = view == .commands ? log.commands.selectedRow.flatMap(recordingStart(of:)) : nil
        show(start == nil ? .detail : .player)
        loadDetail(id)
        details.change {
            $0.focusCommand = focus
            $0.focused = false
        }
        if let start { recording.open(id, path: saveDestination.dataDirectory.recordingPath(id), at: start) }
    }

    /// Where the player starts for a command: its marker in the recording (a shell line), or its time (an exec);
    /// nil for a command that no recording holds (SQL).
    private func recordingStart(of row: CommandRow) -> RecordingPane.Start? {
        let command = row.command
        switch command.kind {
        case .shell:
            let earlier = log.commands(of: command.flowID).filter {
                $0.command.kind == .shell && $0.command.index < command.index && $0.command.text == command.text
            }
            return .command(text: command.text, occurrence: earlier.count, time: command.time.timeIntervalSince1970)
        case .exec:
            return .command(text: command.text, occurrence: -1, time: command.time.timeIntervalSince1970)
        case .sql:
            return nil
        }
    }

    /// The detail shows what the store has now, and loads again once the store has everything the feed has shown
    /// of the flow: a flow opened the moment it closed is still on its way to the disk.
    func loadDetail(_ id: FlowID) {
        details.load(id, complete: storeHasAllShown(of: id))
    }

    /// Whether the store has every event of flow `id` that the list has shown (always, for flows read from it).
    private func storeHasAllShown(of id: FlowID) -> Bool {
        guard let storeProgress, let row = flows[id] else { return true }
        return storeProgress.eventsWritten >= row.shownAtEvent
    }

    /// Selects the next listed flow the search matches, from position `start` of the window: at once when the
    /// window has it, else found by reading on from the window's end (`FlowList.seek`), wrapping round.
    func findNext(from start: Int) {
        guard !search.isEmpty else { return }
        let needle = search.lowercased()
        let hits = indexHits[search] ?? []
        let matches: @Sendable (FlowRow) -> Bool = { row in
            let haystack = "\(row.id) \(row.kind.rawValue) \(row.origin) \(row.server) \(row.summary)".lowercased()
            return haystack.contains(needle) || hits.contains(row.id)
        }
        let rows = flows.window.rows
        if let position = rows.indices.dropFirst(max(0, start)).first(where: { matches(rows[$0]) }) {
            return flows.window.select(position)
        }
        if flows.window.reachesStart, flows.window.reachesEnd {
            if let position = rows.indices.prefix(max(0, start)).first(where: { matches(rows[$0]) }) {
                return flows.window.select(position)
            }
            return setStatus("no match for '\(search)'", isError: true)
        }
        flows.seek(after: FlowID(flows.window.high), listFilter, search: search, matches: matches)
    }

    /// A search's match found beyond the window: the window is read again around it.
    func searchFound(_ id: FlowID?, search: String) {
        guard search == self.search else { return }
        guard let id else { return setStatus("no match for '\(search)'", isError: true) }
        flows.window.follow = false
        flows.reload(listFilter, around: .around(id), recounting: false)
    }

    /// The held message the current screen points at: the selected one in the queue, the flow's oldest in detail,
    /// the selected command's hold in the Commands view.
    var targetHeld: HeldMessage? {
        switch view {
        case .intercept: return intercept.selectedHold
        case .detail: return held.first { $0.flowID == detail?.flowID }
        case .commands: return log.commands.selectedRow.flatMap { intercept.hold(of: $0.key) }
        default: return nil
        }
    }

    func decide(_ verdict: Verdict) {
        guard let queue = engine?.intercept else { return noEngine() }
        guard let message = targetHeld else {
            return setStatus(view == .commands ? "this command is not held" : "nothing held here", isError: true)
        }
        show(intercept.decide(message, verdict, queue: queue))
    }

    private func killSelected() {
        guard let engine else { return noEngine() }
        let id: FlowID?
        switch view {
        case .connections: id = connections.selectedFlow
        case .intercept, .detail:
            if let message = targetHeld { return show(intercept.decide(message, .kill, queue: engine.intercept)) }
            id = detail?.flowID
        default: id = selectedRow?.id
        }
        guard let id else { return }
        setStatus(engine.kill(id) ? "flow \(id) killed" : "flow \(id) is not open", isError: !engine.openConnections.contains { $0.flowID == id })
        connections.forgetSample()
    }

    func noEngine() {
        setStatus(Capabilities.readOnlyReason, isError: true)
    }

    public func setStatus(_ text: String, isError: Bool = false) {
        show(StatusMessage(text, isError: isError))
    }

    func show(_ message: StatusMessage) {
        status = message
        dirty = true
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
