import Foundation
import NIOCore
import SluiceModel
import SluicePolicy
import SluiceTestSupport
import Testing

@testable import SluiceCore
@testable import SluicePostgres

/// The PostgreSQL inspector without channels: a session's bytes in, relay actions and recorded commands out.
@Suite struct PostgresInspectorTests {
    private final class Harness {
        let events = EventCollector()
        let gate: InterceptGate
        let cancelKeys: PostgresCancelKeys
        let inspector: PostgresInspector
        static let server = Endpoint(host: "10.0.0.9", port: 5432)

        init(policy: Policy = .builtIn, cancelKeys: PostgresCancelKeys = PostgresCancelKeys()) {
            let bus = FlowBus(subscribers: [events])
            gate = InterceptGate(bus: bus)
            self.cancelKeys = cancelKeys
            let recorder = FlowRecorder(flowID: FlowID(5), bus: bus, limits: RecordingLimits(recordPayloads: true, maxPayloadBytes: 1 << 20, maxFlowBytes: 1 << 30))
            recorder.opened(kind: .postgres, listener: "test", client: Endpoint(host: "127.0.0.1", port: 4000), server: Self.server)
            let commands = CommandLog(flowID: FlowID(5), target: Self.server, bus: bus, policy: SharedPolicy(policy), gate: gate)
            inspector = PostgresInspector(recorder: recorder, gate: gate, commands: commands, cancelKeys: cancelKeys, server: Self.server)
        }

        func client(_ bytes: [UInt8]) -> [RelayAction] { read(bytes, .up) }
        func server(_ bytes: [UInt8]) -> [RelayAction] { read(bytes, .down) }

        func read(_ bytes: [UInt8], _ direction: Direction) -> [RelayAction] {
            var actions: [RelayAction] = []
            inspector.read(ByteBuffer(bytes: bytes), direction: direction, into: &actions)
            return actions
        }

        func release(_ hold: RelayHold, _ verdict: Verdict, by decider: Decider = .operator) -> [RelayAction] {
            var actions: [RelayAction] = []
            inspector.released(hold, verdict: verdict, decidedBy: decider, into: &actions)
            return actions
        }

        /// A trust login: startup from the client, then AuthenticationOk, BackendKeyData and ReadyForQuery.
        func login(user: String = "app", database: String = "shop") {
            _ = client(Wire.startup([("user", user), ("database", database)]))
            _ = server(Self.loginReply)
        }

        static let loginReply =
            Wire.message("R", Wire.int32(0)) + Wire.message("S", Wire.cstring("server_version"), Wire.cstring("15.18"))
            + Wire.message("K", Wire.int32(4242), Wire.int32(777)) + Wire.message("Z", Wire.byte("I"))

        var commands: [Command] {
            events.events.compactMap { if case .command(let command) = $0 { return command } else { return nil } }
        }

        var finished: [CommandFinished] {
            events.events.compactMap { if case .commandFinished(let done) = $0 { return done } else { return nil } }
        }
    }

    /// The bytes the actions pass on or answer, in order, by kind.
    private static func passed(_ actions: [RelayAction]) -> [UInt8] {
        actions.flatMap { action -> [UInt8] in
            if case .pass(let buffer) = action { return Array(buffer.readableBytesView) }
            return []
        }
    }

    private static func answered(_ actions: [RelayAction]) -> [UInt8] {
        actions.flatMap { action -> [UInt8] in
            if case .answer(let buffer) = action { return Array(buffer.readableBytesView) }
            return []
        }
    }

    private static func ending(_ actions: [RelayAction]) -> RelayEnding? {
        for case .end(let ending) in actions { return ending }
        return nil
    }

    /// Decodes the typed messages in `bytes` (a backend stream) or fails the test.
    private static func backendMessages(_ bytes: [UInt8]) throws -> [PostgresBackendMessage] {
        var framer = PostgresFramer(direction: .backend)
        var buffer = ByteBuffer(bytes: bytes)
        var messages: [PostgresBackendMessage] = []
        while let frame = try framer.next(&buffer) {
            guard case .message(let type, let body) = frame.kind else { continue }
            messages.append(try PostgresBackendMessage(type: type, body: body))
        }
        return messages
    }

