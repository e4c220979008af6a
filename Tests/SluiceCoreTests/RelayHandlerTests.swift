import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceCore

/// Sits at the head of a pipeline and records the outbound operations the relay issues.
private final class OutboundSpy: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0
    var closes: [CloseMode] = []

    func read(context: ChannelHandlerContext) {
        reads += 1
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        closes.append(mode)
        if mode == .all {
            context.close(mode: mode, promise: promise)
        } else {
            promise?.succeed(())
        }
    }
}

/// One flow's two channels spliced on one embedded loop, with the relay and its spies installed.
private struct Splice {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let clientSpy = OutboundSpy()
    let serverSpy = OutboundSpy()
    let events = EventCollector()
    let recorder: FlowRecorder
    let gate: InterceptGate

    init(
        limits: RecordingLimits = RecordingLimits(recordPayloads: true, maxPayloadBytes: 1 << 20, maxFlowBytes: 1 << 30),
        intercept: String? = nil, holdSettings: InterceptGate.Settings = InterceptGate.Settings(),
        inspector: RelayInspector? = nil, budget: ByteBudget? = nil
    ) throws {
        client = EmbeddedChannel(loop: loop)
        server = EmbeddedChannel(loop: loop)
        let bus = FlowBus(subscribers: [events])
        gate = InterceptGate(bus: bus, settings: holdSettings)
        gate.filter = try intercept.map { try Filter($0) }
        recorder = FlowRecorder(flowID: FlowID(7), bus: bus, limits: limits)
        recorder.opened(kind: .tcp, listener: "test", client: Endpoint(host: "127.0.0.1", port: 1000), server: Endpoint(host: "10.0.0.5", port: 7000))
        let (clientRelay, serverRelay) = RelayHandler.matchedPair(
            recorder: recorder, bus: bus, gate: gate, inspector: inspector, budget: budget
        )
        try client.pipeline.syncOperations.addHandlers([clientSpy, clientRelay])
        try server.pipeline.syncOperations.addHandlers([serverSpy, serverRelay])
    }
}

@Suite struct RelayHandlerTests {
    @Test func bytesCrossInBothDirectionsAndAreRecordedInOrder() throws {
        let splice = try Splice()
        try splice.client.writeInbound(ByteBuffer(string: "hello"))
        try splice.server.writeInbound(ByteBuffer(string: "world!"))
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "hello"))
        #expect(try splice.client.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "world!"))
        let messages = splice.events.messages
        #expect(messages.map(\.direction) == [.up, .down])
        #expect(messages.map(\.sequence) == [0, 1])
        #expect(messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["hello", "world!"])
        #expect(messages.allSatisfy { $0.flowID == FlowID(7) && !$0.isTruncated })
    }

    @Test func aRelayedReadLeavesItsBufferFreeForTheNextRead() throws {
        // NIO reads into the same receive buffer again only when nothing else holds it. A relay that kept the last
        // read's buffer until the next read made NIO allocate, and keep, a second one for every channel.
        let splice = try Splice()
        var buffer = ByteBuffer(string: "hello")
        try splice.client.writeInbound(buffer)
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "hello"))
        #expect(buffer.modifyIfUniquelyOwned { _ in true } == true, "the relay still holds the buffer it read")
    }

    @Test func readsOnlyWhilePartnerIsWritable() throws {
        let splice = try Splice()
        splice.server.isWritable = false
        splice.client.read()
        #expect(splice.clientSpy.reads == 0, "must not read while the server side cannot take more")
        splice.server.isWritable = true
        splice.server.pipeline.fireChannelWritabilityChanged()
        #expect(splice.clientSpy.reads == 1, "the parked read resumes when the partner drains")
    }

    @Test func readsPauseWhileTheStoreIsBackedUp() throws {
        let splice = try Splice()
        splice.events.setBackedUp(true)
        splice.client.read()
        splice.server.read()
        splice.loop.run()
        #expect(splice.clientSpy.reads == 0)
        #expect(splice.serverSpy.reads == 0)
        splice.events.setBackedUp(false)
        splice.loop.run()
        #expect(splice.clientSpy.reads == 1)
        #expect(splice.serverSpy.reads == 1)
    }

    @Test func halfCloseIsPassedOnAfterPendingWrites() throws {
        let splice = try Splice()
        try splice.client.writeInbound(ByteBuffer(string: "last words"))
        splice.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        splice.loop.run()
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "last words"))
        #expect(splice.serverSpy.closes == [.output], "the server gets a FIN, not a full close")
        #expect(splice.clientSpy.closes.isEmpty, "the other direction keeps flowing")
        try splice.server.writeInbound(ByteBuffer(string: "reply"))
        #expect(try splice.client.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "reply"))
    }

    @Test func errorOnOneSideClosesBothAndIsRecordedOnce() throws {
        let splice = try Splice()
        struct Reset: Error {}
        splice.client.pipeline.fireErrorCaught(Reset())
        splice.server.pipeline.fireErrorCaught(Reset())
        splice.loop.run()
        #expect(splice.clientSpy.closes.contains(.all))
        #expect(splice.serverSpy.closes.contains(.all))
        #expect(splice.events.errors.count == 1)
        #expect(splice.events.errors.first?.phase == .client)
        #expect(splice.recorder.hasFailed)
    }
}

