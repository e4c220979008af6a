import Foundation
import NIOCore
import SluiceCore
import SluiceModel

/// Reads a WebSocket on the relay after its `101`: parses every frame each way, records each message (text,
/// binary) and control frame (ping, pong, close), holds whole messages the intercept filter matches, and encodes the
/// operator's messages.
///
/// Frames pass through as the exact bytes that arrived, except around a hold: while the intercept filter is on, a
/// data message's frames wait until the message is complete, so it can be held whole. While a message is held, the
/// relay reads on: later data frames queue behind it, pings and pongs still pass (RFC 6455 §5.5.2). Edited or
/// injected frames towards the server get a fresh random mask (§10.3). A frame that breaks the protocol ends the
/// WebSocket with a Close carrying the fitting code (1002, 1007, 1009) to both sides.
///
/// What a peer makes Sluice buffer (a frame still arriving, a message being assembled, frames kept back for a
/// hold) is `bufferedBytes`, which the relay counts against the engine's `ByteBudget`; past it the WebSocket ends
/// with 1009. Everything is let go when the relay ends, however it ends.
final class WebSocketInspector: RelayInspector {
    private struct Pending {
        var frame: WebSocketFrame
        var raw: ByteBuffer
    }

    /// One direction's parsing state.
    private struct Stream {
        var parser: WebSocketFrameParser
        var assembler: WebSocketMessageAssembler
        var unparsed = ByteBuffer()
        /// Frames of the data message being assembled, kept back while the intercept filter may want to hold it.
        var messageFrames: [Pending] = []
        var messageFrameBytes = 0

        init(masked: Bool, limits: Configuration.WebSocketLimits) {
            parser = WebSocketFrameParser(maxFrameSize: limits.maxFrameBytes, expectMasked: masked)
            assembler = WebSocketMessageAssembler(maxMessageSize: limits.maxMessageBytes)
        }

        var bufferedBytes: Int { unparsed.readableBytes + assembler.bufferedBytes + messageFrameBytes }
    }

    /// A held message's frames, as they arrived.
    private struct HeldMessage {
        var frames: [Pending]
        var opcode: WebSocketOpcode
        var bytes: Int
    }

    private let recorder: FlowRecorder
    private let gate: InterceptGate
    private let subjectBase: FilterSubject
    // RFC 6455 §5.1: client frames are masked, server frames are not.
    private var up: Stream
    private var down: Stream
    private var held: [Int: HeldMessage] = [:]
    private var heldBytes = 0
    private var nextHoldID = 0
    /// The WebSocket broke or was killed: nothing more is parsed.
    private var failed = false

    init(recorder: FlowRecorder, gate: InterceptGate, subjectBase: FilterSubject, limits: Configuration.WebSocketLimits) {
        self.recorder = recorder
        self.gate = gate
        self.subjectBase = subjectBase
        self.up = Stream(masked: true, limits: limits)
        self.down = Stream(masked: false, limits: limits)
    }

    // MARK: RelayInspector

    func read(_ buffer: ByteBuffer, direction: Direction, into actions: inout [RelayAction]) {
        guard !failed else { return }
        switch direction {
        case .up: read(buffer, stream: &up, direction: direction, into: &actions)
        case .down: read(buffer, stream: &down, direction: direction, into: &actions)
        }
        if failed { relayEnded() }
    }

    private func read(_ buffer: ByteBuffer, stream: inout Stream, direction: Direction, into actions: inout [RelayAction]) {
        var buffer = buffer
        stream.unparsed.writeBuffer(&buffer)
        while !failed {
            // A view from before the parse: NIO only slices readable bytes, and the parse consumes them.
            let before = stream.unparsed
            let frame: WebSocketFrame?
            do {
                frame = try stream.parser.parse(&stream.unparsed)
            } catch {
                fail(error, direction: direction, into: &actions)
                break
            }
            guard let frame else { break }
            let raw = before.getSlice(at: before.readerIndex, length: stream.unparsed.readerIndex - before.readerIndex) ?? ByteBuffer()
            handle(Pending(frame: frame, raw: raw), stream: &stream, direction: direction, into: &actions)
        }
        stream.unparsed.discardReadBytes()
    }