    private static func frontendMessages(_ bytes: [UInt8]) throws -> [PostgresFrontendMessage] {
        var framer = PostgresFramer(direction: .frontend)
        framer.expectTypedMessages()
        var buffer = ByteBuffer(bytes: bytes)
        var messages: [PostgresFrontendMessage] = []
        while let frame = try framer.next(&buffer) {
            guard case .message(let type, let body) = frame.kind else { continue }
            messages.append(try PostgresFrontendMessage(type: type, body: body))
        }
        return messages
    }

    private static func errorReply(_ message: String, code: String = "42601") -> [UInt8] {
        Wire.message(
            "E", Wire.byte("S"), Wire.cstring("ERROR"), Wire.byte("V"), Wire.cstring("ERROR"), Wire.byte("C"), Wire.cstring(code),
            Wire.byte("M"), Wire.cstring(message), Wire.byte("P"), Wire.cstring("1"), [0]
        )
    }

    // MARK: Statements

    @Test func aQueryIsACommandThatPassesUnchangedAndEndsWithItsReplies() throws {
        let harness = Harness()
        harness.login()
        let query = Wire.message("Q", Wire.cstring("SELECT 1"))
        #expect(Self.passed(harness.client(query)) == query)
        let command = try #require(harness.commands.first)
        #expect((command.kind, command.text, command.user, command.database) == (.sql, "SELECT 1", "app", "shop"))
        #expect(command.decision == .allowed && command.risk == .low)
        let reply =
            Wire.message("T", Wire.int16(0)) + Wire.message("D", Wire.int16(1), Wire.value(Array("1".utf8)))
            + Wire.message("C", Wire.cstring("SELECT 1")) + Wire.message("Z", Wire.byte("I"))
        #expect(Self.passed(harness.server(reply)) == reply, "replies pass as one run")
        #expect(harness.finished.map(\.outcome) == [CommandOutcome(result: "SELECT 1")])
    }

    @Test func aBlockedQueryGoesAsAStandInAndTheServersErrorComesBackRewritten() throws {
        let harness = Harness()
        harness.login()
        let actions = harness.client(Wire.message("Q", Wire.cstring("DROP DATABASE shop")))
        guard case .query(let standIn)? = try Self.frontendMessages(Self.passed(actions)).first else {
            Issue.record("expected a stand-in query, got \(actions)")
            return
        }
        #expect(standIn.hasPrefix("sluice_blocked_") && !standIn.contains("DROP"))
        #expect(harness.commands.first?.decision == .blocked && harness.commands.first?.rule == "drop-database")
        // The server cannot parse the stand-in; its error is rewritten, its ReadyForQuery (and status) kept.
        let reply = Self.errorReply("syntax error at or near \"\(standIn)\"") + Wire.message("Z", Wire.byte("T"))
        let back = try Self.backendMessages(Self.passed(harness.server(reply)))
        guard case .errorResponse(let fields)? = back.first else {
            Issue.record("expected an error, got \(back)")
            return
        }
        #expect(fields.sqlState == "42501" && fields.severity == "ERROR" && fields.position == nil)
        #expect(fields.message?.hasPrefix("blocked by Sluice policy: ") == true)
        #expect(fields.message?.contains("drop-database") == true)
        #expect(back.last == .readyForQuery(.inTransaction))
        #expect(harness.finished.first?.outcome.error?.contains("42501") == true)
    }

    @Test func anErrorThatOnlyLooksLikeAStandInsIsNotRewritten() throws {
        let harness = Harness()
        harness.login()
        let query = Wire.message("Q", Wire.cstring("SELECT sluice_blocked_x_0"))
        _ = harness.client(query)
        let reply = Self.errorReply("column \"sluice_blocked_x_0\" does not exist", code: "42703") + Wire.message("Z", Wire.byte("I"))
        #expect(Self.passed(harness.server(reply)) == reply)
    }

