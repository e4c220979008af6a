import NIOCore
import NIOHTTP1

/// Reads HTTP/1.1 messages off a channel's bytes with `HTTP1Parser` and passes them on as NIO's parts: requests
/// on a client connection (`HTTP1Decoder<HTTPRequestHead>`), responses inside `HTTP1ClientCodec`.
///
/// A parse error goes down the pipeline once (`errorCaught`) and nothing is read after it. When the parser stops
/// because another protocol takes over (CONNECT, `101`), the bytes it holds are passed on as they are when the
/// decoder is removed, if `forwardsRemainder`: the ClientHello a client sends right behind CONNECT, the first
/// WebSocket frames a server sends with its `101`.
final class HTTP1Decoder<Head: HTTP1ParsableHead>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPPart<Head, ByteBuffer>

    private var reader: HTTP1Reader<Head>

    init(forwardsRemainder: Bool = true, limits: HTTP1Limits = HTTP1Limits()) {
        reader = HTTP1Reader(forwardsRemainder: forwardsRemainder, limits: limits)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        reader.userInboundEventTriggered(event, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reader.channelInactive(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        reader.handlerRemoved(context: context)
    }
}

@available(*, unavailable)
extension HTTP1Decoder: Sendable {}

/// The HTTP/1.1 client side of a server connection in one handler: requests out as bytes (`HTTP1MessageWriter`),
/// responses in as parts, each read knowing the method of the request it answers (a HEAD's has no body).
final class HTTP1ClientCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private var reader: HTTP1Reader<HTTPResponseHead>
    private var writer = HTTP1MessageWriter()

    init(forwardsRemainder: Bool, limits: HTTP1Limits = HTTP1Limits()) {
        reader = HTTP1Reader(forwardsRemainder: forwardsRemainder, limits: limits)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if case .head(let head) = part { reader.expectResponse(to: head.method) }
        writer.write(part, allocator: context.channel.allocator, promise: promise) { bytes, promise in
            context.write(NIOAny(bytes), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        reader.userInboundEventTriggered(event, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        reader.channelInactive(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        reader.handlerRemoved(context: context)
    }
}

@available(*, unavailable)
extension HTTP1ClientCodec: Sendable {}

/// What both decoders do with their inbound bytes: keep what is not yet a part, hand out parts, end at EOF.
///
/// A class, not a struct: passing a part on can reenter the decoder (the exchange removes it after a `101`, or
/// closes the channel), and that must not overlap an access to the decoder's state.
final class HTTP1Reader<Head: HTTP1ParsableHead> {
    private var parser: HTTP1Parser<Head>
    /// Bytes read and not yet handed out; `empty` once all were, so that their storage is let go.
    private var buffer: ByteBuffer
    private let empty: ByteBuffer
    private var inputEnded = false
    private var failed = false
    private var removed = false
    private let forwardsRemainder: Bool

    init(forwardsRemainder: Bool, limits: HTTP1Limits) {
        self.forwardsRemainder = forwardsRemainder
        self.parser = HTTP1Parser(limits: limits)
        self.empty = ByteBuffer()
        self.buffer = empty
    }

    func expectResponse(to method: HTTPMethod) {
        parser.expectResponse(to: method)
    }

    func read(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        guard !failed else { return }  // the stream cannot be framed any more; the connection is being closed
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
        deliver(context: context)
    }

    func userInboundEventTriggered(_ event: Any, context: ChannelHandlerContext) {
        if let event = event as? ChannelEvent, case .inputClosed = event { endInput(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endInput(context: context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        let remainder = buffer
        buffer = empty
        if forwardsRemainder, remainder.readableBytes > 0 {
            context.fireChannelRead(NIOAny(remainder))
        }
    }

    private func endInput(context: ChannelHandlerContext) {
        guard !inputEnded else { return }
        inputEnded = true
        deliver(context: context)
    }

    /// Hands out every part the buffered bytes complete. Each part's bytes leave the buffer before it is passed on.
    private func deliver(context: ChannelHandlerContext) {
        while !removed, !failed {
            var input = buffer
            let part: HTTPPart<Head, ByteBuffer>?
            do {
                part = try parser.next(from: &input, inputEnded: inputEnded)
            } catch {
                failed = true
                buffer = empty
                context.fireErrorCaught(error)
                return
            }
            buffer = input.readableBytes > 0 ? input : empty
            guard let part else { return }
            context.fireChannelRead(NIOAny(part))
        }
    }
}

@available(*, unavailable)
extension HTTP1Reader: Sendable {}
