import NIOCore
import SluiceModel

/// Splices two channels into one flow, in the shape of swift-nio-examples' `GlueHandler`, and records what it
/// carries.
///
/// One handler sits in each channel of a pair. What one channel reads is recorded and written to its partner.
/// Backpressure both ways: a channel reads only while its partner is writable (a slow reader never makes Sluice
/// buffer without bound) and while the store keeps up. Half-close: when one side shuts its output, the partner's
/// output is shut after its pending writes, and the other direction keeps flowing.
final class RelayHandler {
    /// The side this handler's channel faces.
    let side: FlowRecorder.Side
    private let recorder: FlowRecorder
    private let bus: FlowBus
    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var waitingForStore = false

    private init(side: FlowRecorder.Side, recorder: FlowRecorder, bus: FlowBus) {
        self.side = side
        self.recorder = recorder
        self.bus = bus
    }

    /// The client-facing and the server-facing handler of one flow.
    static func matchedPair(recorder: FlowRecorder, bus: FlowBus) -> (client: RelayHandler, server: RelayHandler) {
        let client = RelayHandler(side: .client, recorder: recorder, bus: bus)
        let server = RelayHandler(side: .server, recorder: recorder, bus: bus)
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
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            body(loopBound.value)
        }
    }

    private func resumeReadingIfPending() {
        guard pendingRead, let context else { return }
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
}

extension RelayHandler: ChannelDuplexHandler {
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
        let buffer = unwrapInboundIn(data)
        recorder.chunk(buffer, direction: readDirection)
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClosed(abruptly: recorder.hasFailed)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerShutOutput()
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