@Suite struct HoldTests {
    @Test func matchingChunkIsHeldUntilForwardedAndOthersFlow() throws {
        let splice = try Splice(intercept: "~b secret")
        try splice.client.writeInbound(ByteBuffer(string: "the secret"))
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == nil, "the server must not get a held chunk")
        #expect(splice.gate.held.map(\.payload) == [Data("the secret".utf8)])
        // The other direction is not held.
        try splice.server.writeInbound(ByteBuffer(string: "banner"))
        #expect(try splice.client.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "banner"))
        // No reads on the held direction.
        splice.client.read()
        #expect(splice.clientSpy.reads == 0)

        let held = try #require(splice.gate.held.first)
        #expect(splice.gate.resolve(held.id, .forward(edited: nil)))
        splice.loop.run()
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "the secret"))
        #expect(splice.clientSpy.reads == 1, "reading resumes after the verdict")
        #expect(!splice.gate.resolve(held.id, .drop), "a verdict counts once")
        let released = splice.events.events.compactMap { event -> MessageReleased? in
            if case .messageReleased(let r) = event { return r } else { return nil }
        }
        #expect(released.map(\.verdict) == [.forward(edited: nil)])
        #expect(released.first?.decidedBy == .operator)
    }

    @Test func editedBytesReachTheServerAndBothVersionsAreRecorded() throws {
        let splice = try Splice(intercept: "~bq PING")
        try splice.client.writeInbound(ByteBuffer(string: "PING 1"))
        let held = try #require(splice.gate.held.first)
        splice.gate.resolve(held.id, .forward(edited: Data("PONG 2".utf8)))
        splice.loop.run()
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "PONG 2"))
        let messages = splice.events.messages
        #expect(messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["PING 1", "PONG 2"])
        #expect(messages.map(\.editedFromSequence) == [nil, held.sequence])
    }

    @Test func chunksBehindAHeldOneKeepTheirOrder() throws {
        let splice = try Splice(intercept: "~b first")
        try splice.client.writeInbound(ByteBuffer(string: "first"))
        try splice.client.writeInbound(ByteBuffer(string: "second"))
        splice.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        splice.loop.run()
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == nil)
        #expect(splice.serverSpy.closes.isEmpty, "the FIN waits behind the held chunk")
        splice.gate.resolveAll(.forward(edited: nil))
        splice.loop.run()
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "first"))
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "second"))
        #expect(splice.serverSpy.closes == [.output])
    }

    @Test func droppedChunkNeverArrivesButTheConnectionLives() throws {
        let splice = try Splice(intercept: "~b drop-me")
        try splice.client.writeInbound(ByteBuffer(string: "drop-me"))
        splice.gate.resolveAll(.drop)
        splice.loop.run()
        try splice.client.writeInbound(ByteBuffer(string: "keep"))
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "keep"))
        #expect(splice.serverSpy.closes.isEmpty && splice.clientSpy.closes.isEmpty)
    }

    @Test func killClosesBothSidesAndRecordsWhy() throws {
        let splice = try Splice(intercept: "~b x")
        try splice.client.writeInbound(ByteBuffer(string: "x"))
        splice.gate.resolveAll(.kill)
        splice.loop.run()
        #expect(splice.clientSpy.closes.contains(.all) && splice.serverSpy.closes.contains(.all))
        #expect(splice.events.errors.map(\.message) == ["killed by the operator"])
    }

    @Test func forgottenHoldGetsTheDefaultVerdictAtItsDeadline() throws {
        let splice = try Splice(intercept: "~b slow", holdSettings: InterceptGate.Settings(holdTimeout: 5, defaultVerdict: .drop))
        try splice.client.writeInbound(ByteBuffer(string: "slow"))
        let held = try #require(splice.gate.held.first)
        #expect(held.deadline.timeIntervalSince(held.heldAt) == 5)
        splice.loop.advanceTime(by: .seconds(4))
        #expect(splice.gate.held.count == 1)
        splice.loop.advanceTime(by: .seconds(1))
        #expect(splice.gate.held.isEmpty)
        #expect(try splice.server.readOutbound(as: ByteBuffer.self) == nil, "dropped by default")
        let released = splice.events.events.compactMap { event -> MessageReleased? in
            if case .messageReleased(let r) = event { return r } else { return nil }
        }
        #expect(released.map(\.decidedBy) == [.timeout])
    }

    @Test func interceptFilterSeesTheFlowsAddresses() throws {
        let splice = try Splice(intercept: "~dst :7000 & ~src 127.0.0.1 & ~k tcp")
        try splice.server.writeInbound(ByteBuffer(string: "from server"))
        #expect(splice.gate.held.count == 1)
    }
}

