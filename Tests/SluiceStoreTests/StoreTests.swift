import Foundation
import GRDB
import Logging
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceStore

@Suite(.ownThread) struct StoreTests {
    private func temporaryDirectory() -> DataDirectory {
        DataDirectory(path: NSTemporaryDirectory() + "sluice-store-test-\(UUID().uuidString)")
    }

    private let start = Date(timeIntervalSince1970: 1_796_080_701.5)

    private func flowEvents(_ id: Int64, payloads: [(Direction, String)], error: String? = nil) -> [ProxyEvent] {
        let flowID = FlowID(id)
        var events: [ProxyEvent] = [
            .flowOpened(
                FlowOpened(
                    flowID: flowID, kind: .tcp, listener: "tcp://127.0.0.1:9000=>10.0.0.5:7000",
                    client: Endpoint(host: "127.0.0.1", port: 50000 + Int(id)), server: Endpoint(host: "10.0.0.5", port: 7000), time: start
                )
            )
        ]
        for (index, (direction, text)) in payloads.enumerated() {
            events.append(
                .message(Message(flowID: flowID, sequence: Int64(index), direction: direction, time: start, size: text.utf8.count, payload: Data(text.utf8)))
            )
        }
        if let error {
            events.append(.flowError(FlowError(flowID: flowID, phase: .client, time: start, message: error)))
        }
        let up = payloads.filter { $0.0 == .up }.reduce(0) { $0 + $1.1.utf8.count }
        let down = payloads.filter { $0.0 == .down }.reduce(0) { $0 + $1.1.utf8.count }
        events.append(
            .flowClosed(
                FlowClosed(
                    flowID: flowID, time: start.addingTimeInterval(2), bytesUp: Int64(up), bytesDown: Int64(down),
                    state: error == nil ? .closed : .error, error: error.map { "client: \($0)" }, payloadTruncated: false
                )
            )
        )
        return events
    }

