import NIOCore
import NIOHTTP1

/// HTTP/1 message heads as bytes, the same bytes NIO's encoders write (`HTTP1MessageWriterTests`).
///
/// NIO's `write(headers:)` appends a head in four writes per header, each checking the buffer's uniqueness and
/// capacity and slicing its storage: some sixty appends and ~9k instructions per head. Here the head is measured
/// first, the buffer grown once, and every string copied in with one `memcpy`.
extension ByteBuffer {
    /// `GET /path HTTP/1.1`, the headers in order, the empty line.
    mutating func writeHTTPHead(_ head: HTTPRequestHead) {
        let method = head.method.rawValue
        let version = head.version.wireText
        let size = method.utf8.count + 1 + head.uri.utf8.count + 1 + version.utf8.count + 2 + head.headers.wireSize
        writeHead(size: size, headers: head.headers) { line in
            line.copy(method)
            line.copy(" ")
            line.copy(head.uri)
            line.copy(" ")
            line.copy(version)
            line.copy("\r\n")
        }
    }

    /// `HTTP/1.1 200 OK`, the headers in order, the empty line. The reason phrase is NIO's for the code (what its
    /// decoder keeps of a server's), or the one a `.custom` status carries.
    mutating func writeHTTPHead(_ head: HTTPResponseHead) {
        let version = head.version.wireText
        let code = String(head.status.code)
        let reason = head.status.reasonPhrase
        let size = version.utf8.count + 1 + code.utf8.count + 1 + reason.utf8.count + 2 + head.headers.wireSize
        writeHead(size: size, headers: head.headers) { line in
            line.copy(version)
            line.copy(" ")
            line.copy(code)
            line.copy(" ")
            line.copy(reason)
            line.copy("\r\n")
        }
    }

    /// Trailers after a chunked body's last chunk: the headers and the empty line.
    mutating func writeHTTPHeaders(_ headers: HTTPHeaders) {
        writeHead(size: headers.wireSize, headers: headers) { _ in }
    }

    /// Reserves `size` bytes (start line, headers, empty line) and fills them: `startLine`, then each header.
    private mutating func writeHead(size: Int, headers: HTTPHeaders, startLine: (inout HeadBytes) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: size) { space in
            var bytes = HeadBytes(space)
            startLine(&bytes)
            for (name, value) in headers {
                bytes.copy(name)
                bytes.copy(": ")
                bytes.copy(value)
                bytes.copy("\r\n")
            }
            bytes.copy("\r\n")
            assert(bytes.count == size, "a head measured \(size) bytes and wrote \(bytes.count)")
            return bytes.count
        }
    }
}

/// A cursor over the space reserved for a head; it never writes past the space (a short head is a bug, not a
/// crash: the copy stops there).
private struct HeadBytes {
    private let space: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ space: UnsafeMutableRawBufferPointer) {
        self.space = space
    }

    @inline(__always)
    mutating func copy(_ text: String) {
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { copy(UnsafeRawBufferPointer($0)) }
        if copied == nil {
            var text = text
            text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
        }
    }

    @inline(__always)
    mutating func copy(_ text: StaticString) {
        copy(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    private mutating func copy(_ bytes: UnsafeRawBufferPointer) {
        let length = min(bytes.count, space.count - count)
        guard length > 0, let source = bytes.baseAddress, let target = space.baseAddress else { return }
        (target + count).copyMemory(from: source, byteCount: length)
        count += length
    }
}

extension HTTPHeaders {
    /// Bytes the headers take on the wire: `name: value\r\n` each, and the empty line after them.
    var wireSize: Int {
        var size = 2
        for (name, value) in self {
            size += name.utf8.count + value.utf8.count + 4
        }
        return size
    }
}

extension HTTPVersion {
    /// `HTTP/1.1`; a literal for the two versions HTTP/1 peers speak.
    var wireText: String {
        switch (major, minor) {
        case (1, 1): "HTTP/1.1"
        case (1, 0): "HTTP/1.0"
        default: "HTTP/\(major).\(minor)"
        }
    }
}
