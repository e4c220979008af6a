import NIOCore
import SluiceCore
import SluiceModel
import SluiceTLS

/// Holds a CONNECT tunnel's first bytes until they show what the client speaks: a complete TLS ClientHello (with
/// its server name), something else, or broken TLS. Then hands the same bytes, untouched, to whatever comes next.
///
/// Post-quantum ClientHellos span several segments and sometimes records (PROTOCOLS.md §6), so the peek runs on
/// everything buffered so far and reads on while it says `needMoreData`.
final class ClientHelloSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let decide: (ClientHelloPeek, ByteBuffer?) -> Void
    /// How long a started ClientHello may take to arrive whole (`timeouts.request_head`): a client that sends part
    /// of one and waits must not hold its connection and the server's for good.
    private let completionTimeout: TimeAmount
    private var timeout: Scheduled<Void>?
    private var completionDeadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var buffered: ByteBuffer?
    private var inputClosed = false
    private var decided = false

    /// How long a silent client may wait before the tunnel is relayed as bytes: some protocols let the server
    /// speak first (SMTP, SSH).
    static let silenceTimeout = TimeAmount.milliseconds(800)

    init(completionTimeout: TimeAmount, decide: @escaping (ClientHelloPeek, ByteBuffer?) -> Void) {
        self.completionTimeout = completionTimeout
        self.decide = decide
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        completionDeadline?.cancel()
        self.context = nil
    }

    /// Looks at what is there and reads on if that is not enough.
    func start() {
        if let context {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timeout = context.eventLoop.scheduleTask(in: Self.silenceTimeout) {
                let sniffer = loopBound.value
                guard !sniffer.decided, sniffer.buffered == nil else { return }
                sniffer.decided = true
                sniffer.decide(.notTLS, nil)
            }
            let seconds = Double(completionTimeout.nanoseconds) / 1_000_000_000
            completionDeadline = context.eventLoop.scheduleTask(in: completionTimeout) {
                let sniffer = loopBound.value
                guard !sniffer.decided, sniffer.buffered != nil else { return }
                sniffer.decided = true
                sniffer.decide(
                    .malformed("the ClientHello was not complete after \(Formatting.seconds(seconds)) (timeouts.request_head)"), sniffer.buffered
                )
            }
        }
        evaluate()
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
        evaluate()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
            evaluate()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func evaluate() {
        guard !decided, let context else { return }
        let peek = ClientHelloParser.peek(buffered ?? ByteBuffer())
        if case .needMoreData = peek {
            if inputClosed {
                decided = true
                timeout?.cancel()
                decide(buffered == nil ? .notTLS : .malformed("the client closed before its ClientHello was complete"), buffered)
            } else {
                context.read()
            }
            return
        }
        decided = true
        timeout?.cancel()
        decide(peek, buffered)
    }

    /// Passes the held bytes (and a half-close) to the handlers added behind this one, then leaves.
    func release() {
        guard let context else { return }
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
extension ClientHelloSniffer: Sendable {}