    func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider, into actions: inout [RelayAction]) {
        guard let message = held.removeValue(forKey: hold.id) else { return }
        heldBytes -= message.bytes
        switch verdict {
        case .forward(edited: nil):
            for frame in message.frames { actions.append(.pass(frame.raw)) }
        case .forward(edited: let edited?):
            let kind: MessageKind = message.opcode == .text ? .text : .binary
            recorder.edited(edited, from: hold.sequence, direction: hold.direction, kind: kind)
            actions.append(.pass(Self.frame(message.opcode, ByteBuffer(bytes: edited), masked: hold.direction == .up)))
        case .drop, .block:
            break
        case .kill:
            failed = true
            actions.append(closeBoth(code: 1008, reason: "closed by the operator", failure: (.proxy, "killed by the operator")))
        }
    }

    /// A peer that stops sending has nothing more to say on a WebSocket: end the relay.
    func inputClosed(direction: Direction, into actions: inout [RelayAction]) {
        actions.append(.end(RelayEnding()))
    }

    func readsWhileHolding(_ direction: Direction) -> Bool { true }

    var bufferedBytes: Int { up.bufferedBytes + down.bufferedBytes + heldBytes }

    func budgetExceeded(_ description: String, into actions: inout [RelayAction]) {
        fail(.messageTooBig("WebSockets: \(description)"), direction: nil, into: &actions)
    }

    func relayEnded() {
        up.unparsed = ByteBuffer()
        up.assembler.reset()
        up.messageFrames = []
        up.messageFrameBytes = 0
        down.unparsed = ByteBuffer()
        down.assembler.reset()
        down.messageFrames = []
        down.messageFrameBytes = 0
        held = [:]
        heldBytes = 0
    }

    // MARK: Frames

    /// Records a frame and sends it on, or keeps it back until its message is complete when holding is possible.
    private func handle(_ pending: Pending, stream: inout Stream, direction: Direction, into actions: inout [RelayAction]) {
        let result: WebSocketAssemblyResult?
        do {
            result = try stream.assembler.push(pending.frame)
        } catch {
            fail(error, direction: direction, into: &actions)
            return
        }
        let holdable = gate.isActive && !pending.frame.opcode.isControl
        if holdable {
            stream.messageFrames.append(pending)
            stream.messageFrameBytes += pending.raw.readableBytes
        }
        switch result {
        case .message(let message):
            let kind: MessageKind = message.opcode == .text ? .text : .binary
            let sequence = recorder.chunk(message.payload, direction: direction, kind: kind)
            guard holdable else {
                actions.append(.pass(pending.raw))
                return
            }
            let frames = stream.messageFrames
            let bytes = stream.messageFrameBytes
            stream.messageFrames = []
            stream.messageFrameBytes = 0
            let payload = Data(copying: message.payload.readableBytesView)
            if gate.shouldHold(subject(payload, direction: direction)) {
                let id = nextHoldID
                nextHoldID += 1
                held[id] = HeldMessage(frames: frames, opcode: message.opcode, bytes: bytes)
                heldBytes += bytes
                actions.append(.hold(RelayHold(id: id, sequence: sequence, direction: direction, payload: payload)))
            } else {
                for frame in frames { actions.append(.pass(frame.raw)) }
            }
        case .control(let frame):
            record(control: frame, direction: direction)
            // Pings and pongs may overtake a held message; a Close may not (nothing follows it).
            actions.append(frame.opcode == .close ? .pass(pending.raw) : .passNow(pending.raw))
        case nil:
            if !holdable { actions.append(.pass(pending.raw)) }  // a fragment, relayed as it comes
        }
    }

    private func record(control frame: WebSocketFrame, direction: Direction) {
        let kind: MessageKind
        switch frame.opcode {
        case .ping: kind = .ping
        case .pong: kind = .pong
        default: kind = .close
        }
        recorder.chunk(frame.payload, direction: direction, kind: kind)
    }

    private func subject(_ payload: Data, direction: Direction) -> FilterSubject {
        var subject = subjectBase
        if direction == .up {
            subject.requestPayloads.append(payload)
        } else {
            subject.responsePayloads.append(payload)
        }
        return subject
    }

    // MARK: Operator's messages

    /// A new message from Sluice, as the frame the sender of `direction` would write: masked towards the server.
    /// Recorded as injected.
    func inject(_ payload: Data, opcode: WebSocketOpcode, direction: Direction) -> ByteBuffer? {
        guard !failed else { return nil }
        recorder.injected(payload, direction: direction, kind: opcode == .text ? .text : .binary)
        return Self.frame(opcode, ByteBuffer(bytes: payload), masked: direction == .up)
    }

    private static func frame(_ opcode: WebSocketOpcode, _ payload: ByteBuffer, masked: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: masked ? WebSocketFrameEncoder.randomMaskKey() : nil, payload: payload)
        WebSocketFrameEncoder.encode(frame, into: &buffer)
        return buffer
    }

    // MARK: Errors and closing

    /// A frame from the sender of `direction` broke the protocol (nil: the buffer budget ran out): both peers get a
    /// Close with the fitting code.
    private func fail(_ error: WebSocketProtocolError, direction: Direction?, into actions: inout [RelayAction]) {
        failed = true
        let phase: FlowErrorPhase
        switch direction {
        case .up: phase = .client
        case .down: phase = .server
        case nil: phase = .proxy
        }
        actions.append(closeBoth(code: error.closeCode, reason: error.reason, failure: (phase, error.description)))
    }

    /// Ends the relay with a Close to each peer (§7.1.1: each then has the relay's grace to close its end).
    private func closeBoth(code: UInt16, reason: String, failure: (phase: FlowErrorPhase, message: String)) -> RelayAction {
        let payload = WebSocketFrame.closePayload(code: code, reason: String(reason.prefix(100)))
        return .end(
            RelayEnding(
                failure: failure, toClient: Self.frame(.close, payload, masked: false), toServer: Self.frame(.close, payload, masked: true)
            )
        )
    }
}

