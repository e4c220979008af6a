import Foundation
import Logging
import NIOEmbedded
import NIOConcurrencyHelpers
import SluiceModel
import SluiceStore
import SluiceTestSupport
import Testing

@testable import SluiceCore

@testable import SluiceTUI

/// An engine stand-in with a real intercept gate, for driving the app without sockets.
private final class FakeEngine: EngineControl, @unchecked Sendable {
    let gate = InterceptGate(bus: FlowBus(subscribers: []))
    var intercept: any InterceptQueue { gate }
    var killed: [FlowID] = []
    var openConnections: [OpenConnection] { [] }
    func kill(_ flowID: FlowID) -> Bool {
        killed.append(flowID)
        return true
    }
    var sent: [(Data, Direction, FlowID)] = []
    func send(_ data: Data, kind: MessageKind, direction: Direction, into flowID: FlowID) -> Bool {
        sent.append((data, direction, flowID))
        return true
    }
    /// Listeners as an engine keeps them; a spec on port 1 fails to bind, as a port in use would.
    var listeners: [RunningListener] = []
    var listenSchemes: [ListenScheme] { [.tcp] }
    func listen(_ spec: ListenSpec) throws(EngineError) -> RunningListener {
        guard spec.listen.port != 1 else { throw EngineError(message: "cannot listen on \(spec.listen): address already in use") }
        let listener = RunningListener(id: (listeners.map(\.id).max() ?? 0) + 1, spec: spec, address: nil)
        listeners.append(listener)
        return listener
    }
    func stopListening(_ id: Int) -> RunningListener? {
        guard let index = listeners.firstIndex(where: { $0.id == id }) else { return nil }
        return listeners.remove(at: index)
    }
}

/// A store writer's progress as a test sets it.
private final class SetProgress: StoreWriteProgress {
    let counts = NIOLockedValueBox((received: 0, written: 0))
    var eventsReceived: Int { counts.withLockedValue { $0.received } }
    var eventsWritten: Int { counts.withLockedValue { $0.written } }
    let failures = NIOLockedValueBox<String?>(nil)
    var failure: String? { failures.withLockedValue { $0 } }
}

/// Marks as the store's writer would take them: `+1` marked flow 1, `-1` unmarked it.
private final class RecordedMarks: FlowMarking {
    let calls = NIOLockedValueBox<[String]>([])
    func setMarked(_ marked: Bool, flow: FlowID) {
        calls.withLockedValue { $0.append((marked ? "+" : "-") + flow.description) }
    }
}

