import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SluiceTestSupport
import Testing

@testable import SluiceHTTP

/// Sluice's HTTP/1.1 message writer (and the request encoder built on it) against NIO's encoders, configured as the
/// proxy had them (`automaticallySetFramingHeaders = false`): for random messages (every method and status NIO names, custom ones, HTTP/1.0 and 1.1, headers with
/// UTF-8 and empty values, chunked and not, bodies of 0 to 3 parts, trailers) both must write the same bytes, and
/// complete every write promise.
@Suite(.ownThread) struct HTTP1MessageWriterTests {
    static let methods: [HTTPMethod] = [
        .GET, .PUT, .ACL, .HEAD, .POST, .COPY, .LOCK, .MOVE, .BIND, .LINK, .PATCH, .TRACE, .MKCOL, .MERGE, .PURGE,
        .NOTIFY, .SEARCH, .UNLOCK, .REBIND, .UNBIND, .REPORT, .DELETE, .UNLINK, .CONNECT, .MSEARCH, .OPTIONS,
        .PROPFIND, .CHECKOUT, .PROPPATCH, .SUBSCRIBE, .MKCALENDAR, .MKACTIVITY, .UNSUBSCRIBE, .SOURCE, .RAW(value: "BREW"),
    ]
    static let versions: [HTTPVersion] = [.http1_1, .http1_0, .init(major: 1, minor: 2), .init(major: 2, minor: 0)]
    static let uris = ["/", "/a/b?c=d&e=f", "http://example.test:8080/x", "example.test:443", "*", "/snowman/\u{2603}", ""]
    static let names = ["Host", "Content-Length", "Transfer-Encoding", "transfer-encoding", "X-Long", "Set-Cookie", "É"]
    static let values = ["chunked", "Chunked", "gzip, chunked", "12", "", "a b", String(repeating: "v", count: 300), "caf\u{e9}"]

    static func randomHeaders(_ generator: inout some RandomNumberGenerator) -> HTTPHeaders {
        HTTPHeaders(
            (0..<Int.random(in: 0...8, using: &generator)).map { _ in
                (names.randomElement(using: &generator)!, values.randomElement(using: &generator)!)
            }
        )
    }

    static func randomStatus(_ generator: inout some RandomNumberGenerator) -> HTTPResponseStatus {
        if Int.random(in: 0..<8, using: &generator) == 0 {
            return .custom(code: UInt.random(in: 100...599, using: &generator), reasonPhrase: ["Odd", "", "Très bien"].randomElement(using: &generator)!)
        }
        return HTTPResponseStatus(statusCode: Int.random(in: 100...599, using: &generator))
    }

    static func randomBody(_ generator: inout some RandomNumberGenerator) -> [ByteBuffer] {
        (0..<Int.random(in: 0...3, using: &generator)).map { _ in
            ByteBuffer(bytes: (0..<[0, 1, 15, 16, 4097].randomElement(using: &generator)!).map { UInt8(truncatingIfNeeded: $0) })
        }
    }

