import Foundation
import NIOCore
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceCore
@testable import SluiceHTTP

/// The WebSocket inspector without channels: frames in, relay actions out.
@Suite struct WebSocketInspectorTests {
    private struct Harness {
        let events = EventCollector()
        let gate: InterceptGate
        let inspector: WebSocketInspector

        init(intercept: String? = nil, limits: Configuration.WebSocketLimits = Configuration.WebSocketLimits()) throws {
            let bus = FlowBus(subscribers: [events])
            gate = InterceptGate(bus: bus)
            gate.filter = try intercept.map { try Filter($0) }
            let recorder = FlowRecorder(flowID: FlowID(3), bus: bus, limits: RecordingLimits(recordPayloads: true, maxPayloadBytes: 1 << 20, maxFlowBytes: 1 << 30))
            inspector = WebSocketInspector(recorder: recorder, gate: gate, subjectBase: FilterSubject(kind: .websocket), limits: limits)
        }

        func read(_ bytes: ByteBuffer, _ direction: Direction) -> [RelayAction] {
            var actions: [RelayAction] = []
            inspector.read(bytes, direction: direction, into: &actions)
            return actions
        }

        func release(_ hold: RelayHold, _ verdict: Verdict) -> [RelayAction] {
            var actions: [RelayAction] = []
            inspector.released(hold, verdict: verdict, decidedBy: .operator, into: &actions)
            return actions
        }
    }

    private static func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true, masked: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        WebSocketFrameEncoder.encode(
            WebSocketFrame(fin: fin, opcode: opcode, maskKey: masked ? 0x1234_5678 : nil, payload: ByteBuffer(string: text)), into: &buffer
        )
        return buffer
    }

    /// What the actions send on, pass or passNow alike, as bytes.
    private static func passed(_ actions: [RelayAction]) -> [ByteBuffer] {
        actions.compactMap { action in
            switch action {
            case .pass(let buffer), .passNow(let buffer): return buffer
            default: return nil
            }
        }
    }

    private static func decode(_ buffer: ByteBuffer, masked: Bool) throws -> WebSocketFrame? {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: masked)
        var buffer = buffer
        return try parser.parse(&buffer)
    }

    @Test func framesPassAsTheyArrivedByteByByteAndMessagesAreRecorded() throws {
        let harness = try Harness()
        let wire = Self.frame(.text, "hello", masked: true)
        var passed: [UInt8] = []
        for byte in wire.readableBytesView {
            for buffer in Self.passed(harness.read(ByteBuffer(bytes: [byte]), .up)) { passed += buffer.readableBytesView }
            #expect(harness.inspector.bufferedBytes <= wire.readableBytes)
        }
        #expect(passed == Array(wire.readableBytesView), "the exact bytes, unmasked by nothing")
        #expect(harness.events.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["hello"])
        #expect(harness.events.messages.first?.kind == .text)
        #expect(harness.inspector.bufferedBytes == 0)
    }

    @Test func aMatchingMessageIsHeldWholeAndPingsMayOvertakeIt() throws {
        let harness = try Harness(intercept: "~b secret")
        let first = Self.frame(.text, "the se", fin: false, masked: true)
        let second = Self.frame(.continuation, "cret", masked: true)
        #expect(harness.read(first, .up).isEmpty, "a fragment waits: the message may be held")
        let actions = harness.read(second, .up)
        guard case .hold(let hold)? = actions.first, actions.count == 1 else {
            Issue.record("expected one hold, got \(actions)")
            return
        }
        #expect(hold.payload == Data("the secret".utf8))
        let ping = Self.frame(.ping, "p", masked: true)
        let pingActions = harness.read(ping, .up)
        guard case .passNow(let pingBytes)? = pingActions.first else {
            Issue.record("a ping must pass at once, got \(pingActions)")
            return
        }
        #expect(pingBytes == ping)
        #expect(harness.inspector.bufferedBytes == first.readableBytes + second.readableBytes, "the held frames count")
        #expect(Self.passed(harness.release(hold, .forward(edited: nil))) == [first, second])
        #expect(harness.inspector.bufferedBytes == 0)
    }

    @Test func anEditedMessageTowardsTheServerIsOneFreshlyMaskedFrame() throws {
        let harness = try Harness(intercept: "~b x")
        guard case .hold(let hold)? = harness.read(Self.frame(.text, "x", masked: true), .up).first else {
            Issue.record("expected a hold")
            return
        }
        let sent = Self.passed(harness.release(hold, .forward(edited: Data("edited".utf8))))
        let bytes = try #require(sent.first)
        let frame = try #require(try Self.decode(bytes, masked: true))
        #expect(frame.maskKey != nil && String(buffer: frame.payload) == "edited")
        #expect(harness.events.messages.map(\.editedFromSequence) == [nil, hold.sequence])
    }

    @Test func aBrokenFrameEndsTheRelayWithACloseToEachPeer() throws {
        let harness = try Harness()
        // Client frames must be masked (RFC 6455 §5.1): 1002.
        let actions = harness.read(Self.frame(.text, "bad", masked: false), .up)
        guard case .end(let ending)? = actions.last else {
            Issue.record("expected an end, got \(actions)")
            return
        }
        #expect(ending.failure?.phase == .client)
        let clientBytes = try #require(ending.toClient)
        let serverBytes = try #require(ending.toServer)
        let toClient = try #require(try Self.decode(clientBytes, masked: false))
        let toServer = try #require(try Self.decode(serverBytes, masked: true))
        #expect(toClient.opcode == .close && toServer.opcode == .close)
        #expect(toClient.payload.getInteger(at: toClient.payload.readerIndex, as: UInt16.self) == 1002)
        #expect(harness.read(Self.frame(.text, "later", masked: true), .up).isEmpty, "nothing is parsed after the end")
    }

    @Test func passingTheBudgetIs1009() throws {
        let harness = try Harness()
        var actions: [RelayAction] = []
        harness.inspector.budgetExceeded("too much", into: &actions)
        guard case .end(let ending)? = actions.first, let close = ending.toClient else {
            Issue.record("expected an end with a Close")
            return
        }
        let frame = try #require(try Self.decode(close, masked: false))
        #expect(frame.payload.getInteger(at: frame.payload.readerIndex, as: UInt16.self) == 1009)
    }

    @Test func aPeerThatStopsSendingEndsTheWebSocket() throws {
        let harness = try Harness()
        var actions: [RelayAction] = []
        harness.inspector.inputClosed(direction: .down, into: &actions)
        guard case .end(let ending)? = actions.first else {
            Issue.record("expected an end")
            return
        }
        #expect(ending.failure == nil && !ending.abrupt)
    }

    @Test func randomSplitsOfRandomFramesPassEveryByteOnce() throws {
        var random = SplitMix(seed: 42)
        for _ in 0..<50 {
            let harness = try Harness()
            var wire = ByteBuffer()
            for index in 0..<Int(random.next() % 6 + 1) {
                var frame = Self.frame(.binary, String(repeating: "a", count: Int(random.next() % 300)) + "\(index)", masked: false)
                wire.writeBuffer(&frame)
            }
            var passed: [UInt8] = []
            var rest = wire
            while rest.readableBytes > 0 {
                let size = min(rest.readableBytes, Int(random.next() % 64) + 1)
                let piece = rest.readSlice(length: size) ?? ByteBuffer()
                for buffer in Self.passed(harness.read(piece, .down)) { passed += buffer.readableBytesView }
            }
            #expect(passed == Array(wire.readableBytesView))
        }
    }
}
