import Foundation
import NIOCore
import SluiceCore
import SluiceModel

/// Relays a WebSocket after its `101`: parses every frame each way, records each message (text, binary) and
/// control frame (ping, pong, close), holds whole messages the intercept filter matches, and lets the operator
/// send new messages in.
///
/// One handler sits in each channel, like the raw `RelayHandler`. Frames pass through as the exact bytes that
/// arrived, except around a hold: while the intercept filter is on, a data message's frames wait until the
/// message is complete, so it can be held whole. While a message is held, later data frames and Close queue
/// behind it; pings and pongs still pass (RFC 6455 §5.5.2). Edited or injected frames towards the server get a
/// fresh random mask (§10.3). A frame that breaks the protocol ends the WebSocket with a Close carrying the
/// fitting code (1002, 1007, 1009) to both sides.
///
/// What a peer makes Sluice buffer (a frame still arriving, a message being assembled, frames kept back for a
/// hold) is counted against the engine's `ByteBudget`; a WebSocket that would pass it ends with 1009. Everything
/// is let go when the connection ends, however it ends.
final class WebSocketRelayHandler {
    enum Side {
        case client
        case server
    }

    private struct Pending {
        var frame: WebSocketFrame
        var raw: ByteBuffer
    }

    let side: Side
    private let recorder: FlowRecorder
    private let gate: InterceptGate
    private let bus: FlowBus
    private let subjectBase: FilterSubject
    private var partner: WebSocketRelayHandler?
    private var context: ChannelHandlerContext?
    private var parser: WebSocketFrameParser
    private var assembler: WebSocketMessageAssembler
    private var unparsed = ByteBuffer()
    /// Frames of the data message being assembled, kept back while the intercept filter may want to hold it.
    private var messageFrames: [Pending] = []
    private var holding = false
    /// Frames read behind a held message, in order.
    private var queued = CircularBuffer<Pending>()
    private var failed = false
    private var pendingRead = false
    private let budget: ByteBudget
    /// Bytes this side holds of the budget right now.
    private var reserved = 0
    /// Bytes of `messageFrames`, counted as they are kept.
    private var messageFrameBytes = 0
    /// How long a peer that got a Close has to answer it before its connection is closed anyway (§7.1.1).
    static let closingGrace = TimeAmount.seconds(2)

    private init(
        side: Side, recorder: FlowRecorder, gate: InterceptGate, bus: FlowBus, subjectBase: FilterSubject,
        limits: Configuration.WebSocketLimits, budget: ByteBudget
    ) {
        self.side = side
        self.recorder = recorder
        self.gate = gate
        self.bus = bus
        self.subjectBase = subjectBase
        self.budget = budget
        // RFC 6455 §5.1: client frames are masked, server frames are not.
        self.parser = WebSocketFrameParser(maxFrameSize: limits.maxFrameBytes, expectMasked: side == .client)
        self.assembler = WebSocketMessageAssembler(maxMessageSize: limits.maxMessageBytes)
    }

    static func matchedPair(
        recorder: FlowRecorder, gate: InterceptGate, bus: FlowBus, subjectBase: FilterSubject, limits: Configuration.WebSocketLimits,
        budget: ByteBudget
    ) -> (client: WebSocketRelayHandler, server: WebSocketRelayHandler) {
        let client = WebSocketRelayHandler(
            side: .client, recorder: recorder, gate: gate, bus: bus, subjectBase: subjectBase, limits: limits, budget: budget
        )
        let server = WebSocketRelayHandler(
            side: .server, recorder: recorder, gate: gate, bus: bus, subjectBase: subjectBase, limits: limits, budget: budget
        )
        client.partner = server
        server.partner = client
        return (client, server)
    }

    /// Frames read from the client travel up to the server.
    private var readDirection: Direction { side == .client ? .up : .down }

    // MARK: Parsing

    private func process(_ context: ChannelHandlerContext) {
        while !failed {
            // A view from before the parse: NIO only slices readable bytes, and the parse consumes them.
            let before = unparsed
            let frame: WebSocketFrame?
            do {
                frame = try parser.parse(&unparsed)
            } catch {
                protocolError(error)
                return
            }
            guard let frame else { break }
            let raw = before.getSlice(at: before.readerIndex, length: unparsed.readerIndex - before.readerIndex) ?? ByteBuffer()
            let pending = Pending(frame: frame, raw: raw)
            if holding || !queued.isEmpty {
                if frame.opcode == .ping || frame.opcode == .pong {
                    record(control: frame)
                    partner?.send(raw)
                } else {
                    queued.append(pending)
                }
            } else {
                handle(pending)
            }
        }
        unparsed.discardReadBytes()
        accountBuffered()
    }