    /// NIO's bytes: the parts written through its `encoder` in an `EmbeddedChannel`, each with a promise; and how
    /// many promises completed.
    static func bytes(written parts: [NIOAny], through encoder: ChannelHandler) throws -> (bytes: [UInt8], completed: Int) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(encoder)
        let completed = NIOLockedValueBox(0)
        for part in parts {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { completed.withLockedValue { $0 += 1 } }
            channel.pipeline.syncOperations.writeAndFlush(part, promise: promise)
        }
        var bytes: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(var buffer) = data { bytes += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        }
        _ = try channel.finish()
        return (bytes, completed.withLockedValue { $0 })
    }

    /// Sluice's bytes: each part written with a promise; and how many of those promises `emit` was handed back
    /// exactly once.
    static func writtenBySluice<Head: HTTP1Head>(_ parts: [HTTPPart<Head, IOData>]) -> (bytes: [UInt8], completed: Int) {
        let loop = EmbeddedEventLoop()
        var writer = HTTP1MessageWriter()
        var bytes: [UInt8] = []
        var completed = 0
        for part in parts {
            let promise = loop.makePromise(of: Void.self)
            var handed = 0
            writer.write(part, allocator: ByteBufferAllocator(), promise: promise) { data, carried in
                if case .byteBuffer(var buffer) = data { bytes += buffer.readBytes(length: buffer.readableBytes) ?? [] }
                if let carried, carried.futureResult === promise.futureResult { handed += 1 }
            }
            if handed == 1 { completed += 1 }
            promise.succeed()
        }
        return (bytes, completed)
    }

    /// The client codec, which the proxy's upstreams and replays use, writes the same.
    static func writtenByHandler(_ parts: [HTTPClientRequestPart]) throws -> (bytes: [UInt8], completed: Int) {
        try bytes(written: parts.map { NIOAny($0) }, through: HTTP1ClientCodec())
    }

    /// Where two byte strings part, with a little text around it; nil when they are equal.
    static func firstDifference(_ ours: [UInt8], _ theirs: [UInt8]) -> String? {
        guard ours != theirs else { return nil }
        let index = zip(ours, theirs).prefix { $0 == $1 }.count
        func around(_ bytes: [UInt8]) -> String {
            String(decoding: bytes[max(0, index - 20)..<min(bytes.count, index + 20)], as: UTF8.self).debugDescription
        }
        return "byte \(index) of \(ours.count) (NIO: \(theirs.count)): \(around(ours)) vs \(around(theirs))"
    }

    static func nioRequestEncoder() -> HTTPRequestEncoder {
        var configuration = HTTPRequestEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = false
        return HTTPRequestEncoder(configuration: configuration)
    }

    static func nioResponseEncoder() -> HTTPResponseEncoder {
        var configuration = HTTPResponseEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = false
        return HTTPResponseEncoder(configuration: configuration)
    }

    static func message<Head>(_ head: Head, _ generator: inout some RandomNumberGenerator) -> [HTTPPart<Head, IOData>] {
        var parts: [HTTPPart<Head, IOData>] = [.head(head)]
        parts += randomBody(&generator).map { .body(.byteBuffer($0)) }
        parts.append(.end(Bool.random(using: &generator) ? randomHeaders(&generator) : nil))
        return parts
    }

    @Test func requestsAreWrittenAsNIOWritesThem() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1500 {
            var headers = Self.randomHeaders(&generator)
            if Bool.random(using: &generator) { headers.add(name: "Transfer-Encoding", value: "chunked") }
            let head = HTTPRequestHead(
                version: Self.versions.randomElement(using: &generator)!, method: Self.methods.randomElement(using: &generator)!,
                uri: Self.uris.randomElement(using: &generator)!, headers: headers
            )
            // Two requests on one connection: the framing of the first must not leak into the second.
            let parts = Self.message(head, &generator) + Self.message(head, &generator)
            let ours = Self.writtenBySluice(parts)
            let handler = try Self.writtenByHandler(parts)
            let nio = try Self.bytes(written: parts.map { NIOAny($0) }, through: Self.nioRequestEncoder())
            if let difference = Self.firstDifference(ours.bytes, nio.bytes) ?? Self.firstDifference(handler.bytes, nio.bytes) {
                Issue.record("\(head): \(difference)")
                return
            }
            #expect(ours.completed == parts.count && handler.completed == parts.count && nio.completed == parts.count)
        }
    }

    @Test func responsesAreWrittenAsNIOWritesThem() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1500 {
            var headers = Self.randomHeaders(&generator)
            if Bool.random(using: &generator) { headers.add(name: "transfer-encoding", value: "chunked") }
            let head = HTTPResponseHead(
                version: Self.versions.randomElement(using: &generator)!, status: Self.randomStatus(&generator), headers: headers
            )
            let parts = Self.message(head, &generator) + Self.message(head, &generator)
            let ours = Self.writtenBySluice(parts)
            let nio = try Self.bytes(written: parts.map { NIOAny($0) }, through: Self.nioResponseEncoder())
            if let difference = Self.firstDifference(ours.bytes, nio.bytes) {
                Issue.record("\(head): \(difference)")
                return
            }
            #expect(ours.completed == parts.count && nio.completed == parts.count)
        }
    }

    @Test func aChunkedResponseIsFramedOnTheWire() throws {
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked", "X-A": "1"])
        let parts: [HTTPServerResponsePart] = [
            .head(head), .body(.byteBuffer(ByteBuffer(string: "hello world, 26 bytes long"))), .body(.byteBuffer(ByteBuffer())),
            .end(["Digest": "x"]),
        ]
        let written = Self.writtenBySluice(parts)
        #expect(
            String(decoding: written.bytes, as: UTF8.self)
                == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n1a\r\nhello world, 26 bytes long\r\n0\r\nDigest: x\r\n\r\n"
        )
    }

    @Test func aRequestWithALengthGoesOutAsIs() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/form", headers: ["Host": "a", "Content-Length": "3"])
        let parts: [HTTPClientRequestPart] = [.head(head), .body(.byteBuffer(ByteBuffer(string: "x=1"))), .end(nil)]
        let written = try Self.writtenByHandler(parts)
        #expect(String(decoding: written.bytes, as: UTF8.self) == "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nx=1")
        #expect(written.completed == 3)
    }
}
