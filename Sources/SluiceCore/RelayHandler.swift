import Foundation
import NIOCore
import SluiceModel

/// Splices two channels into one flow, in the shape of swift-nio-examples' `GlueHandler`, records what it carries,
/// and holds chunks the intercept filter matches.
///
/// One handler sits in each channel of a pair. What one channel reads is recorded and written to its partner.
/// Backpressure both ways: a channel reads only while its partner is writable (a slow reader never makes Sluice
/// buffer without bound) and while the store keeps up. Half-close: when one side shuts its output, the partner's
/// output is shut after its pending writes, and the other direction keeps flowing.
///
/// Holding: a matching chunk parks in the `InterceptGate` and this direction stops reading. Chunks that were
/// already read in the same batch queue behind it in order, as do a half-close or a close, so nothing overtakes a
/// held message. The other direction and every other connection flow on.
final class RelayHandler {
    /// The side this handler's channel faces.
    let side: FlowRecorder.Side
    private let recorder: FlowRecorder
    private let bus: FlowBus
    private let gate: InterceptGate
    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var waitingForStore = false
    /// True while a chunk from this side waits for a verdict.
    private var holding = false
    /// Chunks read behind a held one, in order.
    private var queued = CircularBuffer<ByteBuffer>()
    /// This side's peer sent FIN, or went away, while chunks were still held or queued.
    private var inputClosedPending = false
    private var closePending = false
    /// `timeouts.tunnel_idle`: with it, each side notes when it last read, and the client side's timer closes the
    /// pair once neither has read for that long.
    private let idleLimit: TimeAmount?
    private var lastRead = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?

    private init(side: FlowRecorder.Side, recorder: FlowRecorder, bus: FlowBus, gate: InterceptGate, idleLimit: TimeAmount?) {
        self.side = side
        self.recorder = recorder
        self.bus = bus
        self.gate = gate
        self.idleLimit = idleLimit
    }

    /// The client-facing and the server-facing handler of one flow.
    /// - Parameter idleLimit: how long the relay may carry nothing either way before both sides close; nil: forever.
    static func matchedPair(
        recorder: FlowRecorder, bus: FlowBus, gate: InterceptGate, idleLimit: TimeAmount? = nil
    ) -> (client: RelayHandler, server: RelayHandler) {
        let client = RelayHandler(side: .client, recorder: recorder, bus: bus, gate: gate, idleLimit: idleLimit)
        let server = RelayHandler(side: .server, recorder: recorder, bus: bus, gate: gate, idleLimit: idleLimit)
        client.partner = server
        server.partner = client
        return (client, server)
    }

    /// Bytes read on the client side travel up to the server.
    private var readDirection: Direction { side == .client ? .up : .down }

    // MARK: Called by the partner

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    /// The partner's peer finished sending: pass the FIN on once everything before it is written.
    private func partnerShutOutput() {
        guard let context else { return }
        afterPendingWrites(context) { context in
            context.close(mode: .output, promise: nil)
        }
    }

    /// The partner's channel is gone. After an orderly close, deliver what is queued first; after an error, stop.
    private func partnerClosed(abruptly: Bool) {
        guard let context else { return }
        if abruptly {
            context.close(promise: nil)
        } else {
            afterPendingWrites(context) { context in
                context.close(promise: nil)
            }
        }
    }

    private func partnerBecameWritable() {
        resumeReadingIfPending()
    }

    private var isWritable: Bool {
        context?.channel.isWritable ?? false
    }

    // MARK: Helpers

