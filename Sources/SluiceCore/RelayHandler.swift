import Foundation
import NIOCore
import SluiceModel

/// The one byte relay: splices two channels into one flow, in the shape of swift-nio-examples' `GlueHandler`, and
/// lets a protocol's `RelayInspector` say what the bytes mean (raw chunks, WebSocket frames, SQL messages).
///
/// One handler sits in each channel of a pair; both share the flow's inspector. What one channel reads goes to the
/// inspector, and the relay carries out its actions: pass bytes to the partner, answer the sender, hold, end.
/// Backpressure both ways: a channel reads only while its partner is writable (a slow reader never makes Sluice
/// buffer without bound) and while the store keeps up. Half-close: when one side shuts its output, the partner's
/// output is shut after its pending writes (unless the inspector ends the relay instead), and the other direction
/// keeps flowing.
///
/// Holding: a hold parks in the `InterceptGate` and the actions behind it in that direction queue in order, as do
/// a half-close and an orderly close, so nothing overtakes a held message. Reading that direction stops unless the
/// inspector reads on while holding (bounded by `maxQueuedActions` and the engine's buffer budget). The other
/// direction and every other connection flow on.
public final class RelayHandler {
    /// The side this handler's channel faces.
    public let side: FlowRecorder.Side
    private let shared: Shared
    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var waitingForStore = false
    /// True while a hold from this side waits for a verdict.
    private var holding = false
    /// Actions behind a hold, in order, and the bytes they carry. A plain array with a moving start: empty, it
    /// allocates nothing, which matters with thousands of idle connections.
    private var queued = ActionQueue()
    private var queuedBytes = 0
    /// This side got its last words, or is closing: reads only notice the peer's end.
    private var ending = false
    /// Something was written back to this side's peer and waits for a flush.
    private var answered = false
    /// Reused for each read's actions, so the hot path allocates no array.
    private var scratch: [RelayAction] = []
    private var lastRead = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?

    /// How long a peer that got last words has to close its end before Sluice closes the connection anyway.
    public static let closingGrace = TimeAmount.seconds(2)
    /// How many actions may queue behind a hold of an inspector that reads on while holding.
    static let maxQueuedActions = 1024

    /// What both handlers of a flow share: the inspector, the flow's services, and the buffer budget's reservation.
    private final class Shared {
        let inspector: RelayInspector
        let recorder: FlowRecorder
        let bus: FlowBus
        let gate: InterceptGate
        let budget: ByteBudget?
        /// `timeouts.tunnel_idle`: with it, each side notes when it last read, and the client side's timer closes
        /// the pair once neither has read for that long.
        let idleLimit: TimeAmount?
        /// Bytes of the budget this flow holds now.
        var reserved = 0

        init(inspector: RelayInspector, recorder: FlowRecorder, bus: FlowBus, gate: InterceptGate, budget: ByteBudget?, idleLimit: TimeAmount?) {
            self.inspector = inspector
            self.recorder = recorder
            self.bus = bus
            self.gate = gate
            self.budget = budget
            self.idleLimit = idleLimit
        }
    }

    private init(side: FlowRecorder.Side, shared: Shared) {
        self.side = side
        self.shared = shared
    }

    /// The client-facing and the server-facing handler of one flow.
    /// - Parameters:
    ///   - inspector: what the bytes mean; the raw relay's `ChunkInspector` when nil.
    ///   - budget: what all connections together may buffer; nil: unbounded (the inspector buffers nothing).
    ///   - idleLimit: how long the relay may carry nothing either way before both sides close; nil: forever.
    public static func matchedPair(
        recorder: FlowRecorder, bus: FlowBus, gate: InterceptGate, inspector: RelayInspector? = nil, budget: ByteBudget? = nil,
        idleLimit: TimeAmount? = nil
    ) -> (client: RelayHandler, server: RelayHandler) {
        let shared = Shared(
            inspector: inspector ?? ChunkInspector(recorder: recorder, gate: gate), recorder: recorder, bus: bus, gate: gate,
            budget: budget, idleLimit: idleLimit
        )
        let client = RelayHandler(side: .client, shared: shared)
        let server = RelayHandler(side: .server, shared: shared)
        client.partner = server
        server.partner = client
        return (client, server)
    }

