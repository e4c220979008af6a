import Foundation
import Logging
import NIOEmbedded
import SluiceModel
import SluiceStore
import SluiceTestSupport
import Testing

@testable import SluiceCore

@testable import SluiceTUI

/// An engine stand-in with a real intercept gate, for holding commands without SSH.
private final class GateOnlyEngine: EngineControl, @unchecked Sendable {
    let gate = InterceptGate(bus: FlowBus(subscribers: []))
    var intercept: any InterceptQueue { gate }
    var openConnections: [OpenConnection] { [] }
    var listeners: [RunningListener] { [] }
    var listenSchemes: [ListenScheme] { [] }
    func listen(_ spec: ListenSpec) throws(EngineError) -> RunningListener { throw EngineError(message: "not here") }
    func stopListening(_ id: Int) -> RunningListener? { nil }
    func kill(_ flowID: FlowID) -> Bool { true }
    func send(_ data: Data, kind: MessageKind, direction: Direction, into flowID: FlowID) -> Bool { false }
}

/// The Commands (4) and Alerts (5) screens, held commands in the Intercept queue (3), and `~risk` / `~cmd` on every
/// list, fed with the events an SSH session produces.
@Suite(.ownThread) struct CommandViewsTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701)

    private func sshFlow(_ id: Int64, port: Int = 22) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: .ssh, listener: "ssh://127.0.0.1:2222=>10.0.0.7:\(port)",
                client: Endpoint(host: "127.0.0.1", port: 40000 + Int(id)), server: Endpoint(host: "10.0.0.7", port: port), time: start
            )
        )
    }

    private func command(
        _ flow: Int64, _ index: Int64, _ text: String, risk: RiskLevel = .low, action: PolicyAction = .allow, rule: String? = nil,
        decision: CommandDecision = .allowed, kind: CommandKind = .shell
    ) -> Command {
        Command(
            flowID: FlowID(flow), index: index, time: start.addingTimeInterval(Double(index)), kind: kind, text: text, user: "alice",
            target: "10.0.0.7:22", risk: risk, action: action, rule: rule, decision: decision,
            decidedBy: decision == .pending ? nil : .policy
        )
    }

    private func screen(_ app: App, width: Int = 120, height: Int = 30) -> TextCanvas {
        let canvas = TextCanvas(width: width, height: height)
        app.render(on: canvas)
        return canvas
    }

    private func type(_ app: App, _ text: String) {
        for character in text { app.handle(.character(character)) }
    }

    private func filter(_ app: App, _ text: String) {
        app.handle(.character("f"))
        app.handle(.control("u"))
        type(app, text)
        app.handle(.enter)
    }

    /// A session: `ls` (low), a held `shutdown` the operator allowed that exited 0, a blocked `rm -rf /`.
    private var session: [ProxyEvent] {
        [
            sshFlow(1),
            .command(command(1, 0, "ls -la")),
            .command(command(1, 1, "shutdown -h now", risk: .high, action: .hold, rule: "power", decision: .pending)),
            .commandDecided(CommandDecided(flowID: FlowID(1), index: 1, time: start, decision: .allowed, decidedBy: .operator)),
            .commandFinished(CommandFinished(flowID: FlowID(1), index: 1, time: start, outcome: CommandOutcome(exitStatus: 0))),
            .command(command(1, 2, "rm -rf /", risk: .critical, action: .block, rule: "rm-root", decision: .blocked, kind: .exec)),
            .alert(Alert(flowID: FlowID(1), commandIndex: 2, time: start, level: .critical, rule: "rm-root", message: "blocked: rm -rf /")),
        ]
    }

    @Test func commandsAreListedLiveWithRiskUserTargetActionAndRule() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session)
        app.handle(.character("4"))
        let text = screen(app)
        let lines = text.lines
        #expect(lines[1].contains("USER@TARGET") && lines[1].contains("RISK") && lines[1].contains("ACTION") && lines[1].contains("RULE"))
        let shutdown = lines.first { $0.contains("shutdown -h now") } ?? ""
        #expect(shutdown.contains("alice@10.0.0.7:22"), "\(shutdown)")
        #expect(shutdown.contains("high") && shutdown.contains("hold→allowed by operator") && shutdown.contains("power"), "\(shutdown)")
        let ls = lines.first { $0.contains("ls -la") } ?? ""
        #expect(ls.contains(" allow ") && ls.contains(" low "), "\(ls)")
        let rm = lines.first { $0.contains("rm -rf /") } ?? ""
        #expect(rm.contains("critical") && rm.contains("exec") && rm.contains("block") && rm.contains("rm-root"), "\(rm)")
        #expect(lines.last?.contains("3/3 commands") == true)
        #expect(text.rowRoles[2 + 2] == .selection, "the newest command is selected, at the bottom")
        // Control characters in a command are shown, not obeyed.
        app.apply([.command(command(1, 3, "echo \u{1B}[2Jgone"))])
        #expect(screen(app).text.contains("echo \\e[2Jgone"))
    }

    @Test func theRiskHasItsColourRole() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session)
        app.handle(.character("4"))
        app.handle(.up)
        let canvas = RoleCanvas(width: 160, height: 20)
        app.render(on: canvas)
        #expect(canvas.text.contains("hold→allowed by operator"))
        #expect(canvas.roles(of: "critical").contains(.riskCritical))
        #expect(canvas.roles(of: "low").contains(.riskLow))
    }

    @Test func alertsAreListedWithLevelRuleFlowAndMessage() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session)
        app.handle(.character("5"))
        let lines = screen(app).lines
        let alert = lines.first { $0.contains("blocked: rm -rf /") } ?? ""
        #expect(alert.contains("critical") && alert.contains("rm-root") && alert.contains(" 1 "), "\(alert)")
        app.handle(.enter)
        #expect(app.view == .detail)
        #expect(app.detail?.flowID == FlowID(1))
    }

    @Test func enterOnACommandOpensItsFlowsDetailAtThatCommand() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session)
        app.handle(.character("4"))
        app.handle(.up)
        app.handle(.enter)
        // A shell command opens the player (RecordingPlayerTests), the flow's commands below it; `p` the detail.
        #expect(app.view == .player)
        #expect(app.detail?.flowID == FlowID(1))
        #expect(app.detail?.focusCommand == 1)
        for view in [ViewKind.player, .detail] {
            #expect(app.view == view)
            let canvas = screen(app)
            #expect(canvas.text.contains("commands (3)"))
            let focused = canvas.rowRoles.firstIndex(of: .selection).map { canvas.lines[$0] } ?? ""
            #expect(focused.contains("#1") && focused.contains("shutdown -h now") && focused.contains("exit 0"), "\(focused)")
            app.handle(.character("p"))
        }
        app.handle(.escape)
        #expect(app.view == .commands)
    }

    @Test func riskAndCommandFiltersWorkOnEveryList() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session + [sshFlow(2), .command(command(2, 0, "uptime"))])
        app.apply([sshFlow(3)])
        filter(app, "~risk high")
        #expect(app.listed.map(\.id) == [FlowID(1)], "the flow with a high command")
        app.handle(.character("4"))
        var text = screen(app).text
        #expect(text.contains("shutdown") && text.contains("rm -rf /") && !text.contains("ls -la") && !text.contains("uptime"))
        #expect(text.contains("2/4 commands"))
        filter(app, "~cmd '^upt'")
        text = screen(app).text
        #expect(text.contains("uptime") && !text.contains("shutdown"))
        #expect(app.status?.text == "filter: ~cmd '^upt'  (1 of 4 commands)")
        app.handle(.character("5"))
        #expect(screen(app).text.contains("No alert matches the filter"))
        filter(app, "~risk critical")
        #expect(screen(app).text.contains("blocked: rm -rf /"))
        app.handle(.character("1"))
        #expect(app.listed.map(\.id) == [FlowID(1)])

        // A flow listed without commands is listed once one matches.
        filter(app, "~cmd reboot")
        #expect(app.listed.isEmpty)
        app.apply([.command(command(3, 0, "sudo reboot", risk: .high, action: .alert, rule: "power"))])
        #expect(app.listed.map(\.id) == [FlowID(3)])
    }

    @Test func aFlowKeepsABoundedListOfItsCommandsButItsExactRisk() {
        var row = FlowRow(opened: FlowOpened(flowID: FlowID(1), kind: .ssh, listener: "", client: Endpoint(host: "a", port: 1), server: Endpoint(host: "b", port: 22), time: start))
        for index in 0..<(FlowRow.commandLimit * 2) { row.note(command: "echo \(index)", risk: .low) }
        row.note(command: "echo 0", risk: .low)
        row.note(command: String(repeating: "x", count: FlowRow.commandLength * 3), risk: .critical)
        #expect(row.commandTexts.count == FlowRow.commandLimit)
        #expect(row.commandRisk == .critical)
    }

    @Test func aHeldCommandIsShownInTheInterceptQueueAndRunWithA() {
        let engine = GateOnlyEngine()
        let app = App(engine: engine, store: nil, feed: nil, title: "Sluice")
        let loop = EmbeddedEventLoop()
        let decided = Box<(CommandDecision, Decider)?>(nil)
        let held = command(1, 0, "echo held-one", risk: .high, action: .hold, rule: "held-echo", decision: .pending, kind: .exec)
        app.apply([sshFlow(1), .command(held)])
        engine.gate.hold(command: held, on: loop) { decision, decider, _ in decided.value = (decision, decider) }
        app.handle(.character("3"))
        let line = screen(app).lines.first { $0.contains("echo held-one") } ?? ""
        #expect(line.contains("cmd") && line.contains("high") && line.contains("alice@10.0.0.7:22") && line.contains("[held-echo]"), "\(line)")

        app.handle(.character("e"))
        #expect(app.status == StatusMessage.error("a held command is not edited: a runs it, d blocks it"))
        #expect(app.intercept.editor == nil)

        app.handle(.character("a"))
        loop.run()
        #expect(decided.value?.0 == .allowed)
        #expect(decided.value?.1 == .operator)
        #expect(app.status?.text == "command `echo held-one` of flow 1 allowed")
        #expect(engine.gate.held.isEmpty)
        #expect(screen(app).text.contains("Nothing held."))
    }

    @Test func aHeldCommandIsBlockedWithDFromTheQueueOrItsRow() {
        let engine = GateOnlyEngine()
        let app = App(engine: engine, store: nil, feed: nil, title: "Sluice")
        let loop = EmbeddedEventLoop()
        let decisions = Box<[CommandDecision]>([])
        let first = command(1, 0, "echo held-two", risk: .high, action: .hold, rule: "held-echo", decision: .pending, kind: .exec)
        let second = command(1, 1, "echo held-three", risk: .high, action: .hold, rule: "held-echo", decision: .pending, kind: .exec)
        app.apply([sshFlow(1), .command(first), .command(second)])
        for held in [first, second] {
            engine.gate.hold(command: held, on: loop) { decision, _, _ in decisions.value.append(decision) }
        }
        app.handle(.character("3"))
        app.handle(.character("d"))
        loop.run()
        #expect(decisions.value == [.blocked])
        #expect(app.status?.text == "command `echo held-two` of flow 1 blocked")

        // In the Commands view, the held command's row is decided where it is listed.
        app.handle(.character("4"))
        #expect(screen(app).lines.contains { $0.contains("echo held-three") && $0.contains("hold→…") })
        app.handle(.character("d"))
        loop.run()
        #expect(decisions.value == [.blocked, .blocked])
        app.handle(.up)
        app.handle(.character("a"))
        #expect(app.status == StatusMessage.error("this command is not held"))
    }

    @Test func theDetailOfAnSSHFlowListsItsCommands() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session)
        app.handle(.enter)
        let text = screen(app, width: 140).text
        #expect(text.contains("commands (3)"))
        #expect(text.contains("#0") && text.contains("$ ls -la"))
        #expect(text.contains("#1") && text.contains("hold→allowed by operator  exit 0  [power]  $ shutdown -h now"), "\(text)")
        #expect(text.contains("#2") && text.contains("critical") && text.contains("block  [rm-root]  $ rm -rf /"))
    }

    @Test func commandsAndAlertsComeFromTheStoresHistory() throws {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-tui-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in session { writer.receive(event) }
        writer.close()
        let store = try Store(directory: directory)
        let app = App(engine: nil, store: store, feed: nil, title: "Sluice (read-only)")
        app.loadHistory()
        let deadline = Date().addingTimeInterval(5)
        while (app.historyLoading || app.log.alerts.isEmpty) && Date() < deadline {
            app.tick()
            Thread.sleep(forTimeInterval: 0.01)
        }
        app.handle(.character("4"))
        let text = screen(app).text
        #expect(text.contains("hold→allowed by operator"), "\(text)")
        #expect(text.contains("rm -rf /") && text.contains("3/3 commands"))
        app.handle(.character("5"))
        #expect(screen(app).text.contains("blocked: rm -rf /"))
        app.handle(.character("1"))
        filter(app, "~risk critical & ~cmd '^rm '")
        let filtered = Date().addingTimeInterval(5)
        while app.filtering && Date() < filtered {
            app.tick()
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(app.listed.map(\.id) == [FlowID(1)], "history flows know their commands")
    }

    /// An alert acknowledged through the control API is marked in the Alerts view: the store is read again while
    /// the view is shown, also for an alert that arrived live.
    @Test func anAcknowledgedAlertIsMarked() throws {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-tui-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in session { writer.receive(event) }
        let app = App(engine: nil, store: try Store(directory: directory), feed: nil, title: "Sluice")
        app.apply(session)
        app.handle(.character("5"))
        func alertLine() -> String { screen(app).lines.first { $0.contains("blocked: rm -rf /") } ?? "" }
        #expect(screen(app).lines[1].contains("ACK"))
        #expect(!alertLine().contains("✓"))
        _ = try writer.acknowledgeAlert(1, by: "carol")
        writer.close()
        let deadline = Date().addingTimeInterval(5)
        var now = Date()
        while !alertLine().contains("✓") && Date() < deadline {
            now = now.addingTimeInterval(2.1)
            app.tick(now: now)
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(alertLine().contains("✓"), "\(alertLine())")
    }

    @Test func sqlShowsUserAtDatabaseItsResultAndDurationInColour() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        var select = command(2, 0, "SELECT name FROM users WHERE id = 42 -- who", kind: .sql)
        select.user = "app"
        select.database = "shop"
        app.apply([
            .command(select),
            .commandFinished(
                CommandFinished(flowID: FlowID(2), index: 0, time: start.addingTimeInterval(0.25), outcome: CommandOutcome(result: "SELECT 1"))
            ),
        ])
        app.apply([.command(command(2, 1, "SELECT 2", kind: .sql))])  // selected, so the first is drawn in its colours
        app.handle(.character("4"))
        let canvas = RoleCanvas(width: 200, height: 20)
        app.render(on: canvas)
        let line = canvas.text.split(separator: "\n").first { $0.contains("SELECT name") } ?? ""
        #expect(line.contains("app@shop") && line.contains("SELECT 1 · 250ms"), "\(line)")
        #expect(canvas.roles(of: "FROM").contains(.sqlKeyword))
        #expect(canvas.roles(of: "42").contains(.sqlNumber))
        #expect(canvas.roles(of: "-- who").contains(.sqlComment))
    }

    @Test func theHighlighterFindsKeywordsLiteralsNumbersAndComments() {
        let text = "select 'it''s', 3.5, \"From\" /* note */ from t -- end"
        let spans = SQLHighlighter.spans(text).map { span -> String in
            let characters = Array(text)
            return "\(span.kind):" + String(characters[span.range])
        }
        #expect(spans == ["keyword:select", "string:'it''s'", "number:3.5", "comment:/* note */", "keyword:from", "comment:-- end"])
        #expect(SQLHighlighter.spans("'unfinished").map(\.kind) == [.string])
        #expect(SQLHighlighter.spans("").isEmpty)
    }

    @Test func commandsFitEightyColumns() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.apply(session)
        for view in ["4", "5"] {
            app.handle(.character(Character(view)))
            let canvas = screen(app, width: 80, height: 24)
            #expect(canvas.lines.allSatisfy { $0.count <= 80 })
            if view == "4" { #expect(canvas.text.contains("shutdown -h now"), "the text keeps room at 80 columns: \(canvas.text)") }
        }
    }
}

/// A canvas that keeps each put's role, to check colours by what a cell says.
private final class RoleCanvas: Canvas {
    let width: Int
    let height: Int
    private var puts: [(row: Int, column: Int, text: String, role: Role)] = []
    private let text_: TextCanvas

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        text_ = TextCanvas(width: width, height: height)
    }

    func put(_ row: Int, _ column: Int, _ text: String, _ role: Role) {
        puts.append((row, column, text, role))
        text_.put(row, column, text, role)
    }

    func fill(_ row: Int, _ role: Role) { text_.fill(row, role) }
    func clear() {
        puts.removeAll()
        text_.clear()
    }
    func present() {}

    var text: String { text_.text }

    /// The roles of the puts whose text is exactly `word` (padding aside).
    func roles(of word: String) -> [Role] {
        puts.filter { $0.text.trimmingCharacters(in: .whitespaces) == word }.map(\.role)
    }
}
