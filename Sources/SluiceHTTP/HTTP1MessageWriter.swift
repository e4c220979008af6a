import NIOCore
import NIOHTTP1

/// HTTP/1.1 message parts as the bytes Sluice writes: what NIO's `HTTPRequestEncoder` and `HTTPResponseEncoder`
/// write as Sluice configured them (`automaticallySetFramingHeaders = false`: `ExchangePlan` and replays set the
/// framing headers), with each head written in one pass (`ByteBuffer.writeHTTPHead`). A 1 KiB exchange spent ~20k
/// instructions in NIO's two encoders, most of it appending heads piece by piece. One per connection and
/// direction: it remembers how the current message's body is framed.
///
/// The bytes are NIO's (`HTTP1MessageWriterTests`): a body goes out in chunks when the head says
/// `Transfer-Encoding: chunked` on HTTP/1.1 or later, as is otherwise, and a chunked message ends with the last
/// chunk and its trailers. `emit` gets the buffers to write in order; the promise rides on the last of a part's.
struct HTTP1MessageWriter {
    private var isChunked = false

    typealias Emit = (IOData, EventLoopPromise<Void>?) -> Void

    mutating func write<Head: HTTP1Head>(
        _ part: HTTPPart<Head, IOData>, allocator: ByteBufferAllocator, promise: EventLoopPromise<Void>?, to emit: Emit
    ) {
        switch part {
        case .head(let head):
            start(version: head.version, headers: head.headers)
            var bytes = allocator.buffer(capacity: 256)
            head.write(into: &bytes)
            emit(.byteBuffer(bytes), promise)
        case .body(let body):
            write(body: body, allocator: allocator, promise: promise, to: emit)
        case .end(let trailers):
            end(trailers, allocator: allocator, promise: promise, to: emit)
        }
    }

    private mutating func start(version: HTTPVersion, headers: HTTPHeaders) {
        isChunked = version.major == 1 && version.minor >= 1 && headers.first(name: "transfer-encoding") == "chunked"
    }

    /// As is, or as `size\r\n`, the bytes, `\r\n`. An empty part is never framed (it would end a chunked body), but
    /// written, so that its promise completes after every earlier write.
    private func write(body: IOData, allocator: ByteBufferAllocator, promise: EventLoopPromise<Void>?, to emit: Emit) {
        guard isChunked, body.readableBytes > 0 else {
            emit(body, promise)
            return
        }
        var frame = allocator.buffer(capacity: 20)
        frame.writeString(String(body.readableBytes, radix: 16))
        frame.writeStaticString("\r\n")
        emit(.byteBuffer(frame), nil)
        emit(body, nil)
        frame.moveReaderIndex(forwardBy: frame.readableBytes - 2)
        emit(.byteBuffer(frame), promise)
    }

    /// The last chunk and any trailers when chunked; otherwise nothing, or an empty write that keeps the promise in
    /// order.
    private func end(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator, promise: EventLoopPromise<Void>?, to emit: Emit) {
        if isChunked {
            var last = allocator.buffer(capacity: 3 + (trailers?.wireSize ?? 2))
            last.writeStaticString("0\r\n")
            if let trailers {
                last.writeHTTPHeaders(trailers)
            } else {
                last.writeStaticString("\r\n")
            }
            emit(.byteBuffer(last), promise)
        } else if let promise {
            emit(.byteBuffer(allocator.buffer(capacity: 0)), promise)
        }
    }
}

/// A request or a response head, for the one generic path of `HTTP1MessageWriter`.
protocol HTTP1Head {
    var version: HTTPVersion { get }
    var headers: HTTPHeaders { get }
    func write(into buffer: inout ByteBuffer)
}

extension HTTPRequestHead: HTTP1Head {
    func write(into buffer: inout ByteBuffer) { buffer.writeHTTPHead(self) }
}

extension HTTPResponseHead: HTTP1Head {
    func write(into buffer: inout ByteBuffer) { buffer.writeHTTPHead(self) }
}