@Suite(.ownThread) struct AppTests {
    private func opened(_ id: Int64, port: Int = 7000) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: .tcp, listener: "tcp://:9000=>h:\(port)", client: Endpoint(host: "127.0.0.1", port: 40000 + Int(id)),
                server: Endpoint(host: "10.0.0.5", port: port), time: Date(timeIntervalSince1970: 1_796_080_701)
            )
        )
    }

    private func message(_ id: Int64, _ text: String) -> ProxyEvent {
        .message(Message(flowID: FlowID(id), sequence: 0, direction: .up, time: Date(), size: text.utf8.count, payload: Data(text.utf8)))
    }

    private func screen(_ app: App, width: Int = 100, height: Int = 30) -> TextCanvas {
        let canvas = TextCanvas(width: width, height: height)
        app.render(on: canvas)
        return canvas
    }

    /// Ticks until `condition` holds, up to `seconds`; each tick comes as if a second had passed, past the reload gap.
    private func tick(_ app: App, until condition: () -> Bool, seconds: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var now = Date()
        while !condition() && Date() < deadline {
            now.addTimeInterval(1)
            app.tick(now: now)
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition()
    }

    /// `:listen SPEC` adds a listener and `:stop N` stops it; the Conns screen lists them; a mistake keeps the prompt
    /// open saying what was wrong.
    @Test func theCommandLineAddsAndStopsListeners() {
        let engine = FakeEngine()
        let app = App(engine: engine, store: nil, feed: nil, title: "Sluice")
        func command(_ text: String) {
            app.handle(.character(":"))
            for character in text { app.handle(.character(character)) }
            app.handle(.enter)
        }
        app.handle(.character("2"))
        #expect(screen(app).lines[1].contains("listeners: none (:listen SPEC adds one)"))
        command("listen tcp://127.0.0.1:9000=>10.0.0.5:7000")
        #expect(engine.listeners.map(\.spec.description) == ["tcp://127.0.0.1:9000=>10.0.0.5:7000"])
        #expect(screen(app).lines[1].contains("listeners: #1 tcp://127.0.0.1:9000=>10.0.0.5:7000"))
        #expect(screen(app).lines.last?.contains("listener #1: tcp://127.0.0.1:9000=>10.0.0.5:7000") == true)

        command("listen gopher://127.0.0.1:70")
        #expect(app.prompt != nil)
        #expect(screen(app).lines.last?.contains("unknown scheme") == true || screen(app).lines.last?.contains("gopher") == true)
        app.handle(.escape)
        command("listen tcp://127.0.0.1:1=>10.0.0.5:7000")
        #expect(screen(app).lines.last?.contains("address already in use") == true)
        app.handle(.escape)
        command("stop 7")
        #expect(screen(app).lines.last?.contains("no listener #7") == true)
        app.handle(.escape)
        command("stop #1")
        #expect(engine.listeners.isEmpty)
        #expect(screen(app).lines.last?.contains("stopped listener #1") == true)
        command("frobnicate")
        #expect(screen(app).lines.last?.contains("commands: listen") == true)
        #expect(screen(app).lines.last?.hasPrefix(":frobnicate") == true)
    }

    @Test func aDetailOpenedBeforeTheStoreHasTheFlowLoadsAgainOnceItDoes() throws {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-tui-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        defer { writer.close() }
        let store = try Store(directory: directory)
        let progress = SetProgress()
        let app = App(engine: FakeEngine(), store: store, feed: nil, storeProgress: progress, title: "Sluice")
        let closed = ProxyEvent.flowClosed(
            FlowClosed(flowID: FlowID(1), time: Date(), bytesUp: 5, bytesDown: 0, state: .closed, error: nil, payloadTruncated: false)
        )
        let events = [opened(1), message(1, "hello"), closed]

        // The feed has shown the whole flow; the writer has received it and written none of it yet.
        progress.counts.withLockedValue { $0.received = events.count }
        app.apply(events)
        app.loadDetail(FlowID(1))
        #expect(tick(app, until: { app.detail?.messages != nil }), "the first load answers")
        #expect(app.detail?.messages?.isEmpty == true)

        // The rows reach the disk, but the writer has not said so: nothing to reload yet.
        for event in events { writer.receive(event) }
        #expect(tick(app, until: { writer.eventsWritten == events.count }))
        #expect(!tick(app, until: { app.detail?.messages?.isEmpty == false }, seconds: 0.3))

        // Once it has, with no further event of the flow, the detail shows the message.
        progress.counts.withLockedValue { $0.written = events.count }
        #expect(tick(app, until: { app.detail?.messages?.count == 1 }))
        #expect(screen(app).text.contains("hello"))
    }

    /// A store written by a real writer and closed, as `sluice view` finds one: flow 1 said `hello`, got `world`.
    private func recordedStore(
        _ extra: [ProxyEvent] = [], marked: [FlowID] = []
    ) throws -> (directory: DataDirectory, cleanup: () -> Void) {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-tui-test-\(UUID().uuidString)")
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let reply = ProxyEvent.message(
            Message(flowID: FlowID(1), sequence: 1, direction: .down, time: Date(), size: 5, payload: Data("world".utf8))
        )
        let closed = ProxyEvent.flowClosed(
            FlowClosed(flowID: FlowID(1), time: Date(), bytesUp: 5, bytesDown: 5, state: .closed, error: nil, payloadTruncated: false)
        )
        for event in [opened(1), message(1, "hello"), reply, closed] + extra { writer.receive(event) }
        for id in marked { writer.setMarked(true, flow: id) }
        writer.close()
        return (directory, { try? FileManager.default.removeItem(atPath: directory.path) })
    }

    /// Runs the UI loop's frames (without its key reads) until `condition` holds, up to `seconds` of real time; the
    /// loop's clock stays at `now`, so only a redraw for a change, not the once-a-second one, can draw it.
    private func frames(
        _ app: App, on canvas: TextCanvas, at now: Date, lastRender: inout Date, until condition: () -> Bool, seconds: Double = 5
    ) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline {
            TerminalUI.frame(app, on: canvas, now: now, lastRender: &lastRender)
            Thread.sleep(forTimeInterval: 0.002)
        }
        return condition()
    }

    @Test func aDetailIsDrawnOnTheFrameItsMessagesArriveWithoutAWriter() throws {
        let (directory, cleanup) = try recordedStore()
        defer { cleanup() }
        let app = App(engine: nil, store: try Store(file: directory.databasePath), feed: nil, title: "Sluice (read-only)")
        let canvas = TextCanvas(width: 100, height: 30)
        let start = Date()
        var lastRender = Date.distantPast
        app.loadHistory()
        #expect(frames(app, on: canvas, at: start, lastRender: &lastRender, until: { canvas.text.contains("hello") }))

        // Enter; the loop's next frames, all within the 50 ms a keypress gets.
        app.handle(.enter)
        // The frame drawn right after the key, before the read has come back.
        let pressed = start.addingTimeInterval(0.01)
        canvas.clear()
        app.render(on: canvas, now: pressed)
        lastRender = pressed
        #expect(canvas.text.contains("loading messages…"))
        #expect(TerminalUI.keyWait(app) < 5, "the loop looks for the read more often than for keys")
        let shown = frames(app, on: canvas, at: pressed.addingTimeInterval(0.03), lastRender: &lastRender) {
            canvas.text.contains("<- #1 down")
        }
        #expect(shown, "the detail is drawn as soon as its messages are read, not at the next once-a-second redraw")
        #expect(canvas.text.contains("-> #0 up"))
        #expect(!canvas.text.contains("loading messages"))
        #expect(TerminalUI.keyWait(app) == 33)
    }

    @Test func aLongErrorIsWrappedInTheDetailSoItsAdviceShows() throws {
        let advice = "client ended the TLS handshake for api.example.com (TLSV1_ALERT_UNKNOWN_CA): it most likely "
            + "rejected Sluice's certificate; trust Sluice's CA (sluice ca) or add the host to tls.passthrough"
        let failed = ProxyEvent.flowError(FlowError(flowID: FlowID(1), phase: .client, time: Date(), message: advice))
        let (directory, cleanup) = try recordedStore([failed])
        defer { cleanup() }
        let app = App(engine: nil, store: try Store(file: directory.databasePath), feed: nil, title: "Sluice (read-only)")
        let canvas = TextCanvas(width: 80, height: 24)
        var lastRender = Date.distantPast
        app.loadHistory()
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("hello") }))
        app.handle(.enter)
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("#1 down") }))

        let errorLines = canvas.lines.drop { !$0.hasPrefix("error ") }.prefix { !$0.isEmpty }
        #expect(errorLines.count > 1 && errorLines.allSatisfy { $0.count <= 80 }, "\(canvas.text)")
        #expect(errorLines.dropFirst().allSatisfy { $0.hasPrefix("  ") }, "continuation lines are indented")
        let joined = errorLines.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        #expect(joined.hasSuffix("client: " + advice), "every word, in order: \(joined)")
        #expect(canvas.text.contains("or add the host to tls.passthrough"))
    }

    @Test func aJSONBodyIsShownOneMemberPerLineAsItTravelled() throws {
        let (directory, cleanup) = try recordedStore()
        defer { cleanup() }
        let app = App(engine: nil, store: try Store(file: directory.databasePath), feed: nil, title: "Sluice (read-only)")
        let body = Data(#"{"role":"user","role":"admin","url":"http://a/b","x":1.0}"#.utf8)
        #expect(
            app.messageBody(body, hex: false, offset: 0).lines == [
                "  {", #"    "role": "user","#, #"    "role": "admin","#, #"    "url": "http://a/b","#, #"    "x": 1.0"#, "  }",
            ]
        )
        // Text that is not one JSON object or array is shown as it is.
        #expect(app.messageBody(Data("{not json}".utf8), hex: false, offset: 0).lines == ["  {not json}"])
    }

    @Test func aFlowThatKeptMegabytesShowsABoundedDetailAndSaysWhatItLeftOut() throws {
        // A 200 KiB chunk is 12,800 hexdump lines: cut at the bound; the two chunks after it are summed up.
        let big = Data((0..<(200 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let events: [ProxyEvent] = [
            opened(2),
            .message(Message(flowID: FlowID(2), sequence: 0, direction: .up, time: Date(), size: big.count, payload: big)),
            .message(Message(flowID: FlowID(2), sequence: 1, direction: .down, time: Date(), size: 64, payload: Data(count: 64))),
            .message(Message(flowID: FlowID(2), sequence: 2, direction: .up, time: Date(), size: 64, payload: Data(count: 64))),
            .flowClosed(
                FlowClosed(
                    flowID: FlowID(2), time: Date(), bytesUp: Int64(big.count + 64), bytesDown: 64, state: .closed, error: nil,
                    payloadTruncated: false
                )
            ),
        ]
        let (directory, cleanup) = try recordedStore(events)
        defer { cleanup() }
        let app = App(engine: nil, store: try Store(file: directory.databasePath), feed: nil, title: "Sluice (read-only)")
        let canvas = TextCanvas(width: 120, height: 30)
        var lastRender = Date.distantPast
        app.loadHistory()
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("10.0.0.5") }))
        app.handle(.end)
        app.handle(.enter)
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("-> #0 up") }))
        app.handle(.end)
        canvas.clear()
        app.render(on: canvas)
        let limit = App.detailMessageLines
        #expect(canvas.text.contains("  … \(12_800 - limit) more lines of this message"), "\(canvas.text)")
        #expect(canvas.text.contains("… 2 more messages (128 B) not shown here: sluice show 2 --hex prints them all"), "\(canvas.text)")
        // The last line shown of the big chunk is the bound's: offsets run on from the first.
        #expect(canvas.text.contains(String(format: "  %08x  ", (limit - 1) * 16)), "\(canvas.text)")
    }

    @Test func wrappingBreaksAtSpacesAndCutsOnlyWordsLongerThanALine() {
        #expect("short".wrapped(to: 10) == ["short"])
        #expect("one two three four".wrapped(to: 9) == ["one two", "  three", "  four"])
        #expect("abcdefghijkl mn".wrapped(to: 5) == ["abcde", "  fgh", "  ijk", "  l", "  mn"])
        #expect("a  b".wrapped(to: 10) == ["a  b"], "a line that fits is left alone")
    }

    @Test func marksGoToTheStoreWhileRecordingAndStayInMemoryInAReadOnlyView() {
        let kept = RecordedMarks()
        let app = App(engine: FakeEngine(), store: nil, feed: nil, marks: kept, title: "Sluice")
        app.apply([opened(1), opened(2)])
        app.handle(.up)
        app.handle(.character("m"))
        #expect(kept.calls.withLockedValue { $0 } == ["+1"])
        #expect(screen(app).lines.last == " flow 1 marked")
        #expect(app.selectedRow?.id == FlowID(2), "m moves on, for marking several in a row")
        app.handle(.up)
        app.handle(.enter)
        app.handle(.character("m"))
        #expect(kept.calls.withLockedValue { $0 } == ["+1", "-1"], "from the detail too")
        #expect(!app.marks.isMarked(FlowID(1), stored: false))

        let view = App(engine: nil, store: nil, feed: nil, title: "Sluice (read-only)")
        view.apply([opened(1)])
        view.handle(.character("m"))
        #expect(view.marks.isMarked(FlowID(1), stored: false))
        #expect(screen(view).lines.last == " flow 1 marked for this session only: `sluice view` is read-only")
    }

    @Test func storedMarksAreListedAndFiltered() throws {
        let second: [ProxyEvent] = [opened(2), message(2, "unmarked")]
        let (directory, cleanup) = try recordedStore(second, marked: [FlowID(1)])
        defer { cleanup() }
        let app = App(engine: nil, store: try Store(file: directory.databasePath), feed: nil, title: "Sluice (read-only)")
        let canvas = TextCanvas(width: 100, height: 30)
        var lastRender = Date.distantPast
        app.loadHistory()
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("unmarked") }))
        #expect(canvas.lines[2].hasPrefix("●1 "), "\(canvas.text)")
        #expect(canvas.lines[3].hasPrefix("2 "))
        app.handle(.character("f"))
        for character in "~marked" { app.handle(.character(character)) }
        app.handle(.enter)
        #expect(tick(app, until: { app.listed.map(\.id) == [FlowID(1)] }), "\(app.listed.map(\.id))")

        // Unmarked in this session: the store still says marked, the list does not.
        app.handle(.character("m"))
        app.handle(.character("f"))
        app.handle(.control("u"))
        for character in "~marked" { app.handle(.character(character)) }
        app.handle(.enter)
        #expect(tick(app, until: { app.listed.isEmpty && !app.filtering }), "\(app.listed.map(\.id))")
    }

    @Test func wSavesUnderTheDataDirectoryAndSaysWhereInFull() throws {
        let (directory, cleanup) = try recordedStore()
        defer { cleanup() }
        let exports = directory.exportsPath
        #expect(!FileManager.default.fileExists(atPath: exports))
        let app = App(
            engine: nil, store: try Store(file: directory.databasePath), feed: nil, dataDirectory: directory, title: "Sluice (read-only)"
        )
        app.loadHistory()
        #expect(tick(app, until: { app.listed.count == 1 }))

        app.handle(.character("w"))
        let offered = try #require(app.prompt?.text)
        #expect(offered.hasPrefix(exports + "/sluice-export-") && offered.hasSuffix(".sqlite"), "\(offered)")
        app.handle(.enter)
        #expect(tick(app, until: { app.status?.text.hasPrefix("saved") == true }), "\(app.status?.text ?? "")")
        #expect(app.status?.text == "saved 1 flows to \(offered); open with `sluice view \(offered)`")
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        }
        #expect(try mode(exports) == 0o700)
        #expect(try mode(offered) == 0o600)
        #expect(try Store(file: offered).flows(limit: 10).map(\.id) == [FlowID(1)])

        // A bare name goes to the same directory, not the working directory.
        app.handle(.character("w"))
        app.handle(.control("u"))
        for character in "mine.sqlite" { app.handle(.character(character)) }
        app.handle(.enter)
        let mine = exports + "/mine.sqlite"
        #expect(tick(app, until: { app.status?.text.hasPrefix("saved") == true }), "\(app.status?.text ?? "")")
        #expect(app.status?.text == "saved 1 flows to \(mine); open with `sluice view \(mine)`")
        #expect(try mode(mine) == 0o600)
    }

    @Test func liveFlowsAppearWithTheirFirstBytes() {
        let app = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        app.apply([opened(1), message(1, "GET / HTTP/1.1\r\n"), opened(2)])
        let text = screen(app).text
        #expect(text.contains("1 Flows"))
        #expect(text.contains("127.0.0.1:40001 → 10.0.0.5:7000"))
        #expect(text.contains("GET / HTTP/1.1"))
        #expect(app.selectedRow?.id == FlowID(2), "follow mode selects the newest")
    }

    @Test func aReplayIsListedAsTheReplayOfItsOriginal() {
        let app = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        let time = Date(timeIntervalSince1970: 1_796_080_701)
        app.apply([
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(7), kind: .http, listener: "replay", client: Endpoint(host: "replay", port: 0),
                    server: Endpoint(host: "10.0.0.5", port: 8080), time: time
                )
            ),
            .httpRequest(
                HTTPRequestStarted(
                    flowID: FlowID(7), time: time, method: "GET", url: "http://10.0.0.5:8080/a", version: "HTTP/1.1",
                    headers: [], replayOf: FlowID(3)
                )
            ),
        ])
        let text = screen(app, width: 140).text
        #expect(text.contains("replay of #3 → 10.0.0.5:8080"))
        #expect(!text.contains("replay:0"))
    }

    @Test func aReplaysDetailNamesItsOriginalAsTheListDoes() throws {
        let time = Date(timeIntervalSince1970: 1_796_080_701)
        let replay: [ProxyEvent] = [
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(2), kind: .http, listener: "replay", client: Endpoint(host: "replay", port: 0),
                    server: Endpoint(host: "10.0.0.5", port: 8080), time: time
                )
            ),
            .httpRequest(
                HTTPRequestStarted(
                    flowID: FlowID(2), time: time, method: "GET", url: "http://10.0.0.5:8080/a", version: "HTTP/1.1",
                    headers: [], replayOf: FlowID(1)
                )
            ),
        ]
        let (directory, cleanup) = try recordedStore(replay)
        defer { cleanup() }
        let app = App(engine: nil, store: try Store(file: directory.databasePath), feed: nil, title: "Sluice (read-only)")
        let canvas = TextCanvas(width: 100, height: 30)
        var lastRender = Date.distantPast
        app.loadHistory()
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("GET http") }))
        app.handle(.enter)
        #expect(frames(app, on: canvas, at: Date(), lastRender: &lastRender, until: { canvas.text.contains("HTTP/1.1") }))
        #expect(canvas.lines[1].hasPrefix("flow 2  http  replay of #1 → 10.0.0.5:8080"), "\(canvas.text)")
        #expect(canvas.text.contains("  (replay of #1)"))
        #expect(!canvas.text.contains("replay:0"))
        #expect(!canvas.text.contains("replay of flow"))
    }

    /// `f`, the prompt emptied of the filter shown, `text`, Enter.
    private func applyFilter(_ app: App, _ text: String) {
        app.handle(.character("f"))
        for _ in 0..<(app.listFilter.filter?.text.count ?? 0) { app.handle(.backspace) }
        for character in text { app.handle(.character(character)) }
        app.handle(.enter)
    }

    /// A live flow is listed, and counted, from the moment it comes to match the filter, not only if it matched
    /// when it opened; and it leaves the list when it stops matching.
    @Test func liveFlowsJoinAndLeaveTheFilteredListAsTheyChange() {
        let app = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        app.apply([opened(1), message(1, "hello there")])
        applyFilter(app, "~b hello")
        #expect(app.listed.map(\.id) == [FlowID(1)])
        app.apply([opened(2)])
        #expect(app.listed.map(\.id) == [FlowID(1)], "no bytes yet")
        #expect(app.flows.count.text == "1/2")
        app.apply([message(2, "hello again")])
        #expect(app.listed.map(\.id) == [FlowID(1), FlowID(2)])
        #expect(app.flows.count.text == "2/2")
        // Opened and matching within one tick: counted once.
        app.apply([opened(3), message(3, "hello, third")])
        #expect(app.listed.map(\.id) == [FlowID(1), FlowID(2), FlowID(3)])
        #expect(app.flows.count.text == "3/3")

        // `~q`: a request without a response. The response takes the flow off the list.
        let time = Date(timeIntervalSince1970: 1_796_080_701)
        let http = FlowOpened(
            flowID: FlowID(4), kind: .http, listener: "http://127.0.0.1:8080", client: Endpoint(host: "127.0.0.1", port: 40004),
            server: Endpoint(host: "10.0.0.5", port: 80), time: time
        )
        applyFilter(app, "~q")
        app.apply([.flowOpened(http)])
        #expect(app.listed.map(\.id) == [FlowID(4)], "an HTTP flow has no response yet when it opens")
        #expect(app.flows.count.text == "1/4")
        app.apply([
            .httpRequest(
                HTTPRequestStarted(flowID: FlowID(4), time: time, method: "GET", url: "http://10.0.0.5/a", version: "HTTP/1.1", headers: [])
            )
        ])
        #expect(app.listed.map(\.id) == [FlowID(4)])
        #expect(app.flows.count.text == "1/4")
        app.apply([
            .httpResponse(
                HTTPResponseStarted(
                    flowID: FlowID(4), time: time, status: 200, reason: "OK", version: "HTTP/1.1", headers: [], timings: HTTPTimings()
                )
            )
        ])
        #expect(app.listed.isEmpty)
        #expect(app.flows.count.text == "0/4")
    }

    @Test func filterPromptExplainsBadInputAndAppliesGoodInput() {
        let app = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        app.apply([opened(1, port: 7000), opened(2, port: 5432)])
        app.handle(.character("f"))
        for character in "~dst :5432 &" { app.handle(.character(character)) }
        app.handle(.enter)
        #expect(screen(app).lines.last?.contains("column 13: expected an expression after '&'") == true)
        app.handle(.backspace)
        app.handle(.backspace)
        app.handle(.enter)
        #expect(app.prompt == nil)
        #expect(app.listed.count == 1)
        let text = screen(app).text
        #expect(text.contains("10.0.0.5:5432"))
        #expect(!text.contains("10.0.0.5:7000"))
    }

    @Test func heldMessageIsEditedAndForwardedFromTheQueue() throws {
        let engine = FakeEngine()
        let app = App(engine: engine, store: nil, feed: nil, title: "Sluice")
        let forwarded = Box<Verdict?>(nil)
        let loop = EmbeddedEventLoop()
        engine.gate.hold(flowID: FlowID(1), sequence: 0, direction: .up, payload: Data("my secret".utf8), on: loop) { verdict, _ in
            forwarded.value = verdict
        }
        app.handle(.character("3"))
        #expect(screen(app).text.contains("my secret"))
        app.handle(.character("e"))
        for digit in "4d59" { app.handle(.character(digit)) }
        #expect(screen(app).text.contains("MY secret"))
        app.handle(.enter)
        loop.run()
        #expect(forwarded.value == .forward(edited: Data("MY secret".utf8)))
        #expect(engine.gate.held.isEmpty)
    }

    @Test func fitsEightyByTwentyFour() {
        let app = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        app.apply((1...40).map { opened(Int64($0)) })
        let canvas = screen(app, width: 80, height: 24)
        #expect(canvas.lines.count == 24)
        #expect(canvas.lines.allSatisfy { $0.count <= 80 })
        #expect(canvas.lines[0].contains("1 Flows"))
        #expect(canvas.text.contains("40 "), "the newest flow is on screen")
    }

    @Test func helpAndEmptyStates() {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.handle(.character("4"))
        #expect(screen(app).text.contains("No commands yet."))
        app.handle(.character("5"))
        #expect(screen(app).text.contains("No alerts."))
        app.handle(.character("?"))
        #expect(screen(app).text.contains("Keys"))
        app.handle(.character("q"))
        app.handle(.character("a"))
        app.handle(.character("i"))
        #expect(app.prompt == nil, "no intercept prompt without an engine")
        #expect(screen(app).lines.last?.contains("i: read-only: no engine in `sluice view`") == true)
    }

    /// `sluice view`: the tabs, the status line and the help offer only what works without an engine.
    @Test func aReadOnlyViewOffersOnlyWhatWorks() {
        let live = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        live.apply([opened(1)])
        let liveScreen = screen(live)
        #expect(liveScreen.lines[0].contains("2 Conns") && liveScreen.lines[0].contains("3 Intercept"))
        #expect(liveScreen.lines.last?.contains("i intercept") == true)

        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice (read-only)")
        app.apply([opened(1)])
        let text = screen(app)
        #expect(text.lines[0].contains("1 Flows") && text.lines[0].contains("? Help"))
        #expect(!text.lines[0].contains("Conns") && !text.lines[0].contains("Intercept"))
        #expect(text.lines.last == " 1/1 flows ↓follow  │  ? help  │  f filter  │  q quit")
        for key in ["3", "2", "r", "A"] {
            app.handle(.character(Character(key)))
            #expect(app.view == .flows)
            #expect(screen(app).lines.last?.contains("\(key): read-only") == true, "\(key)")
        }
        app.handle(.enter)
        #expect(screen(app).lines.last == " ? help  │  f filter  │  q back", "detail: q goes back")
        app.handle(.character("?"))
        let help = screen(app, height: 200).text
        let keys = help.components(separatedBy: "Not available (read-only: no engine in `sluice view`)")
        #expect(keys.count == 2, "\(help)")
        #expect(!keys[0].contains("intercept filter") && keys[1].contains("intercept filter"))
        #expect(!keys[0].contains("forward the held message") && !help.contains("Hex editor"))
        #expect(keys[0].contains("view filter") && keys[0].contains("mark / unmark"))
    }

    /// A store of many flows: the list holds a window of them, read a page at a time, filtered in SQL where it can be
    /// and in Swift where it cannot; keys move through all of them, and live flows join at the end.
    @Test func aLargeStoreIsListedAWindowAtATime() throws {
        let count = 5_000
        let events = (1...count).flatMap { id -> [ProxyEvent] in
            [opened(Int64(id), port: id % 2 == 0 ? 5432 : 7000), message(Int64(id), "hello \(id)")]
        }
        let (directory, cleanup) = try recordedStore(Array(events.dropFirst(2)))
        defer { cleanup() }
        let app = App(engine: FakeEngine(), store: try Store(file: directory.databasePath), feed: nil, title: "Sluice")
        app.loadHistory()
        #expect(tick(app, until: { app.selectedRow?.id == FlowID(Int64(count)) && app.flows.count.total == count }))
        #expect(app.listed.count <= FlowWindow.capacity, "a window, not the whole history")
        #expect(screen(app).lines.last?.hasPrefix(" \(count)/\(count) flows") == true)

        // Home reads the oldest page; PgDn moves through it and the next pages come as the selection nears them.
        app.handle(.home)
        #expect(tick(app, until: { app.selectedRow?.id == FlowID(1) }))
        for _ in 0..<80 { app.handle(.pageDown) }
        #expect(tick(app, until: { (app.selectedRow?.id.rawValue ?? 0) > 1_000 }), "\(String(describing: app.selectedRow?.id))")
        #expect(app.listed.count <= FlowWindow.capacity)

        // A filter SQL decides in part (the port) and Swift checks (the payload), around the selected flow.
        app.handle(.character("f"))
        for character in "~dst :5432 & ~b 'hello 4'" { app.handle(.character(character)) }
        app.handle(.enter)
        #expect(app.filtering, "the keypress returns before the filter has run")
        #expect(tick(app, until: { !app.filtering && !app.listed.isEmpty }))
        #expect(app.listed.allSatisfy { $0.id.rawValue % 2 == 0 && String(decoding: $0.previewUp, as: UTF8.self).hasPrefix("hello 4") })
        app.handle(.end)
        #expect(tick(app, until: { app.selectedRow?.id == FlowID(4998) }), "\(String(describing: app.selectedRow?.id))")
        #expect(tick(app, until: { screen(app).lines.last?.hasPrefix(" 556/5000 flows") == true }), "\(screen(app).text)")

        // Live flows join at the end, filtered as they arrive.
        #expect(tick(app, until: { app.flows.count.listed != nil }))
        app.apply([opened(Int64(count + 1), port: 5432), message(Int64(count + 1), "hello 4 live"), opened(Int64(count + 2), port: 7000)])
        #expect(app.listed.last?.id == FlowID(Int64(count + 1)))
        #expect(app.flows.count.total == count + 2)

        // A search finds a flow beyond the window.
        app.handle(.character("f"))
        app.handle(.control("u"))
        app.handle(.enter)
        app.handle(.home)
        #expect(tick(app, until: { app.selectedRow?.id == FlowID(1) }))
        app.handle(.character("/"))
        for character in "hello 4321" { app.handle(.character(character)) }
        app.handle(.enter)
        #expect(tick(app, until: { app.selectedRow?.id == FlowID(4321) }), "\(String(describing: app.selectedRow?.id))")
    }

    @Test func markSearchAndClear() {
        let app = App(engine: FakeEngine(), store: nil, feed: nil, title: "Sluice")
        app.apply([opened(1), message(1, "alpha"), opened(2), message(2, "beta"), opened(3), message(3, "gamma")])
        app.handle(.character("/"))
        for character in "beta" { app.handle(.character(character)) }
        app.handle(.enter)
        #expect(app.selectedRow?.id == FlowID(2))
        app.handle(.character("m"))
        #expect(app.marks.marked == [FlowID(2)])
        app.handle(.character("z"))
        #expect(app.listed.isEmpty)
        app.apply([opened(4)])
        #expect(app.listed.count == 1)
    }
}

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