/// An inspector driven by a script: each read's text says what to do with it.
/// `hold:X` holds it, `ping:X` passes it past holds, `answer:X` answers the sender, `big:N` claims N buffered bytes,
/// `fail:X` ends with a failure; anything else passes. A release forwards the held text.
private final class ScriptedInspector: RelayInspector {
    var buffered = 0
    var readsOn = true
    var ended = 0
    private var nextID = 0
    private var heldText: [Int: String] = [:]

    func read(_ buffer: ByteBuffer, direction: Direction, into actions: inout [RelayAction]) {
        let text = String(buffer: buffer)
        let (verb, rest) = text.contains(":") ? (String(text.split(separator: ":")[0]), String(text.split(separator: ":", maxSplits: 1)[1])) : ("", text)
        switch verb {
        case "hold":
            heldText[nextID] = rest
            actions.append(.hold(RelayHold(id: nextID, sequence: Int64(nextID), direction: direction, payload: Data(rest.utf8))))
            nextID += 1
        case "ping": actions.append(.passNow(ByteBuffer(string: rest)))
        case "answer": actions.append(.answer(ByteBuffer(string: rest)))
        case "big":
            buffered = Int(rest) ?? 0
        case "fail": actions.append(.end(RelayEnding(failure: .client, rest)))
        case "secure":
            // A protocol's TLS request: passed on, then a handler on each leg; `rest` came behind it in the same read.
            actions.append(.pass(ByteBuffer(string: "request")))
            actions.append(.securePartner({ Wrapper() }))
            actions.append(.secureSender({ Wrapper() }, unread: ByteBuffer(string: rest)))
        default: actions.append(.pass(buffer))
        }
    }