    /// Bytes read on the client side travel up to the server.
    private var readDirection: Direction { side == .client ? .up : .down }

    /// Writes bytes Sluice makes itself (an operator's message) to this side's peer, past any queue.
    public func inject(_ buffer: ByteBuffer) {
        guard let context, !ending else { return }
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    // MARK: Called by the partner

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(NIOAny(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    /// The partner's peer finished sending: pass the FIN on once everything before it is written.
    private func partnerShutOutput() {
        guard let context, !ending else { return }
        afterPendingWrites(context) { context in
            context.close(mode: .output, promise: nil)
        }
    }

    /// The partner's inspector started TLS on this side's connection: what was written so far leaves in clear.
    private func secureOwnPeer(_ makeHandler: () throws -> ChannelHandler) {
        guard let context, !ending else { return }
        context.flush()
        do {
            try context.pipeline.syncOperations.addHandler(makeHandler(), position: .first)
        } catch {
            end(RelayEnding(failure: .proxy, "cannot start TLS with the \(side == .client ? "client" : "server"): \(describe(error))"))
        }
    }

    private func partnerBecameWritable() {
        resumeReadingIfPending()
    }

    private var isWritable: Bool {
        context?.channel.isWritable ?? false
    }

    // MARK: Carrying out the inspector's actions

    /// Runs a read's actions: at once, or queued behind a hold.
    private func run(_ actions: [RelayAction]) {
        for action in actions {
            if ending { break }
            guard holding || !queued.isEmpty else {
                perform(action)
                continue
            }
            switch action {
            case .passNow(let buffer):
                partner?.partnerWrite(buffer)
            case .end(let ending) where ending.isUrgent:
                perform(action)
            default:
                enqueue(action)
            }
        }
    }

    private func enqueue(_ action: RelayAction) {
        queued.append(action)
        queuedBytes += action.byteCount
    }

    /// A FIFO of actions that allocates nothing while empty and can put actions back at its front.
    private struct ActionQueue {
        private var actions: [RelayAction] = []
        private var start = 0

        var isEmpty: Bool { start == actions.count }
        var count: Int { actions.count - start }

        mutating func append(_ action: RelayAction) {
            actions.append(action)
        }

        /// Puts `items` at the front, in their order.
        mutating func prepend(_ items: [RelayAction]) {
            guard !items.isEmpty else { return }
            if start >= items.count {
                start -= items.count
                for (offset, item) in items.enumerated() { actions[start + offset] = item }
            } else {
                actions.replaceSubrange(0..<start, with: items)
                start = 0
            }
        }

        mutating func popFirst() -> RelayAction? {
            guard start < actions.count else { return nil }
            let first = actions[start]
            start += 1
            if start == actions.count {
                removeAll()
            }
            return first
        }

        mutating func removeAll() {
            actions = []
            start = 0
        }
    }

    private func perform(_ action: RelayAction) {
        switch action {
        case .pass(let buffer), .passNow(let buffer):
            partner?.partnerWrite(buffer)
        case .answer(let buffer):
            context?.write(NIOAny(buffer), promise: nil)
            answered = true
        case .hold(let hold):
            park(hold)
        case .passHalfClose:
            partner?.partnerShutOutput()
        case .secureSender(let makeHandler, let unread):
            guard let context else { return }
            // What was answered before (the go-ahead) leaves in clear; only what follows goes through the handler.
            context.flush()
            answered = false
            do {
                try context.pipeline.syncOperations.addHandler(makeHandler(), position: .first)
            } catch {
                return end(RelayEnding(failure: .proxy, "cannot start TLS with the \(side == .client ? "client" : "server"): \(describe(error))"))
            }
            if let unread, unread.readableBytes > 0 {
                // Read again from the pipeline's head, so the new handler sees them first, and now: NIO may read the
                // socket again within this event, and those bytes come after these. (What the handler passes on is
                // at most handshake bytes, going out; the read's `channelReadComplete` reaches it as usual.)
                context.pipeline.syncOperations.fireChannelRead(NIOAny(unread))
            }
        case .securePartner(let makeHandler):
            partner?.secureOwnPeer(makeHandler)
        case .end(let ending):
            end(ending)
        }
    }

    private func flushBoth() {
        partner?.partnerFlush()
        if answered {
            answered = false
            context?.flush()
        }
    }

    /// Asks the inspector with this handler's reusable array.
    private func ask(_ body: (RelayInspector, inout [RelayAction]) -> Void) {
        var actions = scratch
        scratch = []
        body(shared.inspector, &actions)
        run(actions)
        // Emptied now, not at the next read: an action still holding the read's buffer would keep NIO from reusing
        // that receive buffer, and it would allocate and keep a second one for every channel (1 KiB an idle
        // connection, more after a large read).
        actions.removeAll(keepingCapacity: true)
        scratch = actions
    }

    // MARK: Holding

    private func park(_ hold: RelayHold) {
        guard let context else { return }
        holding = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        shared.gate.hold(
            flowID: shared.recorder.flowID, sequence: hold.sequence, direction: hold.direction, payload: hold.payload, on: context.eventLoop,
            command: hold.command
        ) { verdict, decider in
            loopBound.value.released(hold, verdict: verdict, decidedBy: decider)
        }
    }

    private func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider) {
        holding = false
        var actions: [RelayAction] = []
        shared.inspector.released(hold, verdict: verdict, decidedBy: decidedBy, into: &actions)
        queued.prepend(actions)
        queuedBytes += actions.reduce(0) { $0 + $1.byteCount }
        drainQueue()
    }

    /// Carries out what queued behind a released hold, until the queue is empty or another hold parks; then reads
    /// again.
    private func drainQueue() {
        while !holding, let next = queued.popFirst() {
            queuedBytes -= next.byteCount
            perform(next)
        }
        flushBoth()
        accountBuffered()
        resumeReadingIfPending()
    }

    // MARK: Backpressure

    private func resumeReadingIfPending() {
        guard pendingRead, let context else { return }
        if ending {
            pendingRead = false
            context.read()
            return
        }
        if holding || !queued.isEmpty {
            guard shared.inspector.readsWhileHolding(readDirection), queued.count < Self.maxQueuedActions else { return }
        }
        guard partner?.isWritable == true else { return }
        guard !shared.bus.isBackedUp else {
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
        shared.bus.whenDrained {
            eventLoop.execute {
                let handler = loopBound.value
                handler.waitingForStore = false
                handler.resumeReadingIfPending()
            }
        }
    }

    /// Brings the flow's share of the buffer budget in line with what the inspector and both queues hold. Past the
    /// budget the inspector ends the relay.
    private func accountBuffered() {
        guard let budget = shared.budget else { return }
        let held = shared.inspector.bufferedBytes + queuedBytes + (partner?.queuedBytes ?? 0)
        let reserved = shared.reserved
        guard held != reserved else { return }
        if held > reserved {
            guard budget.reserve(held - reserved) else {
                let description = "connections together buffer \(budget.inUse) bytes of unfinished messages, and \(held - reserved) more would pass websocket.max_buffered_bytes (\(budget.limit))"
                ask { inspector, actions in inspector.budgetExceeded(description, into: &actions) }
                flushBoth()
                return
            }
        } else {
            budget.release(reserved - held)
        }
        shared.reserved = held
    }

    /// Lets go of the flow's reservation and everything the inspector holds. Either side's removal does it; the
    /// second finds nothing left.
    private func releaseBuffers() {
        queued.removeAll()
        queuedBytes = 0
        shared.budget?.release(shared.reserved)
        shared.reserved = 0
        shared.inspector.relayEnded()
    }

    // MARK: Ending

    private func end(_ ending: RelayEnding) {
        if let failure = ending.failure {
            shared.recorder.failed(failure.phase, failure.message)
        }
        if ending.isUrgent {
            queued.removeAll()
            queuedBytes = 0
        }
        finish(lastWords: ending.lastWords(for: side), abrupt: ending.abrupt)
        partner?.finish(lastWords: ending.lastWords(for: side == .client ? .server : .client), abrupt: ending.abrupt)
    }

    /// Closes this side: at once, after its pending writes, or after last words and the peer's own close.
    private func finish(lastWords: ByteBuffer?, abrupt: Bool) {
        guard !ending, let context else { return }
        ending = true
        if let lastWords {
            let channel = context.channel
            context.writeAndFlush(NIOAny(lastWords)).whenComplete { _ in channel.close(mode: .output, promise: nil) }
            context.eventLoop.scheduleTask(in: Self.closingGrace) { channel.close(promise: nil) }
            context.read()
        } else if abrupt {
            context.close(promise: nil)
        } else {
            afterPendingWrites(context) { context in
                context.close(promise: nil)
            }
        }
    }

    /// Writes are completed in order, so an empty write's promise fires once all earlier writes are done.
    private func afterPendingWrites(_ context: ChannelHandlerContext, _ body: @escaping (ChannelHandlerContext) -> Void) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            body(context)
        }
    }

    // MARK: Idle timeout

    private func scheduleIdleCheck(after delay: TimeAmount, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: delay) { loopBound.value.idleCheck() }
    }

