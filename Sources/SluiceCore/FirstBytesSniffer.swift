import NIOCore

/// Holds a transparent connection's first bytes until `ProtocolSniffer` names its protocol, then leaves them, untouched
/// and in order (a half-close too), in a fresh `EarlyInput` for the module the connection is handed to.
///
/// Bounded both ways: it stops asking for bytes once `ProtocolSniffer.maxBytes` have come (a read may bring at most
/// one more buffer), and decides with what it has after `timeout` (a silent client, or one that sends part of an
/// opening and waits).
final class FirstBytesSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let sniffer: ProtocolSniffer
    private let port: Int
    private let timeout: TimeAmount
    private let decide: (ProtocolSniffer.Verdict) -> Void
    private var context: ChannelHandlerContext?
    private var buffered: ByteBuffer?
    private var inputClosed = false
    private var decided = false
    private var timer: Scheduled<Void>?

    /// - Parameters:
    ///   - port: the original destination's port.
    ///   - decide: called once, on the event loop, with the verdict (never `needMoreData`); not called when the
    ///     connection closes before that.
    init(sniffer: ProtocolSniffer, port: Int, timeout: TimeAmount, decide: @escaping (ProtocolSniffer.Verdict) -> Void) {
        self.sniffer = sniffer
        self.port = port
        self.timeout = timeout
        self.decide = decide
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// Starts the clock, looks at what is there, and reads on if that is not enough.
    func start() {
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.evaluate(final: true)
        }
        evaluate(final: inputClosed)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered?.writeBuffer(&incoming)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        evaluate(final: inputClosed)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
            evaluate(final: true)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Gone before it said what it speaks: there is nobody left to hand over.
        decided = true
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func evaluate(final: Bool) {
        guard !decided, let context else { return }
        let bytes = buffered?.readableBytesView ?? ByteBuffer().readableBytesView
        let verdict = sniffer.decide(bytes, port: port, final: final || bytes.count >= ProtocolSniffer.maxBytes)
        guard verdict != .needMoreData else {
            context.read()
            return
        }
        decided = true
        timer?.cancel()
        decide(verdict)
    }

    /// Puts an `EarlyInput` behind this handler, passes it the held bytes (and a half-close), then leaves: the
    /// pipeline is as a module expects it from any listener.
    func handOver() throws {
        guard let context else { return }
        try context.pipeline.syncOperations.addHandler(EarlyInput(), position: .after(self))
        if let buffered, buffered.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(buffered))
            context.fireChannelReadComplete()
        }
        buffered = nil
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension FirstBytesSniffer: Sendable {}