    func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider, into actions: inout [RelayAction]) {
        if verdict == .forward(edited: nil), let text = heldText.removeValue(forKey: hold.id) {
            actions.append(.pass(ByteBuffer(string: text)))
        }
    }

    func readsWhileHolding(_ direction: Direction) -> Bool { readsOn }

    var bufferedBytes: Int { buffered }

    func budgetExceeded(_ description: String, into actions: inout [RelayAction]) {
        actions.append(.end(RelayEnding(failure: (.proxy, description), toClient: ByteBuffer(string: "bye client"), toServer: ByteBuffer(string: "bye server"))))
    }

    func relayEnded() {
        ended += 1
        buffered = 0
    }
}

/// Stands in for TLS: marks what it reads and what it writes.
private final class Wrapper: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(wrapInboundOut(ByteBuffer(string: "in:" + String(buffer: unwrapInboundIn(data)))))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(wrapOutboundOut(ByteBuffer(string: "out:" + String(buffer: unwrapOutboundIn(data)))), promise: promise)
    }
}

@Suite struct RelayInspectorTests {
    private func outbound(_ channel: EmbeddedChannel) throws -> [String] {
        var texts: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            if buffer.readableBytes > 0 { texts.append(String(buffer: buffer)) }
        }
        return texts
    }

    @Test func answersGoBackToTheSenderAndPassesGoOn() throws {
        let splice = try Splice(inspector: ScriptedInspector())
        try splice.client.writeInbound(ByteBuffer(string: "answer:no such table"))
        try splice.client.writeInbound(ByteBuffer(string: "SELECT 1"))
        splice.client.pipeline.fireChannelReadComplete()
        #expect(try outbound(splice.client) == ["no such table"])
        #expect(try outbound(splice.server) == ["SELECT 1"])
    }

    @Test func securingBothLegsSendsTheRequestInClearAndReadsWhatFollowedThroughTheNewHandler() throws {
        let splice = try Splice(inspector: ScriptedInspector())
        try splice.client.writeInbound(ByteBuffer(string: "secure:hello"))
        // A second read in the same event (NIO reads a socket several times when it can) comes after the first's rest.
        try splice.client.writeInbound(ByteBuffer(string: " world"))
        splice.client.pipeline.fireChannelReadComplete()
        // What went before the handlers is in clear; the unread bytes went through the client's new handler, then
        // the server's, ahead of the next read.
        #expect(try outbound(splice.server) == ["request", "out:in:hello", "out:in: world"])
        try splice.server.writeInbound(ByteBuffer(string: "answer"))
        splice.server.pipeline.fireChannelReadComplete()
        #expect(try outbound(splice.client) == ["out:in:answer"])
    }

    @Test func anInspectorThatReadsOnWhileHoldingSeesLaterInputAndLetsPingsOvertake() throws {
        let splice = try Splice(inspector: ScriptedInspector())
        try splice.client.writeInbound(ByteBuffer(string: "hold:message"))
        splice.client.read()
        #expect(splice.clientSpy.reads == 1, "this inspector reads on while holding")
        try splice.client.writeInbound(ByteBuffer(string: "after"))
        try splice.client.writeInbound(ByteBuffer(string: "ping:p"))
        splice.client.pipeline.fireChannelReadComplete()
        #expect(try outbound(splice.server) == ["p"], "only the ping passes the held message")
        splice.gate.resolveAll(.forward(edited: nil))
        splice.loop.run()
        #expect(try outbound(splice.server) == ["message", "after"])
    }

    @Test func anInspectorThatStopsAtAHoldStopsReading() throws {
        let inspector = ScriptedInspector()
        inspector.readsOn = false
        let splice = try Splice(inspector: inspector)
        try splice.client.writeInbound(ByteBuffer(string: "hold:statement"))
        splice.client.read()
        #expect(splice.clientSpy.reads == 0)
        splice.gate.resolveAll(.forward(edited: nil))
        splice.loop.run()
        #expect(splice.clientSpy.reads == 1)
        #expect(try outbound(splice.server) == ["statement"])
    }

    @Test func aFailureJumpsTheQueueAndClosesBoth() throws {
        let splice = try Splice(inspector: ScriptedInspector())
        try splice.client.writeInbound(ByteBuffer(string: "hold:message"))
        try splice.client.writeInbound(ByteBuffer(string: "queued"))
        try splice.client.writeInbound(ByteBuffer(string: "fail:bad frame"))
        splice.loop.run()
        #expect(try outbound(splice.server) == [], "what queued behind the hold is dropped")
        #expect(splice.clientSpy.closes.contains(.all) && splice.serverSpy.closes.contains(.all))
        #expect(splice.events.errors.map(\.message) == ["bad frame"])
    }

    @Test func passingTheBudgetEndsWithLastWordsThenAGraceToHangUp() throws {
        let inspector = ScriptedInspector()
        let budget = ByteBudget(limit: 1000)
        let splice = try Splice(inspector: inspector, budget: budget)
        try splice.client.writeInbound(ByteBuffer(string: "big:600"))
        #expect(budget.inUse == 600)
        try splice.server.writeInbound(ByteBuffer(string: "big:2000"))
        splice.loop.run()
        #expect(try outbound(splice.client) == ["bye client"])
        #expect(try outbound(splice.server) == ["bye server"])
        #expect(splice.clientSpy.closes == [.output] && splice.serverSpy.closes == [.output])
        try splice.client.writeInbound(ByteBuffer(string: "late"))
        #expect(try outbound(splice.server) == [], "after last words, input goes nowhere")
        splice.loop.advanceTime(by: RelayHandler.closingGrace)
        #expect(splice.clientSpy.closes.contains(.all) && splice.serverSpy.closes.contains(.all))
        #expect(budget.inUse == 0, "a closed relay holds nothing of the budget")
        #expect(inspector.ended > 0)
        #expect(splice.events.errors.first?.message.contains("max_buffered_bytes") == true)
    }
}

