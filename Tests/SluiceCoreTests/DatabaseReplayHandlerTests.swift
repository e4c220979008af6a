import NIOCore
import NIOEmbedded
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceCore

/// A client session that speaks a line protocol: the server says `hello`, then answers each statement with
/// `ok <summary>` or `err <message>`. `bad` from the server is a protocol violation.
private struct LineSession: DatabaseClientSession {
    var loggedIn = false
    var pending = ""

    mutating func start() -> ByteBuffer? { ByteBuffer(string: "login alice\n") }

    mutating func receive(_ bytes: ByteBuffer) throws(DatabaseClientError) -> [DatabaseClientStep] {
        pending += String(buffer: bytes)
        var steps: [DatabaseClientStep] = []
        while let newline = pending.firstIndex(of: "\n") {
            let line = String(pending[..<newline])
            pending = String(pending[pending.index(after: newline)...])
            switch line {
            case "hello":
                loggedIn = true
                steps.append(.ready)
            case "denied":
                throw DatabaseClientError("password authentication failed for user alice")
            case "bad":
                throw DatabaseClientError("unexpected message")
            case let ok where ok.hasPrefix("ok "):
                steps.append(.finished(ReplayOutcome(summary: String(ok.dropFirst(3)))))
            case let err where err.hasPrefix("err "):
                steps.append(.finished(ReplayOutcome(summary: "error", error: String(err.dropFirst(4)))))
            default:
                steps.append(.send(ByteBuffer(string: "what?\n")))
            }
        }
        return steps
    }

    mutating func run(_ statement: ReplayStatement) throws(DatabaseClientError) -> ByteBuffer {
        if statement.text == "unsendable" { throw DatabaseClientError("parameter 1 was recorded cut short") }
        return ByteBuffer(string: "run \(statement.text)\n")
    }

    func quit() -> ByteBuffer { ByteBuffer(string: "quit\n") }
}

@Suite(.ownThread) struct DatabaseReplayHandlerTests {
    private func start(
        _ statements: [String], timeout: TimeAmount = .seconds(30)
    ) throws -> (EmbeddedChannel, EventLoopFuture<DatabaseReplayResult>) {
        let channel = EmbeddedChannel()
        let promise = channel.eventLoop.makePromise(of: DatabaseReplayResult.self)
        let handler = DatabaseReplayHandler(
            session: LineSession(), statements: statements.map { ReplayStatement(text: $0) }, statementTimeout: timeout, promise: promise
        )
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, promise.futureResult)
    }

    private func written(_ channel: EmbeddedChannel) throws -> [String] {
        var lines: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            if buffer.readableBytes > 0 { lines.append(String(buffer: buffer)) }
        }
        return lines
    }

    @Test func statementsRunOneAtATimeEachOnceThePreviousIsAnsweredThenQuits() throws {
        let (channel, result) = try start(["SELECT 1", "DELETE FROM t"])
        #expect(try written(channel) == ["login alice\n"])
        try channel.writeInbound(ByteBuffer(string: "hello\n"))
        #expect(try written(channel) == ["run SELECT 1\n"])
        // Half an answer is no answer: nothing more is sent.
        try channel.writeInbound(ByteBuffer(string: "ok SEL"))
        #expect(try written(channel) == [])
        try channel.writeInbound(ByteBuffer(string: "ECT 1\n"))
        #expect(try written(channel) == ["run DELETE FROM t\n"])
        try channel.writeInbound(ByteBuffer(string: "err 42501: permission denied\n"))
        #expect(try written(channel) == ["quit\n"])
        let outcome = try result.wait()
        #expect(
            outcome.outcomes == [ReplayOutcome(summary: "SELECT 1"), ReplayOutcome(summary: "error", error: "42501: permission denied")]
        )
        #expect(outcome.failure == nil)
        #expect(!outcome.loginRefused)
        #expect(!channel.isActive)
    }

    @Test func sendStepsAreWrittenAndAnswersInOneReadAllCount() throws {
        let (channel, result) = try start(["a", "b"])
        _ = try written(channel)
        try channel.writeInbound(ByteBuffer(string: "challenge\nhello\n"))
        #expect(try written(channel) == ["what?\n", "run a\n"])
        try channel.writeInbound(ByteBuffer(string: "ok A\n"))
        try channel.writeInbound(ByteBuffer(string: "ok B\n"))
        #expect(try result.wait().outcomes.map(\.summary) == ["A", "B"])
    }

    @Test func aRefusedLoginSaysSo() throws {
        let (channel, result) = try start(["SELECT 1"])
        try channel.writeInbound(ByteBuffer(string: "denied\n"))
        let outcome = try result.wait()
        #expect(outcome.loginRefused)
        #expect(outcome.failure == "login refused: password authentication failed for user alice")
        #expect(outcome.outcomes.isEmpty)
        #expect(!channel.isActive)
    }

    @Test func aProtocolViolationAfterLoginKeepsTheAnswersSoFar() throws {
        let (channel, result) = try start(["a", "b"])
        try channel.writeInbound(ByteBuffer(string: "hello\nok A\n"))
        try channel.writeInbound(ByteBuffer(string: "bad\n"))
        let outcome = try result.wait()
        #expect(outcome.outcomes.map(\.summary) == ["A"])
        #expect(outcome.failure == "the server: unexpected message")
        #expect(!outcome.loginRefused)
    }

    @Test func aStatementThatCannotBeSentStopsTheReplayPolitely() throws {
        let (channel, result) = try start(["a", "unsendable", "c"])
        try channel.writeInbound(ByteBuffer(string: "hello\nok A\n"))
        let outcome = try result.wait()
        #expect(outcome.failure == "statement 2 not sent: parameter 1 was recorded cut short")
        #expect(try written(channel) == ["login alice\n", "run a\n", "quit\n"])
    }

    @Test func theServerClosingMidwayIsAFailureWithWhatCame() throws {
        let (channel, result) = try start(["a", "b"])
        try channel.writeInbound(ByteBuffer(string: "hello\nok A\n"))
        channel.pipeline.fireChannelInactive()
        let outcome = try result.wait()
        #expect(outcome.outcomes.map(\.summary) == ["A"])
        #expect(outcome.failure == "the connection closed before the last statement was answered")
    }

    @Test func aSilentServerTimesOut() throws {
        let (channel, result) = try start(["a"], timeout: .seconds(5))
        try channel.writeInbound(ByteBuffer(string: "hello\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        let outcome = try result.wait()
        #expect(outcome.failure == "no answer to statement 1 in 5 s")
        #expect(!channel.isActive)
    }
}
