import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SluiceHTTP

/// The decoder handlers around `HTTP1Parser`, in an `EmbeddedChannel`: parts in order, the bytes behind a protocol
/// switch handed on when the decoder leaves, one error and then silence, the input's end.
@Suite struct HTTP1DecoderTests {
    /// The parts that reached the end of the pipeline, as events (EmbeddedChannel drops an item read as the wrong
    /// type: raw bytes behind parts are read with `raw`, after `count` parts).
    static func parts<Head: Equatable>(_ channel: EmbeddedChannel, _: Head.Type, count: Int = .max) throws -> [ParsedEvent] {
        var events: [ParsedEvent] = []
        while events.count < count, let part = try channel.readInbound(as: HTTPPart<Head, ByteBuffer>.self) {
            events.append(.from(part))
        }
        return ParsedEvent.joiningBodies(events)
    }

    static func raw(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var raw: [UInt8] = []
        while let bytes = try channel.readInbound(as: ByteBuffer.self) {
            raw += Array(bytes.readableBytesView)
        }
        return raw
    }

    /// Passes a response's parts on and, at its end, takes itself and the codec out of the pipeline, as the proxy
    /// does after a `101`.
    final class RemovesCodecAtEnd: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        let codec: HTTP1ClientCodec
        init(codec: HTTP1ClientCodec) { self.codec = codec }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
            guard case .end = unwrapInboundIn(data) else { return }
            let pipeline = context.pipeline
            pipeline.syncOperations.removeHandler(context: context, promise: nil)
            pipeline.syncOperations.removeHandler(codec, promise: nil)
        }
    }

    @Test func aClientHelloBehindCONNECTIsHandedOnWhenTheDecoderLeaves() throws {
        let channel = EmbeddedChannel()
        let decoder = HTTP1Decoder<HTTPRequestHead>()
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.writeInbound(ByteBuffer(string: "CONNECT h.test:443 HTTP/1.1\r\nHost: h.test:443\r\n\r\n\u{16}\u{3}"))
        try channel.writeInbound(ByteBuffer(string: "more"))
        #expect(try Self.parts(channel, HTTPRequestHead.self).count == 2)
        try channel.pipeline.syncOperations.removeHandler(decoder).wait()
        try channel.writeInbound(ByteBuffer(string: "after"))
        #expect(try Self.raw(channel) == Array("\u{16}\u{3}moreafter".utf8))
    }

    @Test func aParseErrorIsReportedOnceAndNothingIsReadAfterIt() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP1Decoder<HTTPRequestHead>())
        #expect(throws: HTTP1ParseError.invalidField) {
            try channel.writeInbound(ByteBuffer(string: "GET /ok HTTP/1.1\r\n\r\nGET /bad HTTP/1.1\r\nBad Field: 1\r\n\r\n"))
        }
        try channel.writeInbound(ByteBuffer(string: "GET /after HTTP/1.1\r\n\r\n"))
        channel.pipeline.fireChannelInactive()
        try channel.throwIfErrorCaught()  // no second error
        #expect(try Self.parts(channel, HTTPRequestHead.self).count == 2)
    }

    @Test func theEndOfInputEndsABodyReadUntilCloseOrCutsAMessageShort() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP1ClientCodec(forwardsRemainder: true))
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nuntil"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.pipeline.fireChannelInactive()  // the end is seen once
        try channel.throwIfErrorCaught()
        #expect(
            try Self.parts(channel, HTTPResponseHead.self) == [
                .response(status: 200, reason: "OK", version: "HTTP/1.1", headers: []), .body(Array("until".utf8)), .end(trailers: nil),
            ]
        )

        let cut = EmbeddedChannel()
        try cut.pipeline.syncOperations.addHandler(HTTP1ClientCodec(forwardsRemainder: true))
        try cut.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        try cut.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut"))
        cut.pipeline.fireChannelInactive()
        #expect(throws: HTTP1ParseError.truncated) { try cut.throwIfErrorCaught() }
    }

    @Test func theCodecReadsAHEADResponseWithoutABodyAndWritesRequestsAsBytes() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP1ClientCodec(forwardsRemainder: true))
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "h.test")
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/x", headers: headers)))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        let written = try channel.readOutbound(as: IOData.self)
        guard case .byteBuffer(let request)? = written else {
            Issue.record("no request bytes")
            return
        }
        #expect(String(buffer: request) == "HEAD /x HTTP/1.1\r\nHost: h.test\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
        let events = try Self.parts(channel, HTTPResponseHead.self)
        #expect(events.count == 4)  // two heads, two ends, no body
        #expect(!events.contains { if case .body = $0 { true } else { false } })
    }

    @Test func framesAfterA101AreHandedOnOnceWhenTheCodecIsRemovedDuringTheEnd() throws {
        let channel = EmbeddedChannel()
        let codec = HTTP1ClientCodec(forwardsRemainder: true)
        try channel.pipeline.syncOperations.addHandlers([codec, RemovesCodecAtEnd(codec: codec)])
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws")))
        var bytes = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        bytes.writeBytes([0x81, 0x02, 0x68, 0x69])
        try channel.writeInbound(bytes)
        try channel.writeInbound(ByteBuffer(bytes: [0x88, 0x00]))
        #expect(try Self.parts(channel, HTTPResponseHead.self, count: 2).count == 2)
        #expect(try Self.raw(channel) == [0x81, 0x02, 0x68, 0x69, 0x88, 0x00])
    }
}