@Suite struct FlowRecorderTests {
    private func record(_ limits: RecordingLimits, chunks: [(Direction, Int)]) -> EventCollector {
        let events = EventCollector()
        let recorder = FlowRecorder(flowID: FlowID(1), bus: FlowBus(subscribers: [events]), limits: limits)
        for (direction, size) in chunks {
            recorder.chunk(ByteBuffer(repeating: 0x61, count: size), direction: direction)
        }
        recorder.sideClosed(.client)
        #expect(events.closes.isEmpty, "a flow is open until both sides close")
        recorder.sideClosed(.server)
        recorder.sideClosed(.server)
        #expect(events.closes.count == 1)
        return events
    }

    @Test func payloadLimitCutsEachMessageButCountsAll() {
        let events = record(RecordingLimits(recordPayloads: true, maxPayloadBytes: 10, maxFlowBytes: 1000), chunks: [(.up, 25), (.down, 5)])
        #expect(events.messages.map(\.size) == [25, 5])
        #expect(events.messages.map(\.payload.count) == [10, 5])
        #expect(events.closes.first?.bytesUp == 25)
        #expect(events.closes.first?.bytesDown == 5)
        #expect(events.closes.first?.payloadTruncated == true)
        #expect(events.closes.first?.state == .closed)
    }

    @Test func flowLimitStopsMessagesButTotalsKeepCounting() {
        let events = record(
            RecordingLimits(recordPayloads: true, maxPayloadBytes: 100, maxFlowBytes: 150), chunks: [(.up, 100), (.down, 100), (.up, 100)]
        )
        #expect(events.messages.map(\.payload.count) == [100, 50])
        #expect(events.closes.first?.bytesUp == 200)
        #expect(events.closes.first?.bytesDown == 100)
        #expect(events.closes.first?.payloadTruncated == true)
    }

    @Test func recordingOffKeepsTheFlowButNoMessages() {
        let events = record(RecordingLimits(recordPayloads: false, maxPayloadBytes: 100, maxFlowBytes: 150), chunks: [(.up, 10), (.down, 20)])
        #expect(events.messages.isEmpty)
        #expect(events.closes.first?.bytesUp == 10)
        #expect(events.closes.first?.bytesDown == 20)
        #expect(events.closes.first?.payloadTruncated == false)
    }