    @Test func aReplayedConnectionNamesTheFlowItRepeats() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in flowEvents(1, payloads: [(.up, "Q")]) { writer.receive(event) }
        writer.receive(
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(2), kind: .postgres, listener: "postgres://127.0.0.1:6432=>127.0.0.1:5432",
                    client: Endpoint(host: "replay", port: 0), server: Endpoint(host: "127.0.0.1", port: 5432), time: start,
                    replayOf: FlowID(1)
                )
            )
        )
        writer.close()
        let store = try Store(directory: directory)
        let flows = try store.flows(limit: 10)
        #expect(flows.map(\.replayOf) == [nil, FlowID(1)])
        #expect(flows[1].origin == Formatting.replay(of: FlowID(1)))
        #expect(try store.flow(FlowID(2))?.replayOf == FlowID(1))
    }

    @Test func writtenEventsReadBackInOrder() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        #expect(try writer.nextFlowID() == FlowID(1))
        for event in flowEvents(1, payloads: [(.up, "GET /"), (.down, "200 OK"), (.up, "bye")]) { writer.receive(event) }
        for event in flowEvents(2, payloads: [], error: "connection reset by peer") { writer.receive(event) }
        writer.close()

        let store = try Store(directory: directory)
        let flows = try store.flows(limit: 10)
        #expect(flows.map(\.id) == [FlowID(1), FlowID(2)])
        #expect(flows[0].client == "127.0.0.1:50001")
        #expect(flows[0].bytesUp == 8 && flows[0].bytesDown == 6)
        #expect(flows[0].state == "closed")
        #expect(flows[0].duration == 2)
        #expect(flows[1].state == "error")
        #expect(flows[1].error == "client: connection reset by peer")
        let messages = try store.messages(of: FlowID(1))
        #expect(messages.map(\.direction) == [.up, .down, .up])
        #expect(messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["GET /", "200 OK", "bye"])
        #expect(try store.errors(of: FlowID(2)).map(\.message) == ["connection reset by peer"])
        #expect(try store.flow(FlowID(3)) == nil)
        #expect(try store.flows(limit: 1).map(\.id) == [FlowID(2)], "the newest flows")
        #expect(try store.integrityCheck() == ["ok"])
    }

    @Test func jsonLinesAreOneParsableObjectPerLine() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in flowEvents(1, payloads: [(.up, "\u{0}\u{1}binary\n"), (.down, "ok")], error: "weird \"quoted\"\nerror") {
            writer.receive(event)
        }
        writer.close()

        let day = (directory.logsPath as NSString).appendingPathComponent(Timestamp.day(start))
        func lines(_ name: String) throws -> [[String: Any]] {
            let text = try String(contentsOfFile: (day as NSString).appendingPathComponent(name), encoding: .utf8)
            return try text.split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            }
        }
        let flows = try lines("flows.jsonl")
        #expect(flows.map { $0["event"] as? String } == ["open", "close"])
        #expect(flows[1]["duration_ms"] as? Int == 2000)
        #expect(flows[1]["state"] as? String == "error")
        let messages = try lines("messages.jsonl")
        #expect(messages.count == 2)
        #expect(messages[0]["payload"] as? String == Data("\u{0}\u{1}binary\n".utf8).base64EncodedString())
        #expect(messages[0]["time"] as? String == "2026-11-30T23:18:21.500Z")
        let errors = try lines("errors.jsonl")
        #expect(errors.first?["message"] as? String == "weird \"quoted\"\nerror")
    }

    @Test func aBodySeenBeforeIsStoredOnceAndReadsBackEverywhere() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let big = String(repeating: "0123456789abcdef", count: 512)  // 8 KiB: kept in `bodies`
        let other = String(repeating: "x", count: 5000)
        let small = "tiny body"  // under the threshold: inline
        let bodies = [(1, big), (2, big), (3, other), (4, small), (5, small), (6, big)]
        func bodyFlow(_ id: Int, _ text: String) -> [ProxyEvent] {
            flowEvents(Int64(id), payloads: [(.down, text)]).map { event in
                guard case .message(var message) = event else { return event }
                message.kind = .body
                return .message(message)
            }
        }
        for (id, text) in bodies.prefix(5) {
            for event in bodyFlow(id, text) { writer.receive(event) }
        }
        writer.close()
        // A later sighting comes to a new writer, which has to find the body in the file.
        let second = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for (id, text) in bodies.suffix(1) {
            for event in bodyFlow(id, text) { second.receive(event) }
        }
        second.close()

        let store = try Store(directory: directory)
        for (id, text) in bodies {
            #expect(try store.messages(of: FlowID(Int64(id))).map { String(decoding: $0.payload, as: UTF8.self) } == [text])
        }
        #expect(try store.flowPage(ids: 0...Int64.max, where: FlowQuery(), newestFirst: false, limit: 10).map { String(decoding: $0.previewDown ?? Data(), as: UTF8.self) }
            == bodies.map { String($0.1.prefix(256)) })
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bodies") } == 2)
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages WHERE body_id IS NULL") } == 2)
        #expect(try store.integrityCheck() == ["ok"])

        let copy = NSTemporaryDirectory() + "sluice-export-\(UUID().uuidString).sqlite"
        try store.export([FlowID(2), FlowID(4)], to: copy)
        let exported = try Store(file: copy)
        #expect(try exported.messages(of: FlowID(2)).map { String(decoding: $0.payload, as: UTF8.self) } == [big])
        #expect(try exported.messages(of: FlowID(4)).map { String(decoding: $0.payload, as: UTF8.self) } == [small])

        // The JSON log names each shared body by its digest and carries its bytes once a day.
        let day = (directory.logsPath as NSString).appendingPathComponent(Timestamp.day(start))
        let text = try String(contentsOfFile: (day as NSString).appendingPathComponent("messages.jsonl"), encoding: .utf8)
        let lines = try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(lines.count == 6)
        #expect(lines.map { $0["sha256"] != nil } == [true, true, true, false, false, true])
        #expect(lines.map { $0["payload"] != nil } == [true, false, true, true, true, true], "a new process logs it again once")
        #expect(lines[0]["sha256"] as? String == lines[1]["sha256"] as? String)
        #expect(lines[0]["payload"] as? String == Data(big.utf8).base64EncodedString())
        #expect(lines[4]["payload"] as? String == Data(small.utf8).base64EncodedString())
    }

    @Test func jsonLinesFollowTheUTCDayAndEachDayCarriesASharedBodyOnce() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let body = Data(String(repeating: "abcdefgh", count: 1024).utf8)  // 8 KiB: kept once
        let beforeMidnight = Date(timeIntervalSince1970: 1_796_083_199.9)  // 2026-11-30T23:59:59.900Z
        let afterMidnight = Date(timeIntervalSince1970: 1_796_083_200.1)  // 2026-12-01T00:00:00.100Z
        writer.receive(
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(1), kind: .http, listener: "http://127.0.0.1:8080", client: Endpoint(host: "127.0.0.1", port: 5000),
                    server: Endpoint(host: "10.0.0.5", port: 80), time: beforeMidnight
                )
            )
        )
        for (index, time) in [beforeMidnight, beforeMidnight, afterMidnight, afterMidnight].enumerated() {
            writer.receive(
                .message(
                    Message(flowID: FlowID(1), sequence: Int64(index), direction: .down, time: time, size: body.count, payload: body, kind: .body)
                )
            )
        }
        writer.close()
        func lines(_ day: String) throws -> [[String: Any]] {
            let path = ((directory.logsPath as NSString).appendingPathComponent(day) as NSString).appendingPathComponent("messages.jsonl")
            return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            }
        }
        let first = try lines("2026-11-30")
        let second = try lines("2026-12-01")
        #expect(first.map { $0["payload"] != nil } == [true, false])
        #expect(second.map { $0["payload"] != nil } == [true, false], "a new day's file carries the body again")
        #expect(first.map { $0["time"] as? String } == ["2026-11-30T23:59:59.900Z", "2026-11-30T23:59:59.900Z"])
        #expect(second.first?["time"] as? String == "2026-12-01T00:00:00.100Z")
    }

    @Test func filesArePrivate() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in flowEvents(1, payloads: [(.up, "secret")]) { writer.receive(event) }
        writer.close()
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        }
        #expect(try mode(directory.path) == 0o700)
        #expect(try mode(directory.databasePath) == 0o600)
        let day = (directory.logsPath as NSString).appendingPathComponent(Timestamp.day(start))
        #expect(try mode((day as NSString).appendingPathComponent("messages.jsonl")) == 0o600)
    }

    @Test func idsContinueAndUnclosedFlowsBecomeInterrupted() throws {
        let directory = temporaryDirectory()
        let first = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in flowEvents(1, payloads: []) { first.receive(event) }
        // Flow 2 opens but its process dies before the close.
        first.receive(flowEvents(2, payloads: [])[0])
        first.close()

        let second = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        #expect(try second.nextFlowID() == FlowID(3))
        second.close()
        let flows = try Store(directory: directory).flows(limit: 10)
        #expect(flows.map(\.state) == ["closed", "interrupted"])
    }

    /// A flow the process never closed (kill -9) was listed with 0 bytes: its totals were written only at close.
    /// Marked interrupted, it carries what its recorded messages add up to.
    @Test func anInterruptedFlowCarriesTheTotalsOfItsMessages() throws {
        let directory = temporaryDirectory()
        let first = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let events = flowEvents(7, payloads: [(.up, "hello"), (.down, String(repeating: "d", count: 3000)), (.down, "!")])
        for event in events.dropLast() { first.receive(event) }  // no close
        first.close()
        let second = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        second.close()
        let flow = try #require(try Store(directory: directory).flows(limit: 10).first)
        #expect(flow.state == "interrupted")
        #expect(flow.bytesUp == 5 && flow.bytesDown == 3001)
    }

    /// A JSON Lines file that cannot be written (here one that is /dev/full, which refuses every write with
    /// ENOSPC) keeps its lines pending; the files that could be written are not written again, and once the file
    /// takes writes every line is in it exactly once.
    @Test func aFailedJSONLinesWriteIsRetriedWithoutRepeatingALine() throws {
        let root = NSTemporaryDirectory() + "sluice-jsonl-test-\(UUID().uuidString)"
        let log = JSONLinesLog(directory: root)
        let dayFolder = root + "/" + Timestamp.day(start)
        try FileManager.default.createDirectory(atPath: dayFolder, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dayFolder + "/messages.jsonl", withDestinationPath: "/dev/full")
        for event in flowEvents(1, payloads: [(.up, "one"), (.down, "two")]) { log.append(event) }
        #expect(throws: StoreError.self) { try log.flush() }
        #expect(log.pendingByteCount > 0)
        // The disk has room again.
        try FileManager.default.removeItem(atPath: dayFolder + "/messages.jsonl")
        log.close()
        try log.flush()
        #expect(log.pendingByteCount == 0)
        let flows = try String(contentsOfFile: dayFolder + "/flows.jsonl", encoding: .utf8).split(separator: "\n")
        let messages = try String(contentsOfFile: dayFolder + "/messages.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(flows.count == 2, "open and close, once each: \(flows)")
        #expect(messages.count == 2, "\(messages)")
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The log keeps a written day's buffers for the next batch; lines of a later day that reuse them go to that
    /// day's files, and none is written twice.
    @Test func batchesAfterTheFirstReuseTheBuffersAndKeepEachDayApart() throws {
        let root = NSTemporaryDirectory() + "sluice-jsonl-test-\(UUID().uuidString)"
        let log = JSONLinesLog(directory: root)
        let nextDay = start.addingTimeInterval(86_400)
        func opened(_ id: Int64, at time: Date) -> ProxyEvent {
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(id), kind: .tcp, listener: "tcp://127.0.0.1:9000=>10.0.0.5:7000", client: Endpoint(host: "127.0.0.1", port: 5000),
                    server: Endpoint(host: "10.0.0.5", port: 7000), time: time
                )
            )
        }
        log.append(opened(1, at: start))
        try log.flush()
        log.append(opened(2, at: start))
        log.append(opened(3, at: nextDay))
        try log.flush()
        log.append(opened(4, at: nextDay))
        try log.flush()
        #expect(log.pendingByteCount == 0)
        func flows(on day: Date) throws -> [Int] {
            try String(contentsOfFile: root + "/" + Timestamp.day(day) + "/flows.jsonl", encoding: .utf8).split(separator: "\n").map { line in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return try #require(object["flow"] as? Int)
            }
        }
        #expect(try flows(on: start) == [1, 2])
        #expect(try flows(on: nextDay) == [3, 4])
        try? FileManager.default.removeItem(atPath: root)
    }

    @Test func backlogAboveHighWaterAsksTheEngineToWait() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(
            directory: directory, logger: Logger(label: "test"), batchInterval: 0.05, batchSize: 1_000_000, highWaterBytes: 10_000,
            lowWaterBytes: 5_000
        )
        #expect(!writer.isBackedUp)
        // Another connection holds the write lock, so the writer cannot catch up until it lets go.
        var blocking = Configuration()
        blocking.allowsUnsafeTransactions = true
        let blocker = try DatabaseQueue(path: directory.databasePath, configuration: blocking)
        try blocker.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let big = String(repeating: "x", count: 20_000)
        for event in flowEvents(1, payloads: [(.up, big)]) { writer.receive(event) }
        #expect(writer.isBackedUp)
        try blocker.inDatabase { db in try db.execute(sql: "COMMIT") }
        let drained = DispatchSemaphore(value: 0)
        writer.whenDrained { drained.signal() }
        #expect(drained.wait(timeout: .now() + 5) == .success, "the writer catches up and calls back")
        #expect(!writer.isBackedUp)
        writer.close()
        #expect(try Store(directory: directory).messages(of: FlowID(1)).first?.payload.count == 20_000)
    }

    @Test func aReplayIsNamedByItsOriginalNotItsPlaceholderClient() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in flowEvents(1, payloads: []) { writer.receive(event) }
        writer.receive(
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(2), kind: .http, listener: "replay", client: Endpoint(host: "replay", port: 0),
                    server: Endpoint(host: "10.0.0.5", port: 8080), time: start
                )
            )
        )
        writer.receive(
            .httpRequest(
                HTTPRequestStarted(
                    flowID: FlowID(2), time: start, method: "GET", url: "http://10.0.0.5:8080/", version: "HTTP/1.1", headers: [],
                    replayOf: FlowID(1)
                )
            )
        )
        writer.close()
        let flows = try Store(directory: directory).flows(limit: 10)
        #expect(flows.map(\.origin) == ["127.0.0.1:50001", "replay of #1"])
        #expect(flows[1].client == "replay:0", "the recorded client, as JSON keeps it")
    }

    @Test func marksAreKeptWithTheFlowsAndFiltersSeeThem() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let first = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        // Marked as soon as the writer has the flow's events, before they are written: the mark comes after them.
        for event in flowEvents(1, payloads: [(.up, "one")]) + flowEvents(2, payloads: [(.up, "two")]) { first.receive(event) }
        first.setMarked(true, flow: FlowID(1))
        first.setMarked(true, flow: FlowID(2))
        first.setMarked(false, flow: FlowID(2))
        first.close()
        let store = try Store(directory: directory)
        #expect(try store.flows(limit: 10).map(\.marked) == [true, false])
        let marked = try Filter("~marked")
        let selected = try store.flows(limit: 10).filter { marked.matches($0.filterSubject(messages: try store.messages(of: $0.id))) }
        #expect(selected.map(\.id) == [FlowID(1)], "`sluice flows --filter ~marked` sees the stored mark")

        // The next session changes them; a saved file keeps them.
        let second = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        second.setMarked(false, flow: FlowID(1))
        second.setMarked(true, flow: FlowID(2))
        second.close()
        #expect(try Store(directory: directory).flows(limit: 10).map(\.marked) == [false, true])
        let file = NSTemporaryDirectory() + "sluice-export-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Store(directory: directory).export([FlowID(1), FlowID(2)], to: file)
        #expect(try Store(file: file).flows(limit: 10).map(\.marked) == [false, true])
    }

    @Test func aStoreFromBeforeMarksIsMigratedWithNothingMarked() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        try directory.prepareForWriting()
        let old = try DatabaseQueue(path: directory.databasePath)
        try Schema.migrator.migrate(old, upTo: "v4: HTTP head bytes in the flow totals")
        try old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO flows (id, kind, listener, client, server, started_at, state)
                    VALUES (1, 'tcp', 'tcp://:9000=>h:7000', '127.0.0.1:50001', '10.0.0.5:7000', 1796080701, 'closed')
                    """
            )
        }
        try old.close()
        #expect(throws: StoreError.self, "read-only, an old store is not migrated") { try Store(directory: directory) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        writer.setMarked(true, flow: FlowID(1))
        writer.close()
        let flows = try Store(directory: directory).flows(limit: 10)
        #expect(flows.map(\.id) == [FlowID(1)])
        #expect(flows.map(\.marked) == [true])
    }

    @Test func exportedFlowsOpenAsAStoreOfTheirOwn() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for id in Int64(1)...3 {
            for event in flowEvents(id, payloads: [(.up, "request \(id)"), (.down, "reply \(id)")], error: id == 2 ? "reset" : nil) {
                writer.receive(event)
            }
        }
        writer.close()
        let file = NSTemporaryDirectory() + "sluice-export-\(UUID().uuidString).sqlite"
        try Store(directory: directory).export([FlowID(2), FlowID(3)], to: file)

        let exported = try Store(file: file)
        #expect(try exported.flows(limit: 10).map(\.id) == [FlowID(2), FlowID(3)])
        #expect(try exported.messages(of: FlowID(3)).map { String(decoding: $0.payload, as: UTF8.self) } == ["request 3", "reply 3"])
        #expect(try exported.errors(of: FlowID(2)).map(\.message) == ["reset"])
        #expect(try exported.integrityCheck() == ["ok"])
        #expect(throws: StoreError.self, "never overwrites a file") { try Store(directory: directory).export([FlowID(1)], to: file) }
    }

    @Test func missingStoreAndUnwritableDirectoryAreOneLine() throws {
        #expect {
            try Store(directory: DataDirectory(path: "/nonexistent/sluice"))
        } throws: { error in
            "\(error)".hasPrefix("no store at /nonexistent/sluice/sluice.sqlite")
        }
        // A path below a regular file cannot become a directory, even for root.
        let file = NSTemporaryDirectory() + "sluice-not-a-dir-\(UUID().uuidString)"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect {
            try StoreWriter(directory: DataDirectory(path: file + "/data"), logger: Logger(label: "test"))
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("cannot create data directory \(file)/data:") && !text.contains("\n")
        }
    }
}

@Suite struct SharedBodiesTests {
    private func bodyMessage(_ bytes: [UInt8]) -> Message {
        Message(flowID: FlowID(1), sequence: 0, direction: .down, time: Date(), size: bytes.count, payload: Data(bytes), kind: .body)
    }

    /// Stores each body in its own committed batch, as the writer does, and returns the row ids.
    private func store(_ bodies: [[UInt8]], in shared: SharedBodies, _ database: DatabaseQueue) throws -> [Int64] {
        try bodies.map { bytes in
            let digest = try #require(shared.digest(of: bodyMessage(bytes)))
            #expect(digest == Data(SHA256Reference.digest(bytes)), "the digest is the body's SHA-256, also when recognized")
            var batch = SharedBodies.BatchRows()
            let id = try database.write { db in try shared.rowID(for: Data(bytes), digest: digest, in: db, batch: &batch) }
            shared.committed(batch)
            return id
        }
    }

    @Test func aBodyMetAgainIsRecognizedAndALookalikeIsNot() throws {
        let database = try DatabaseQueue()
        try Schema.migrator.migrate(database)
        let shared = SharedBodies()
        let body = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var lookalike = body
        lookalike[5_000] ^= 0xFF  // same size, head and tail: the same fingerprint, other bytes
        let ids = try store([body, body, lookalike, body, lookalike], in: shared, database)
        #expect(ids[0] == ids[1] && ids[1] == ids[3])
        #expect(ids[2] == ids[4] && ids[2] != ids[0])
        #expect(try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bodies") } == 2)
        // Small bodies and other kinds stay inline.
        #expect(shared.digest(of: bodyMessage(Array(repeating: 1, count: 100))) == nil)
        #expect(shared.digest(of: Message(flowID: FlowID(1), sequence: 0, direction: .up, time: Date(), size: 9000,
                                          payload: Data(count: 9000), kind: .chunk)) == nil)
    }
}

/// SHA-256 from the system's `sha256sum`, to check the store's digests against an implementation of its own.
enum SHA256Reference {
    static func digest(_ bytes: [UInt8]) -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try? process.run()
        input.fileHandleForWriting.write(Data(bytes))
        try? input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let hex = Array(text.prefix(64).utf8)
        return stride(from: 0, to: hex.count, by: 2).compactMap { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16) }
    }
}