    @Test func anExtendedBatchRecordsEachExecuteWithItsParameters() throws {
        let harness = Harness()
        harness.login()
        let batch =
            Wire.message("P", Wire.cstring("s1"), Wire.cstring("SELECT $1::int, $2"), Wire.int16(0))
            + Wire.message("B", Wire.cstring(""), Wire.cstring("s1"), Wire.int16(2), Wire.int16(0), Wire.int16(1), Wire.int16(2),
                Wire.value(Array("42".utf8)), Wire.value([0xde, 0xad]), Wire.int16(0))
            + Wire.message("D", Wire.byte("P"), Wire.cstring("")) + Wire.message("E", Wire.cstring(""), Wire.int32(0))
            + Wire.message("S")
        #expect(Self.passed(harness.client(batch)) == batch)
        let rebind =
            Wire.message("B", Wire.cstring(""), Wire.cstring("s1"), Wire.int16(0), Wire.int16(2), Wire.value(Array("7".utf8)), Wire.value(nil), Wire.int16(0))
            + Wire.message("E", Wire.cstring(""), Wire.int32(0)) + Wire.message("S")
        _ = harness.client(rebind)
        #expect(harness.commands.map(\.text) == ["SELECT $1::int, $2", "SELECT $1::int, $2"], "one command per execute, none for the parse")
        #expect(harness.commands.map(\.parameters) == [["42", "\\xdead"], ["7", "NULL"]])
        let replies =
            Wire.message("1") + Wire.message("2") + Wire.message("T", Wire.int16(0)) + Wire.message("C", Wire.cstring("SELECT 1"))
            + Wire.message("Z", Wire.byte("I")) + Wire.message("2") + Self.errorReply("invalid input", code: "22P02")
            + Wire.message("Z", Wire.byte("I"))
        _ = harness.server(replies)
        #expect(harness.finished.map(\.index) == [0, 1])
        #expect(harness.finished.first?.outcome.result == "SELECT 1")
        #expect(harness.finished.last?.outcome.error == "ERROR 22P02: invalid input")
    }

