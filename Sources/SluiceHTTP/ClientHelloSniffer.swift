import NIOCore
import SluiceTLS

/// Holds a CONNECT tunnel's first bytes until they show what the client speaks: a complete TLS ClientHello (with
/// its server name), something else, or broken TLS. Then hands the same bytes, untouched, to whatever comes next.
///
/// Post-quantum ClientHellos span several segments and sometimes records (PROTOCOLS.md §6), so the peek runs on
/// everything buffered so far and reads on while it says `needMoreData`.
final class ClientHelloSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let decide: (ClientHelloPeek) -> Void
    private var context: ChannelHandlerContext?
    private var buffered: ByteBuffer?
    private var inputClosed = false
    private var decided = false

    init(decide: @escaping (ClientHelloPeek) -> Void) {
        self.decide = decide
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Looks at what is there and reads on if that is not enough.
    func start() {
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
                decide(buffered == nil ? .notTLS : .malformed("the client closed before its ClientHello was complete"))
            } else {
                context.read()
            }
            return
        }
        decided = true
        decide(peek)
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