    /// Writes are completed in order, so an empty write's promise fires once all earlier writes are done.
    private func afterPendingWrites(_ context: ChannelHandlerContext, _ body: @escaping (ChannelHandlerContext) -> Void) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            body(context)
        }
    }

    private func resumeReadingIfPending() {
        guard pendingRead, !holding, queued.isEmpty, let context else { return }
        guard partner?.isWritable == true else { return }
        guard !bus.isBackedUp else {
            waitForStore(context)
            return
        }
        pendingRead = false
        context.read()
    }

    /// The store is behind: park this read until it catches up. No event loop blocks meanwhile.
    private func waitForStore(_ context: ChannelHandlerContext) {
        guard !waitingForStore else { return }
        waitingForStore = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        bus.whenDrained {
            eventLoop.execute {
                let handler = loopBound.value
                handler.waitingForStore = false
                handler.resumeReadingIfPending()
            }
        }
    }

    // MARK: Idle timeout

    private func scheduleIdleCheck(after delay: TimeAmount, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: delay) { loopBound.value.idleCheck() }
    }

    /// Closes both sides once neither has read for `idleLimit`. A chunk held for the operator is not idleness: its
    /// own `hold_timeout` applies.
    private func idleCheck() {
        guard let idleLimit, let context else { return }
        let lastActivity = max(lastRead, partner?.lastRead ?? lastRead)
        let quiet = NIODeadline.now() - lastActivity
        if quiet < idleLimit || holding || partner?.holding == true {
            scheduleIdleCheck(after: quiet < idleLimit ? idleLimit - quiet : idleLimit, context: context)
            return
        }
        let seconds = Double(idleLimit.nanoseconds) / 1_000_000_000
        recorder.failed(.proxy, "closed after \(Formatting.seconds(seconds)) with no data either way (timeouts.tunnel_idle)")
        context.close(promise: nil)
        partner?.partnerClosed(abruptly: true)
    }

    // MARK: Holding

    /// Records a chunk and sends it on, unless the intercept filter holds it.
    private func deliver(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        let direction = readDirection
        let sequence = recorder.chunk(buffer, direction: direction)
        if gate.isActive {
            let payload = Data(buffer.readableBytesView)
            if gate.shouldHold(recorder.subject(direction: direction, payload: payload)) {
                holding = true
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                gate.hold(flowID: recorder.flowID, sequence: sequence, direction: direction, payload: payload, on: context.eventLoop) {
                    verdict, _ in
                    loopBound.value.released(buffer, sequence: sequence, verdict: verdict)
                }
                return
            }
        }
        partner?.partnerWrite(buffer)
    }

    private func released(_ original: ByteBuffer, sequence: Int64, verdict: Verdict) {
        holding = false
        switch verdict {
        case .forward(edited: nil):
            partner?.partnerWrite(original)
        case .forward(edited: let edited?):
            recorder.edited(edited, from: sequence, direction: readDirection)
            partner?.partnerWrite(ByteBuffer(bytes: edited))
        case .drop, .block:
            break
        case .kill:
            recorder.failed(.proxy, "killed by the operator")
            queued.removeAll()
            context?.close(promise: nil)
            partner?.partnerClosed(abruptly: true)
            return
        }
        drainQueue()
    }

    /// Delivers chunks queued behind a released hold, until the queue is empty or another chunk is held; then
    /// passes on a deferred half-close or close and reads again.
    private func drainQueue() {
        guard let context else { return }
        while !holding, let next = queued.popFirst() {
            deliver(next, context: context)
        }
        partner?.partnerFlush()
        guard !holding else { return }
        if inputClosedPending {
            inputClosedPending = false
            partner?.partnerShutOutput()
        }
        if closePending {
            closePending = false
            partner?.partnerClosed(abruptly: recorder.hasFailed)
        }
        resumeReadingIfPending()
    }
}

extension RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if side == .client, let idleLimit { scheduleIdleCheck(after: idleLimit, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if idleLimit != nil { lastRead = .now() }
        if holding || !queued.isEmpty {
            queued.append(buffer)
        } else {
            deliver(buffer, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if holding || !queued.isEmpty {
            closePending = true
        } else {
            partner?.partnerClosed(abruptly: recorder.hasFailed)
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            if holding || !queued.isEmpty {
                inputClosedPending = true
            } else {
                partner?.partnerShutOutput()
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        recorder.failed(side == .client ? .client : .server, describe(error))
        context.close(promise: nil)
        partner?.partnerClosed(abruptly: true)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        pendingRead = true
        resumeReadingIfPending()
    }
}

@available(*, unavailable)
extension RelayHandler: Sendable {}