    @Test func aHeldParseStopsItsBatchUntilTheVerdict() throws {
        let harness = Harness()
        harness.login()
        let parse = Wire.message("P", Wire.cstring(""), Wire.cstring("DROP TABLE orders"), Wire.int16(0))
        let rest =
            Wire.message("B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(0), Wire.int16(0))
            + Wire.message("E", Wire.cstring(""), Wire.int32(0)) + Wire.message("S")
        let actions = harness.client(parse + rest)
        guard case .hold(let hold)? = actions.first else {
            Issue.record("expected a hold first, got \(actions)")
            return
        }
        #expect(hold.command?.text == "DROP TABLE orders" && hold.command?.decision == .pending)
        #expect(Self.passed(Array(actions.dropFirst())) == rest, "the rest of the batch waits behind the hold, unchanged")
        #expect(Self.passed(harness.release(hold, .forward(edited: nil))) == parse)
        #expect(harness.commands.count == 1, "the execution behind the held Parse is the held command's")
        _ = harness.server(Wire.message("1") + Wire.message("2") + Wire.message("C", Wire.cstring("DROP TABLE")) + Wire.message("Z", Wire.byte("I")))
        #expect(harness.finished.map(\.index) == [0] && harness.finished.first?.outcome.result == "DROP TABLE")
        // A later execution of the statement is a command of its own, as the operator let it through.
        _ = harness.client(rest)
        #expect(harness.commands.count == 2)
        #expect(harness.commands.last?.decision == .allowed && harness.commands.last?.decidedBy == .operator)
    }

    @Test func aRefusedOrExpiredHoldSendsTheStandInWithTheFittingCode() throws {
        for (verdict, decider, code) in [(Verdict.drop, Decider.operator, "42501"), (.drop, .timeout, "57014")] {
            let harness = Harness()
            harness.login()
            guard case .hold(let hold)? = harness.client(Wire.message("Q", Wire.cstring("DROP TABLE orders"))).first else {
                Issue.record("expected a hold")
                return
            }
            guard case .query(let standIn)? = try Self.frontendMessages(Self.passed(harness.release(hold, verdict, by: decider))).first else {
                Issue.record("expected a stand-in")
                return
            }
            let back = try Self.backendMessages(Self.passed(harness.server(Self.errorReply("syntax error at or near \"\(standIn)\""))))
            guard case .errorResponse(let fields)? = back.first else {
                Issue.record("expected an error")
                return
            }
            #expect(fields.sqlState == code)
        }
    }

    @Test func anOperatorsEditReplacesTheStatementText() throws {
        let harness = Harness()
        harness.login()
        guard case .hold(let hold)? = harness.client(Wire.message("Q", Wire.cstring("DROP TABLE orders"))).first else {
            Issue.record("expected a hold")
            return
        }
        let sent = try Self.frontendMessages(Self.passed(harness.release(hold, .forward(edited: Data("SELECT 1".utf8)))))
        #expect(sent == [.query("SELECT 1")])
    }

    // MARK: Startup

    @Test func encryptionRequestsAreAnsweredNAndNeverRelayed() {
        let harness = Harness()
        let ssl = Wire.startupPacket(code: 80_877_103)
        let actions = harness.client(ssl)
        #expect(Self.answered(actions) == [UInt8(ascii: "N")] && Self.passed(actions).isEmpty)
        let gss = harness.client(Wire.startupPacket(code: 80_877_104))
        #expect(Self.answered(gss) == [UInt8(ascii: "N")])
        let startup = Wire.startup([("user", "app")])
        #expect(Self.passed(harness.client(startup)) == startup, "then the startup in clear")
    }

    @Test func bytesBehindAnEncryptionRequestEndTheConnection() {
        let harness = Harness()
        let actions = harness.client(Wire.startupPacket(code: 80_877_103) + Wire.startup([("user", "app")]))
        #expect(Self.passed(actions).isEmpty)
        #expect(Self.ending(actions)?.failure?.message.contains("CVE-2021-23214") == true)
    }

    @Test func aCancelRequestPassesOnlyForABackendOfThisServer() {
        let keys = PostgresCancelKeys()
        let session = Harness(cancelKeys: keys)
        session.login()
        #expect(keys.count == 1)
        let cancel = Wire.startupPacket(code: 80_877_102, Wire.int32(4242), Wire.int32(777))
        #expect(Self.passed(Harness(cancelKeys: keys).client(cancel)) == cancel)
        let wrongKey = Harness(cancelKeys: keys).client(Wire.startupPacket(code: 80_877_102, Wire.int32(4242), Wire.int32(778)))
        #expect(Self.passed(wrongKey).isEmpty && Self.ending(wrongKey) != nil)
        session.inspector.relayEnded()
        #expect(keys.count == 0, "a session's key goes when it ends")
    }

    @Test func passwordsAreRelayedButNotRecorded() {
        let harness = Harness()
        _ = harness.client(Wire.startup([("user", "app")]))
        _ = harness.server(Wire.message("R", Wire.int32(3)))
        let password = Wire.message("p", Wire.cstring("hunter2-secret"))
        #expect(Self.passed(harness.client(password)) == password)
        let recorded = harness.events.messages.map { String(decoding: $0.payload, as: UTF8.self) }.joined()
        #expect(!recorded.contains("hunter2"))
        #expect(recorded.contains("not recorded"))
    }

    @Test func aRefusedLoginIsTheFlowsError() {
        let harness = Harness()
        _ = harness.client(Wire.startup([("user", "app")]))
        _ = harness.server(Self.errorReply("password authentication failed for user \"app\"", code: "28P01"))
        #expect(harness.events.errors.first?.message.contains("password authentication failed") == true)
    }

    // MARK: Hostile input

    @Test func malformedClientInputEndsTheConnectionWithAFatalError() throws {
        for bad in [[UInt8(1)] + Wire.int32(4), Wire.byte("Q") + Wire.int32(3), Wire.message("Q", Array("no terminator".utf8))] {
            let harness = Harness()
            harness.login()
            let actions = harness.client(bad)
            let ending = try #require(Self.ending(actions))
            #expect(ending.failure?.phase == .client)
            let words = try #require(ending.toClient)
            guard case .errorResponse(let fields)? = try Self.backendMessages(Array(words.readableBytesView)).first else {
                Issue.record("expected a FATAL error")
                continue
            }
            #expect(fields.severity == "FATAL" && fields.sqlState == "08P01")
            #expect(harness.client(Wire.message("Q", Wire.cstring("SELECT 1"))).isEmpty, "nothing after the failure")
        }
    }

    @Test func aSessionCannotMakeSluiceKeepPreparedStatementsWithoutBound() throws {
        let harness = Harness()
        harness.login()
        var batch: [UInt8] = []
        for number in 0..<PostgresStatementTracker.maxStatements {
            batch += Wire.message("P", Wire.cstring("s\(number)"), Wire.cstring("SELECT 1"), Wire.int16(0))
        }
        #expect(Self.ending(harness.client(batch)) == nil, "\(PostgresStatementTracker.maxStatements) statements are kept")
        // Replacing one is fine; one more is not.
        #expect(Self.ending(harness.client(Wire.message("P", Wire.cstring("s0"), Wire.cstring("SELECT 2"), Wire.int16(0)))) == nil)
        let actions = harness.client(Wire.message("P", Wire.cstring("one-more"), Wire.cstring("SELECT 1"), Wire.int16(0)))
        let ending = try #require(Self.ending(actions))
        #expect(ending.failure?.message.contains("more prepared statements or portals than Sluice keeps") == true)
    }

    @Test func anExecutionShowsAtMostAHundredParameters() {
        let shown = PostgresParameterText.describe(Array(repeating: ByteBuffer(string: "x"), count: 300), formats: [], types: [])
        #expect(shown.count == 101 && shown.last == "… 200 more")
    }

    @Test func byteByByteTheSameBytesPassAndTheSameCommandsAreRecorded() {
        let session =
            Wire.startup([("user", "app"), ("database", "shop")])
        let statements =
            Wire.message("Q", Wire.cstring("SELECT 1; SELECT 2"))
            + Wire.message("P", Wire.cstring(""), Wire.cstring("SELECT $1"), Wire.int16(0))
            + Wire.message("B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(1), Wire.value(Array("x".utf8)), Wire.int16(0))
            + Wire.message("E", Wire.cstring(""), Wire.int32(0)) + Wire.message("S") + Wire.message("X")
        let whole = Harness()
        var wholePassed = Self.passed(whole.client(session))
        _ = whole.server(Harness.loginReply)
        wholePassed += Self.passed(whole.client(statements))
        let bytewise = Harness()
        var bytewisePassed: [UInt8] = []
        for byte in session { bytewisePassed += Self.passed(bytewise.client([byte])) }
        for byte in Harness.loginReply { _ = bytewise.server([byte]) }
        for byte in statements { bytewisePassed += Self.passed(bytewise.client([byte])) }
        #expect(bytewisePassed == wholePassed)
        #expect(wholePassed == session + statements)
        #expect(bytewise.commands.map(\.text) == whole.commands.map(\.text))
        #expect(whole.commands.map(\.parameters) == [nil, ["x"]])
    }

    @Test func randomlyDamagedSessionsNeverCrashAndNeverPassMoreThanTheyGot() {
        let session =
            Wire.startup([("user", "app"), ("database", "shop")]) + Wire.message("Q", Wire.cstring("SELECT 1"))
            + Wire.message("P", Wire.cstring("n"), Wire.cstring("SELECT $1"), Wire.int16(1), Wire.uint32(23))
            + Wire.message("B", Wire.cstring(""), Wire.cstring("n"), Wire.int16(0), Wire.int16(1), Wire.value(Array("1".utf8)), Wire.int16(0))
            + Wire.message("E", Wire.cstring(""), Wire.int32(0)) + Wire.message("S")
        var random = SplitMix(seed: 7)
        for _ in 0..<500 {
            var damaged = session
            for _ in 0..<Int(random.next() % 4 + 1) {
                let index = Int(random.next() % UInt64(damaged.count))
                damaged[index] = UInt8(truncatingIfNeeded: random.next())
            }
            let harness = Harness()
            var passed = 0
            var offset = 0
            while offset < damaged.count {
                let size = min(damaged.count - offset, Int(random.next() % 16) + 1)
                passed += Self.passed(harness.client(Array(damaged[offset..<offset + size]))).count
                offset += size
                if offset == size { _ = harness.server(Harness.loginReply) }
            }
            #expect(passed <= damaged.count + 64, "only a stand-in may be longer than what it replaces")
            #expect(harness.inspector.bufferedBytes <= damaged.count)
        }
    }
}