    @Test func firstErrorWinsAndMarksTheClose() {
        let events = EventCollector()
        let recorder = FlowRecorder(flowID: FlowID(3), bus: FlowBus(subscribers: [events]), limits: RecordingLimits(Configuration()))
        recorder.failed(.connect, "cannot connect to h:1: connection refused")
        recorder.failed(.client, "connection reset by peer")
        recorder.sideClosed(.client)
        recorder.sideClosed(.server)
        #expect(events.errors.map(\.message) == ["cannot connect to h:1: connection refused"])
        #expect(events.closes.first?.state == .error)
        #expect(events.closes.first?.error == "connect: cannot connect to h:1: connection refused")
    }
}

@Suite struct HeadlessLogTests {
    /// A user name from Proxy-Authorization (peer-controlled) can neither clear the operator's screen nor forge a line.
    @Test func peerTextCannotDriveTheTerminal() {
        let lines = NIOLockedValueBox<[String]>([])
        let log = HeadlessLog(write: { line in lines.withLockedValue { $0.append(line) } })
        let error = FlowError(
            flowID: FlowID(3), phase: .client, time: Date(timeIntervalSince1970: 0),
            message: "refused: proxy credentials rejected for user '\u{1B}[2J\n00:00:00.000 #9 forged'"
        )
        log.receive(.flowOpened(FlowOpened(
            flowID: FlowID(3), kind: .tcp, listener: "x", client: Endpoint(host: "127.0.0.1", port: 1),
            server: Endpoint(host: "127.0.0.1", port: 2), time: Date(timeIntervalSince1970: 0)
        )))
        log.receive(.flowError(error))
        let written = lines.withLockedValue { $0 }
        #expect(written.count == 2)
        #expect(written.allSatisfy { !$0.contains("\u{1B}") && !$0.contains("\n") })
        #expect(written.last?.contains("user '\\e[2J\\n00:00:00.000 #9 forged'") == true, "\(written)")
    }


    @Test func oneLinePerFlowEvent() {
        let log = HeadlessLog(write: { _ in })
        let start = Date(timeIntervalSince1970: 1_796_080_701)
        let opened = FlowOpened(
            flowID: FlowID(12), kind: .tcp, listener: "tcp://127.0.0.1:9000=>10.0.0.5:7000",
            client: Endpoint(host: "127.0.0.1", port: 53422), server: Endpoint(host: "10.0.0.5", port: 7000), time: start
        )
        #expect(log.line(for: .flowOpened(opened)) == "23:18:21.000 #12 tcp 127.0.0.1:53422 -> 10.0.0.5:7000 open")
        let message = Message(flowID: FlowID(12), sequence: 0, direction: .up, time: start, size: 3, payload: Data("abc".utf8))
        #expect(log.line(for: .message(message)) == nil)
        let error = FlowError(flowID: FlowID(12), phase: .server, time: start, message: "connection reset by peer")
        #expect(log.line(for: .flowError(error)) == "23:18:21.000 #12 tcp error server: connection reset by peer")
        let closed = FlowClosed(
            flowID: FlowID(12), time: start.addingTimeInterval(1.33), bytesUp: 1229, bytesDown: 64 << 20, state: .error,
            error: "server: connection reset by peer", payloadTruncated: false
        )
        #expect(log.line(for: .flowClosed(closed)) == "23:18:22.330 #12 tcp error, up 1.2 KiB, down 64.0 MiB, 1.33s")
    }
}

@Suite struct BodyRecordingTests {
    private let start = Date(timeIntervalSince1970: 1_800_000_000)

    private func recorder(_ limits: RecordingLimits, _ events: EventCollector) -> FlowRecorder {
        FlowRecorder(flowID: FlowID(1), bus: FlowBus(subscribers: [events]), limits: limits)
    }