    /// Brings this side's share of the budget in line with what it holds: a frame still arriving, the message
    /// being assembled, frames kept back for a hold. Past the budget the WebSocket ends with 1009.
    private func accountBuffered() {
        guard !failed else { return }
        let held = unparsed.readableBytes + assembler.bufferedBytes + messageFrameBytes
        if held > reserved {
            guard budget.reserve(held - reserved) else {
                protocolError(
                    .messageTooBig(
                        "WebSockets together hold \(budget.inUse) bytes of unfinished messages, and \(held - reserved) more would pass "
                            + "websocket.max_buffered_bytes (\(budget.limit))"
                    )
                )
                return
            }
        } else {
            budget.release(reserved - held)
        }
        reserved = held
    }

    /// Lets go of everything this side holds, and its share of the budget.
    private func releaseBuffers() {
        unparsed = ByteBuffer()
        assembler.reset()
        messageFrames = []
        messageFrameBytes = 0
        queued.removeAll()
        budget.release(reserved)
        reserved = 0
    }

    /// Records a frame and sends it on, or keeps it back until its message is complete when holding is possible.
    private func handle(_ pending: Pending) {
        let result: WebSocketAssemblyResult?
        do {
            result = try assembler.push(pending.frame)
        } catch {
            protocolError(error)
            return
        }
        let holdable = gate.isActive && !pending.frame.opcode.isControl
        if holdable {
            messageFrames.append(pending)
            messageFrameBytes += pending.raw.readableBytes
        }
        switch result {
        case .message(let message):
            let sequence = recorder.chunk(message.payload, direction: readDirection, kind: message.opcode == .text ? .text : .binary)
            if holdable {
                let frames = messageFrames
                messageFrames = []
                messageFrameBytes = 0
                let payload = Data(message.payload.readableBytesView)
                if gate.shouldHold(subject(payload)) {
                    hold(frames, opcode: message.opcode, payload: payload, sequence: sequence)
                } else {
                    for frame in frames { partner?.send(frame.raw) }
                }
            } else {
                partner?.send(pending.raw)
            }
        case .control(let frame):
            record(control: frame)
            partner?.send(pending.raw)
        case nil:
            if !holdable { partner?.send(pending.raw) }  // a fragment, relayed as it comes
        }
    }

    private func record(control frame: WebSocketFrame) {
        let kind: MessageKind
        switch frame.opcode {
        case .ping: kind = .ping
        case .pong: kind = .pong
        default: kind = .close
        }
        recorder.chunk(frame.payload, direction: readDirection, kind: kind)
    }

    private func subject(_ payload: Data) -> FilterSubject {
        var subject = subjectBase
        if readDirection == .up {
            subject.requestPayloads.append(payload)
        } else {
            subject.responsePayloads.append(payload)
        }
        return subject
    }

    // MARK: Holding

    private func hold(_ frames: [Pending], opcode: WebSocketOpcode, payload: Data, sequence: Int64) {
        guard let context else { return }
        holding = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        gate.hold(flowID: recorder.flowID, sequence: sequence, direction: readDirection, payload: payload, on: context.eventLoop) {
            verdict, _ in
            loopBound.value.released(frames, opcode: opcode, sequence: sequence, verdict: verdict)
        }
    }

    private func released(_ frames: [Pending], opcode: WebSocketOpcode, sequence: Int64, verdict: Verdict) {
        holding = false
        switch verdict {
        case .forward(edited: nil):
            for frame in frames { partner?.send(frame.raw) }
        case .forward(edited: let edited?):
            recorder.edited(edited, from: sequence, direction: readDirection, kind: opcode == .text ? .text : .binary)
            partner?.send(encode(opcode, ByteBuffer(bytes: edited)))
        case .drop, .block:
            break
        case .kill:
            recorder.failed(.proxy, "killed by the operator")
            closeBoth(code: 1008, reason: "closed by the operator")
            return
        }
        partner?.flush()
        while !holding, !failed, let next = queued.popFirst() {
            handle(next)
        }
        partner?.flush()
        if pendingRead, !holding, let context {
            pendingRead = false
            context.read()
        }
    }

