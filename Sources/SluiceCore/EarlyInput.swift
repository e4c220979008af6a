import NIOCore

/// Keeps what a channel receives before its relay is in place, then hands it over in order.
///
/// Channels start with `autoRead` off, but NIO still reads everything up to an EOF it is told about: a client that
/// sends a request and shuts its write side before the target has even accepted (`printf 'x' | nc -N`) would
/// otherwise lose both the bytes and the FIN. Also starts the flow once the accepted channel is active: from the
/// child initializer a loopback connect can complete before the accepted channel is registered.
public final class EarlyInput: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let whenActive: (() -> Void)?
    private var context: ChannelHandlerContext?
    private var buffered: [ByteBuffer] = []
    private var inputClosed = false

    public init(whenActive: (() -> Void)? = nil) {
        self.whenActive = whenActive
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        whenActive?()
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffered.append(unwrapInboundIn(data))
    }

    public func channelReadComplete(context: ChannelHandlerContext) {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Called once the relay sits behind this handler: replays what came early, then leaves the pipeline.
    public func release() {
        guard let context else { return }
        let early = buffered
        buffered = []
        for buffer in early {
            context.fireChannelRead(wrapInboundOut(buffer))
        }
        if !early.isEmpty { context.fireChannelReadComplete() }
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension EarlyInput: Sendable {}