    private func piece(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func piecesBecomeOneMessageWhenTheBodyEnds() {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: true, maxPayloadBytes: 100, maxFlowBytes: 1000), events)
        recorder.bodyPiece(piece("hello "), direction: .down, at: start)
        recorder.bodyPiece(piece("world"), direction: .down, at: start)
        #expect(events.messages.isEmpty, "nothing until the body ends")
        recorder.bodyEnded(direction: .down)
        recorder.bodyEnded(direction: .down)
        #expect(events.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["hello world"])
        #expect(events.messages.first?.kind == .body)
        #expect(events.messages.first?.size == 11)
    }

    @Test func aBodyLongerThanTheMessageLimitIsSplitAtTheLimitWithNothingLost() {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: true, maxPayloadBytes: 4, maxFlowBytes: 1000), events)
        recorder.bodyPiece(piece("abc"), direction: .up, at: start)
        recorder.bodyPiece(piece("defghij"), direction: .up, at: start)
        recorder.bodyEnded(direction: .up)
        #expect(events.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["abcd", "efgh", "ij"])
        #expect(events.messages.allSatisfy { $0.payload.count == $0.size })
        #expect(events.messages.map(\.sequence) == [0, 1, 2])
    }

    @Test func aSlowBodyIsRecordedPieceByPieceOnceASecondHasPassed() {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: true, maxPayloadBytes: 100, maxFlowBytes: 1000), events)
        recorder.bodyPiece(piece("data: 1\n\n"), direction: .down, at: start)
        recorder.bodyPiece(piece("data: 2\n\n"), direction: .down, at: start.addingTimeInterval(1.5))
        #expect(events.messages.count == 1, "the first second's pieces, as one message")
        recorder.bodyPiece(piece("data: 3\n\n"), direction: .down, at: start.addingTimeInterval(1.6))
        #expect(events.messages.count == 2, "from then on each piece as it comes")
        recorder.finish()
        #expect(events.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["data: 1\n\ndata: 2\n\n", "data: 3\n\n"])
    }

    @Test func theFlowBudgetCutsABodyAndFinishFlushesWhatIsPending() {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: true, maxPayloadBytes: 100, maxFlowBytes: 6), events)
        recorder.bodyPiece(piece("0123456789"), direction: .down, at: start)
        recorder.finish()
        #expect(events.messages.map(\.size) == [10])
        #expect(events.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["012345"])
        #expect(events.closes.first?.payloadTruncated == true)
        #expect(events.closes.first?.bytesDown == 10)
    }

    /// A `Content-Length` only makes room: whether it is true, too small or far too large, what is recorded is what
    /// passed, cut at the message limit as without it.
    @Test(arguments: [11, 3, 1 << 40])
    func anExpectedLengthChangesNothingThatIsRecorded(announced: Int) {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: true, maxPayloadBytes: 8, maxFlowBytes: 1000), events)
        recorder.expectBody(bytes: announced, direction: .down, at: start)
        recorder.bodyPiece(piece("hello "), direction: .down, at: start)
        recorder.bodyPiece(piece("world"), direction: .down, at: start)
        recorder.bodyEnded(direction: .down)
        #expect(events.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["hello wo", "rld"])
        #expect(events.messages.map(\.size) == [8, 3])
    }

    @Test func anExpectedBodyThatNeverCameRecordsNothing() {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: true, maxPayloadBytes: 100, maxFlowBytes: 1000), events)
        recorder.expectBody(bytes: 50, direction: .up, at: start)
        recorder.bodyEnded(direction: .up)
        recorder.finish()
        #expect(events.messages.isEmpty)
    }

    @Test func recordingOffCountsBodiesButRecordsNone() {
        let events = EventCollector()
        let recorder = recorder(RecordingLimits(recordPayloads: false, maxPayloadBytes: 100, maxFlowBytes: 100), events)
        recorder.bodyPiece(piece("abc"), direction: .up, at: start)
        recorder.finish()
        #expect(events.messages.isEmpty)
        #expect(events.closes.first?.bytesUp == 3)
    }
}