    /// A frame this side's peer would send, as Sluice writes it for the other peer: masked towards the server.
    private func encode(_ opcode: WebSocketOpcode, _ payload: ByteBuffer) -> ByteBuffer {
        let mask = side == .client ? WebSocketFrameEncoder.randomMaskKey() : nil
        var buffer = ByteBuffer()
        WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: opcode, maskKey: mask, payload: payload), into: &buffer)
        return buffer
    }

    // MARK: Operator's messages

    /// Sends a new message from Sluice towards this side's peer, as if the other peer had sent it.
    func inject(_ payload: Data, opcode: WebSocketOpcode) {
        guard let partner, !failed else { return }
        // Written to this handler's channel: frames towards the server must be masked, towards the client not.
        let mask = side == .server ? WebSocketFrameEncoder.randomMaskKey() : nil
        var buffer = ByteBuffer()
        WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: opcode, maskKey: mask, payload: ByteBuffer(bytes: payload)), into: &buffer)
        recorder.injected(payload, direction: partner.readDirection, kind: opcode == .text ? .text : .binary)
        send(buffer)
        flush()
    }

    // MARK: Errors and closing

    private func protocolError(_ error: WebSocketProtocolError) {
        failed = true
        recorder.failed(side == .client ? .client : .server, error.description)
        closeBoth(code: error.closeCode, reason: error.reason)
    }

    /// Sends each peer a Close with `code` and ends both connections.
    private func closeBoth(code: UInt16, reason: String) {
        let payload = WebSocketFrame.closePayload(code: code, reason: String(reason.prefix(100)))
        sendClose(payload)
        partner?.sendClose(payload)
    }

    /// Writes a Close, then ends this side's output and waits (up to `closingGrace`) for the peer to close too.
    /// Closing the socket at once could reset it while the peer's last frames are unread, and a reset can make the
    /// peer lose the Close itself (it then reports 1006, no close frame).
    private func sendClose(_ payload: ByteBuffer) {
        failed = true
        releaseBuffers()
        guard let context else { return }
        let mask = side == .server ? WebSocketFrameEncoder.randomMaskKey() : nil
        var buffer = ByteBuffer()
        WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: .close, maskKey: mask, payload: payload), into: &buffer)
        let channel = context.channel
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in channel.close(mode: .output, promise: nil) }
        context.eventLoop.scheduleTask(in: Self.closingGrace) { channel.close(promise: nil) }
        context.read()
    }

    // MARK: Called by the partner

    private func send(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    private func flush() {
        context?.flush()
    }

    /// The other connection ended: so does this one, unless it is already closing with a Close of Sluice's.
    private func partnerClosed() {
        guard !failed else { return }
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }
}

extension WebSocketRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
        releaseBuffers()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard !failed else { return }  // after Sluice's Close: read only to see the peer close
        unparsed.writeBuffer(&buffer)
        process(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The operator's injector refers to both handlers: the flow must not keep them (and what they hold) alive.
        recorder.injector = nil
        releaseBuffers()
        partner?.partnerClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // A peer that stops sending has nothing more to say on a WebSocket: end the relay.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        recorder.failed(side == .client ? .client : .server, describe(error))
        context.close(promise: nil)
        partner?.partnerClosed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// Backpressure: read only while the partner can take more, and never beyond the queue behind a hold.
    func read(context: ChannelHandlerContext) {
        if failed {
            context.read()  // closing: reads only notice the peer's end
        } else if partner?.context?.channel.isWritable == false || queued.count > 1024 {
            pendingRead = true
        } else if bus.isBackedUp {
            // The store is behind: read again once it has caught up.
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            bus.whenDrained { eventLoop.execute { loopBound.value.read() } }
        } else {
            context.read()
        }
    }
}

@available(*, unavailable)
extension WebSocketRelayHandler: Sendable {}

extension WebSocketRelayHandler {
    /// Puts a WebSocket relay on two raw channels (each ending in an `EarlyInput`) and starts reading. Registers
    /// the flow's injector, so the operator can send messages into it.
    static func install(
        client: Channel, server: Channel, recorder: FlowRecorder, connection: ClientConnection, subjectBase: FilterSubject
    ) throws {
        let (clientRelay, serverRelay) = matchedPair(
            recorder: recorder, gate: connection.gate, bus: connection.bus, subjectBase: subjectBase,
            limits: connection.configuration.webSocket, budget: connection.bufferBudget
        )
        try client.pipeline.syncOperations.addHandler(clientRelay)
        try server.pipeline.syncOperations.addHandler(serverRelay)
        let eventLoop = client.eventLoop
        let clientBound = NIOLoopBound(clientRelay, eventLoop: eventLoop)
        let serverBound = NIOLoopBound(serverRelay, eventLoop: eventLoop)
        recorder.injector = { data, kind, direction in
            let opcode: WebSocketOpcode = kind == .binary ? .binary : .text
            eventLoop.execute {
                // Towards the server means writing on the server's channel.
                (direction == .up ? serverBound.value : clientBound.value).inject(data, opcode: opcode)
            }
        }
        try client.pipeline.syncOperations.handler(type: EarlyInput.self).release()
        try server.pipeline.syncOperations.handler(type: EarlyInput.self).release()
        try client.syncOptions?.setOption(.autoRead, value: true)
        try server.syncOptions?.setOption(.autoRead, value: true)
    }
}
