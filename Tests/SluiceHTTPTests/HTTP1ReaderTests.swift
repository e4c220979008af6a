import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SluiceHTTP

/// `HTTP1Reader`, which the proxy's handlers read with, and `HTTP1ClientCodec`, its handler for replays: parts in
/// order, the bytes behind a protocol switch handed over (also from inside a part's delivery, as after a `101`),
/// one error and then silence, the input's end seen once.
@Suite struct HTTP1ReaderTests {
    /// What a reader handed out, and its errors.
    final class Received<Head: HTTP1ParsableHead> {
        var events: [ParsedEvent] = []
        var errors: [HTTP1ParseError] = []
        let reader = HTTP1Reader<Head>()
        /// Called with each part as it is delivered.
        var onPart: (HTTPPart<Head, ByteBuffer>) -> Void = { _ in }

        func read(_ text: String) { read(ByteBuffer(string: text)) }

        func read(_ bytes: ByteBuffer) {
            reader.read(bytes, deliver: deliver, fail: { self.errors.append($0) })
        }

        func endInput() {
            reader.endInput(deliver: deliver, fail: { self.errors.append($0) })
        }

        private func deliver(_ part: HTTPPart<Head, ByteBuffer>) {
            events.append(.from(part))
            onPart(part)
        }
    }

    @Test func aClientHelloBehindCONNECTIsHandedOverAndNothingIsReadAfter() {
        let received = Received<HTTPRequestHead>()
        received.read("CONNECT h.test:443 HTTP/1.1\r\nHost: h.test:443\r\n\r\n\u{16}\u{3}")
        received.read("more")
        #expect(received.events.count == 2)
        #expect(received.reader.takeRemainder().map { String(buffer: $0) } == "\u{16}\u{3}more")
        received.read("GET / HTTP/1.1\r\n\r\n")
        #expect(received.events.count == 2)
        #expect(received.reader.takeRemainder() == nil)
    }

    @Test func aParseErrorIsReportedOnceAndNothingIsReadAfterIt() {
        let received = Received<HTTPRequestHead>()
        received.read("GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/1.1\r\nBad Field: 1\r\n\r\n")
        received.read("GET /after HTTP/1.1\r\n\r\n")
        received.endInput()
        #expect(received.events.count == 2)
        #expect(received.errors == [.invalidField])
    }

    @Test func theEndOfInputEndsABodyReadUntilCloseOnceOrCutsAMessageShort() {
        let received = Received<HTTPResponseHead>()
        received.reader.expectResponse(to: .GET)
        received.read("HTTP/1.1 200 OK\r\n\r\nuntil")
        received.endInput()
        received.endInput()  // a half-close, then the channel going inactive
        #expect(
            ParsedEvent.joiningBodies(received.events) == [
                .response(status: 200, reason: "OK", version: "HTTP/1.1", headers: []), .body(Array("until".utf8)), .end(trailers: nil),
            ]
        )
        #expect(received.errors.isEmpty)

        let cut = Received<HTTPResponseHead>()
        cut.reader.expectResponse(to: .GET)
        cut.read("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut")
        cut.endInput()
        #expect(cut.errors == [.truncated])
    }

    @Test func framesAfterA101AreHandedOverFromInsideTheEndsDelivery() {
        let received = Received<HTTPResponseHead>()
        received.reader.expectResponse(to: .GET)
        var handedOver: [UInt8]?
        received.onPart = { part in
            if case .end = part { handedOver = received.reader.takeRemainder().map { Array($0.readableBytesView) } ?? [] }
        }
        var bytes = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        bytes.writeBytes([0x81, 0x02, 0x68, 0x69])
        received.read(bytes)
        received.read(ByteBuffer(bytes: [0x88, 0x00]))
        #expect(received.events.count == 2)
        #expect(handedOver == [0x81, 0x02, 0x68, 0x69])
    }

    // MARK: The codec

    static func parts(_ channel: EmbeddedChannel) throws -> [ParsedEvent] {
        var events: [ParsedEvent] = []
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            events.append(.from(part))
        }
        return ParsedEvent.joiningBodies(events)
    }

    @Test func theCodecReadsAHEADResponseWithoutABodyAndWritesRequestsAsBytes() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP1ClientCodec())
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "h.test")
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/x", headers: headers)))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        guard case .byteBuffer(let request)? = try channel.readOutbound(as: IOData.self) else {
            Issue.record("no request bytes")
            return
        }
        #expect(String(buffer: request) == "HEAD /x HTTP/1.1\r\nHost: h.test\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
        let events = try Self.parts(channel)
        #expect(events.count == 4)  // two heads, two ends, no body
        #expect(!events.contains { if case .body = $0 { true } else { false } })
    }

    @Test func theCodecEndsAResponseAtCloseAndReportsOneCutShort() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP1ClientCodec())
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nuntil"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.pipeline.fireChannelInactive()
        try channel.throwIfErrorCaught()
        #expect(try Self.parts(channel).last == .end(trailers: nil))

        let cut = EmbeddedChannel()
        try cut.pipeline.syncOperations.addHandler(HTTP1ClientCodec())
        try cut.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try cut.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut"))
        cut.pipeline.fireChannelInactive()
        #expect(throws: HTTP1ParseError.truncated) { try cut.throwIfErrorCaught() }
    }
}
