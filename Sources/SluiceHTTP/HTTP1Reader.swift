import NIOCore
import NIOHTTP1
import SluiceCore

/// What a handler that reads HTTP/1.1 does with its inbound bytes: keeps what is not yet a part, hands out parts
/// (`HTTP1Parser`), ends at EOF, and gives back what it holds when another protocol takes the connection.
///
/// The proxy's handlers own one each (`HTTPProxyHandler` for requests, `UpstreamHandler` for responses) and take
/// the parts as calls, not as pipeline reads: a part boxed in an `NIOAny` and cast back costs a generic metadata
/// lookup and a dynamic cast per part. A class, not a struct: passing a part on can reenter the handler (it removes
/// itself after a `101`, or closes), and that must not overlap an access to the reader's state.
final class HTTP1Reader<Head: HTTP1ParsableHead> {
    typealias Part = HTTPPart<Head, ByteBuffer>

    private var parser: HTTP1Parser<Head>
    /// Bytes read and not yet handed out; `empty` once all were, so that their storage is let go.
    private var buffer: ByteBuffer
    private let empty: ByteBuffer
    private var inputEnded = false
    private var failed = false
    /// Set once nothing more is to be read: handed over, or stopped.
    private var stopped = false

    init() {
        self.parser = HTTP1Parser()
        self.empty = ByteBuffer()
        self.buffer = empty
    }

    /// Bytes of a message not yet complete are held (a head still arriving, say).
    var hasBufferedInput: Bool { buffer.readableBytes > 0 }

    /// Records that a request with `method` went out (responses only): a HEAD's response has no body.
    func expectResponse(to method: HTTPMethod) {
        parser.expectResponse(to: method)
    }

    /// Takes `bytes` and hands out every part they complete. After an error nothing more is read: the stream cannot
    /// be framed any more.
    func read(_ bytes: ByteBuffer, deliver: (Part) -> Void, fail: (HTTP1ParseError) -> Void) {
        guard !failed, !stopped else { return }
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
        process(deliver: deliver, fail: fail)
    }

    /// The peer sends nothing more: a body read until close ends, a message cut short fails. Only the first call
    /// counts (a half-close, then the channel going inactive).
    func endInput(deliver: (Part) -> Void, fail: (HTTP1ParseError) -> Void) {
        guard !inputEnded else { return }
        inputEnded = true
        process(deliver: deliver, fail: fail)
    }

    /// Another protocol has the connection: an `EarlyInput` takes `handler`'s place in the pipeline with the bytes
    /// read beyond the last message (a ClientHello right behind CONNECT, a server's first frames with its `101`)
    /// and holds them until the next protocol's handlers are in.
    func handOver<Handler: RemovableChannelHandler>(from handler: Handler, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        do {
            try context.pipeline.syncOperations.addHandler(EarlyInput(), position: .after(handler))
        } catch {
            return context.eventLoop.makeFailedFuture(error)
        }
        if let remainder = takeRemainder() { context.fireChannelRead(NIOAny(remainder)) }
        return context.pipeline.syncOperations.removeHandler(handler)
    }

    /// The bytes held beyond the last message, which belong to the protocol that follows. Nothing is read after
    /// this.
    func takeRemainder() -> ByteBuffer? {
        stopped = true
        let remainder = buffer
        buffer = empty
        return remainder.readableBytes > 0 ? remainder : nil
    }

    /// Nothing more is read, not even at the input's end: the rest of the stream is of no use (the body of a
    /// request whose exchange is over, on a connection about to close).
    func stop() {
        stopped = true
        buffer = empty
    }

    /// Each part's bytes leave the buffer before it is passed on.
    private func process(deliver: (Part) -> Void, fail: (HTTP1ParseError) -> Void) {
        while !stopped, !failed {
            var input = buffer
            let part: Part?
            do {
                part = try parser.next(from: &input, inputEnded: inputEnded)
            } catch {
                failed = true
                buffer = empty
                fail(error)
                return
            }
            buffer = input.readableBytes > 0 ? input : empty
            guard let part else { return }
            deliver(part)
        }
    }
}

@available(*, unavailable)
extension HTTP1Reader: Sendable {}

/// The HTTP/1.1 client side of a server connection as a handler, for replays: requests out as bytes
/// (`HTTP1MessageWriter`), responses in as parts, each read knowing the method of the request it answers.
final class HTTP1ClientCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private let reader = HTTP1Reader<HTTPResponseHead>()
    private var writer = HTTP1MessageWriter()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if case .head(let head) = part { reader.expectResponse(to: head.method) }
        writer.write(part, allocator: context.channel.allocator, promise: promise) { bytes, promise in
            context.write(NIOAny(bytes), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), deliver: { context.fireChannelRead(wrapInboundOut($0)) }, fail: { context.fireErrorCaught($0) })
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { endInput(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endInput(context: context)
        context.fireChannelInactive()
    }

    private func endInput(context: ChannelHandlerContext) {
        reader.endInput(deliver: { context.fireChannelRead(wrapInboundOut($0)) }, fail: { context.fireErrorCaught($0) })
    }
}

@available(*, unavailable)
extension HTTP1ClientCodec: Sendable {}