extension WebSocketInspector {
    /// Puts a WebSocket relay on two raw channels (each ending in an `EarlyInput`) and starts reading. Registers
    /// the flow's injector, so the operator can send messages into it.
    static func install(
        client: Channel, server: Channel, recorder: FlowRecorder, connection: ClientConnection, subjectBase: FilterSubject
    ) throws {
        let inspector = WebSocketInspector(
            recorder: recorder, gate: connection.gate, subjectBase: subjectBase, limits: connection.configuration.webSocket
        )
        let relay = try RelayHandler.install(client: client, server: server, recorder: recorder, connection: connection, inspector: inspector)
        let eventLoop = client.eventLoop
        let bound = NIOLoopBound((inspector: inspector, client: relay.client, server: relay.server), eventLoop: eventLoop)
        recorder.injector = { data, kind, direction in
            let opcode: WebSocketOpcode = kind == .binary ? .binary : .text
            eventLoop.execute {
                let (inspector, client, server) = bound.value
                guard let frame = inspector.inject(data, opcode: opcode, direction: direction) else { return }
                // Towards the server means writing on the server's channel.
                (direction == .up ? server : client).inject(frame)
            }
        }
        // The injector refers to both handlers: the flow must not keep them (and what they hold) alive.
        let boundRecorder = NIOLoopBound(recorder, eventLoop: eventLoop)
        client.closeFuture.whenComplete { _ in eventLoop.execute { boundRecorder.value.injector = nil } }
    }
}
