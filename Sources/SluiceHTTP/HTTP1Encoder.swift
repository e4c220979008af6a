import NIOCore
import NIOHTTP1

/// Sluice's HTTP/1.1 encoders: NIO's `HTTPRequestEncoder` and `HTTPResponseEncoder` as Sluice configures them
/// (`automaticallySetFramingHeaders = false`: `ExchangePlan` and replays set the framing headers), but writing each
/// head in one pass (`ByteBuffer.writeHTTPHead`). A 1 KiB exchange spent ~20k instructions in NIO's two encoders,
/// most of it appending heads piece by piece.
///
/// The bytes are NIO's (`HeadWritingEquivalenceTests`): a body goes out in chunks when the head says
/// `Transfer-Encoding: chunked` on HTTP/1.1 or later, as is otherwise, and a chunked message ends with the last
/// chunk and its trailers.
struct HTTP1BodyFraming {
    private var isChunked = false

    /// A new message starts with this head.
    mutating func start(version: HTTPVersion, headers: HTTPHeaders) {
        isChunked = version.major == 1 && version.minor >= 1 && headers.first(name: "transfer-encoding") == "chunked"
    }

    /// One body part, framed: as is, or as `size\r\n`, the bytes, `\r\n`. An empty part is never framed (it would
    /// end a chunked body), but written, so that its promise completes after every earlier write.
    func body(_ part: IOData, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard isChunked, part.readableBytes > 0 else {
            context.write(NIOAny(part), promise: promise)
            return
        }
        var frame = context.channel.allocator.buffer(capacity: 20)
        frame.writeString(String(part.readableBytes, radix: 16))
        frame.writeStaticString("\r\n")
        context.write(NIOAny(frame), promise: nil)
        context.write(NIOAny(part), promise: nil)
        // Writes complete in order, so the last one's promise stands for all three.
        frame.moveReaderIndex(forwardBy: frame.readableBytes - 2)
        context.write(NIOAny(frame), promise: promise)
    }

    /// The end of the message: the last chunk and any trailers when chunked; otherwise nothing, or an empty write
    /// that carries the promise in order.
    func end(_ trailers: HTTPHeaders?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if isChunked {
            var last = context.channel.allocator.buffer(capacity: 3 + (trailers?.wireSize ?? 2))
            last.writeStaticString("0\r\n")
            if let trailers {
                last.writeHTTPHeaders(trailers)
            } else {
                last.writeStaticString("\r\n")
            }
            context.write(NIOAny(last), promise: promise)
        } else if let promise {
            context.write(NIOAny(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        }
    }
}

/// Requests to servers: sits below the `HTTPResponseDecoder`, which watches each request go by so that it reads a
/// `HEAD`'s response without a body.
final class HTTP1RequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private var framing = HTTP1BodyFraming()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            framing.start(version: head.version, headers: head.headers)
            var bytes = context.channel.allocator.buffer(capacity: 256)
            bytes.writeHTTPHead(head)
            context.write(NIOAny(bytes), promise: promise)
        case .body(let part):
            framing.body(part, context: context, promise: promise)
        case .end(let trailers):
            framing.end(trailers, context: context, promise: promise)
        }
    }
}

@available(*, unavailable)
extension HTTP1RequestEncoder: Sendable {}

/// Responses to clients.
final class HTTP1ResponseEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    private var framing = HTTP1BodyFraming()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            framing.start(version: head.version, headers: head.headers)
            var bytes = context.channel.allocator.buffer(capacity: 256)
            bytes.writeHTTPHead(head)
            context.write(NIOAny(bytes), promise: promise)
        case .body(let part):
            framing.body(part, context: context, promise: promise)
        case .end(let trailers):
            framing.end(trailers, context: context, promise: promise)
        }
    }
}

@available(*, unavailable)
extension HTTP1ResponseEncoder: Sendable {}