    /// Closes both sides once neither has read for `idleLimit`. A message held for the operator is not idleness:
    /// its own `hold_timeout` applies.
    private func idleCheck() {
        guard let idleLimit = shared.idleLimit, context != nil else { return }
        let lastActivity = max(lastRead, partner?.lastRead ?? lastRead)
        let quiet = NIODeadline.now() - lastActivity
        if quiet < idleLimit || holding || partner?.holding == true {
            if let context { scheduleIdleCheck(after: quiet < idleLimit ? idleLimit - quiet : idleLimit, context: context) }
            return
        }
        let seconds = Double(idleLimit.nanoseconds) / 1_000_000_000
        end(RelayEnding(failure: .proxy, "closed after \(Formatting.seconds(seconds)) with no data either way (timeouts.tunnel_idle)"))
    }
}

extension RelayHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if side == .client, let idleLimit = shared.idleLimit { scheduleIdleCheck(after: idleLimit, context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        releaseBuffers()
        self.context = nil
        self.partner = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ending else { return }  // closing: what the peer still sends goes nowhere
        let buffer = unwrapInboundIn(data)
        if shared.idleLimit != nil { lastRead = .now() }
        let direction = readDirection
        ask { inspector, actions in inspector.read(buffer, direction: direction, into: &actions) }
        if queuedBytes > 0 || shared.reserved > 0 || shared.budget != nil && shared.inspector.bufferedBytes > 0 {
            accountBuffered()
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushBoth()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        run([.end(.peerClosed(abruptly: shared.recorder.hasFailed))])
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event, !ending {
            let direction = readDirection
            ask { inspector, actions in inspector.inputClosed(direction: direction, into: &actions) }
            flushBoth()
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        end(RelayEnding(failure: side == .client ? .client : .server, describe(error)))
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        pendingRead = true
        resumeReadingIfPending()
    }
}

@available(*, unavailable)
extension RelayHandler: Sendable {}

extension RelayHandler {
    /// Puts a relay on two channels whose pipelines end in an `EarlyInput` (as `ClientConnection` makes them),
    /// hands over what they read early, and starts reading.
    /// - Parameters:
    ///   - inspector: what the bytes mean; raw chunks when nil.
    ///   - idleLimit: how long the relay may carry nothing either way before both sides close; nil: forever.
    /// - Returns: the client-side and server-side handlers, e.g. to inject the operator's messages.
    @discardableResult
    public static func install(
        client: Channel, server: Channel, recorder: FlowRecorder, connection: ClientConnection, inspector: RelayInspector? = nil,
        idleLimit: TimeAmount? = nil
    ) throws -> (client: RelayHandler, server: RelayHandler) {
        let pair = matchedPair(
            recorder: recorder, bus: connection.bus, gate: connection.gate, inspector: inspector, budget: connection.bufferBudget,
            idleLimit: idleLimit
        )
        try client.pipeline.syncOperations.addHandler(pair.client)
        try server.pipeline.syncOperations.addHandler(pair.server)
        try client.pipeline.syncOperations.handler(type: EarlyInput.self).release()
        try server.pipeline.syncOperations.handler(type: EarlyInput.self).release()
        try client.syncOptions?.setOption(.autoRead, value: true)
        try server.syncOptions?.setOption(.autoRead, value: true)
        return pair
    }
}

extension RelayAction {
    /// The bytes an action carries, as the buffer budget counts them.
    var byteCount: Int {
        switch self {
        case .pass(let buffer), .passNow(let buffer), .answer(let buffer): return buffer.readableBytes
        case .hold(let hold): return hold.payload.count
        case .passHalfClose, .secureSender, .securePartner, .end: return 0
        }
    }
}
