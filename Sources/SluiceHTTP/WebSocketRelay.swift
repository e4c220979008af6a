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

    static let maxFrameSize = 16 << 20
    static let maxMessageSize = 64 << 20

    private init(side: Side, recorder: FlowRecorder, gate: InterceptGate, bus: FlowBus, subjectBase: FilterSubject) {
        self.side = side
        self.recorder = recorder
        self.gate = gate
        self.bus = bus
        self.subjectBase = subjectBase
        // RFC 6455 §5.1: client frames are masked, server frames are not.
        self.parser = WebSocketFrameParser(maxFrameSize: Self.maxFrameSize, expectMasked: side == .client)
        self.assembler = WebSocketMessageAssembler(maxMessageSize: Self.maxMessageSize)
    }

    static func matchedPair(
        recorder: FlowRecorder, gate: InterceptGate, bus: FlowBus, subjectBase: FilterSubject
    ) -> (client: WebSocketRelayHandler, server: WebSocketRelayHandler) {
        let client = WebSocketRelayHandler(side: .client, recorder: recorder, gate: gate, bus: bus, subjectBase: subjectBase)
        let server = WebSocketRelayHandler(side: .server, recorder: recorder, gate: gate, bus: bus, subjectBase: subjectBase)
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
        }
        switch result {
        case .message(let message):
            let sequence = recorder.chunk(message.payload, direction: readDirection, kind: message.opcode == .text ? .text : .binary)
            if holdable {
                let frames = messageFrames
                messageFrames = []
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
            subject.requestPayload = payload
        } else {
            subject.responsePayload = payload
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
        case .drop:
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

    /// Sends each peer a Close with `code` and ends both connections once it is written.
    private func closeBoth(code: UInt16, reason: String) {
        failed = true
        let payload = WebSocketFrame.closePayload(code: code, reason: String(reason.prefix(100)))
        sendClose(payload)
        partner?.failed = true
        partner?.sendClose(payload)
    }

    private func sendClose(_ payload: ByteBuffer) {
        guard let context else { return }
        let mask = side == .server ? WebSocketFrameEncoder.randomMaskKey() : nil
        var buffer = ByteBuffer()
        WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: .close, maskKey: mask, payload: payload), into: &buffer)
        let channel = context.channel
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Called by the partner

    private func send(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    private func flush() {
        context?.flush()
    }

    private func partnerClosed() {
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
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard !failed else { return }
        unparsed.writeBuffer(&buffer)
        process(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
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
        if partner?.context?.channel.isWritable == false || queued.count > 1024 {
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
        client: Channel, server: Channel, recorder: FlowRecorder, gate: InterceptGate, bus: FlowBus, subjectBase: FilterSubject
    ) throws {
        let (clientRelay, serverRelay) = matchedPair(recorder: recorder, gate: gate, bus: bus, subjectBase: subjectBase)
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
