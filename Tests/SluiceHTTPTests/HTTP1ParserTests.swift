import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SluiceHTTP

/// What a parser made of some bytes, comparable between feedings and with NIO's decoder.
enum ParsedEvent: Equatable, CustomStringConvertible {
    case request(method: String, uri: String, version: String, headers: [String])
    case response(status: UInt, reason: String, version: String, headers: [String])
    /// Body bytes, consecutive pieces joined.
    case body([UInt8])
    case end(trailers: [String]?)
    case error(HTTP1ParseError)

    var description: String {
        switch self {
        case .request(let method, let uri, let version, let headers): "\(method) \(uri) \(version) \(headers)"
        case .response(let status, let reason, let version, let headers): "\(version) \(status) \(reason) \(headers)"
        case .body(let bytes): "body(\(bytes.count): \(String(decoding: bytes.prefix(40), as: UTF8.self).debugDescription))"
        case .end(let trailers): "end(\(trailers.map { "\($0)" } ?? "nil"))"
        case .error(let error): "error(\(error))"
        }
    }

    static func lines(_ headers: HTTPHeaders) -> [String] {
        headers.map { "\($0.name): \($0.value)" }
    }

    static func from<Head>(_ part: HTTPPart<Head, ByteBuffer>) -> ParsedEvent {
        switch part {
        case .head(let head as HTTPRequestHead):
            .request(method: head.method.rawValue, uri: head.uri, version: head.version.text, headers: lines(head.headers))
        case .head(let head as HTTPResponseHead):
            .response(status: head.status.code, reason: head.status.reasonPhrase, version: head.version.text, headers: lines(head.headers))
        case .head:
            .error(.invalidStartLine)
        case .body(let buffer):
            .body(Array(buffer.readableBytesView))
        case .end(let trailers):
            .end(trailers: trailers.map(lines))
        }
    }

    /// Joins consecutive body pieces and drops empty ones, so that feedings that cut a body differently compare
    /// equal.
    static func joiningBodies(_ events: [ParsedEvent]) -> [ParsedEvent] {
        var joined: [ParsedEvent] = []
        var body: [UInt8] = []
        for event in events {
            if case .body(let bytes) = event {
                body += bytes
                continue
            }
            if !body.isEmpty { joined.append(.body(body)) }
            body = []
            joined.append(event)
        }
        if !body.isEmpty { joined.append(.body(body)) }
        return joined
    }
}

/// Feeds `HTTP1Parser`s the way a decoder does, in chunks a test chooses.
enum ParserFeed {
    /// The events `bytes` make, fed in chunks of `chunkSizes()` (all at once by default), then the input's end, and
    /// the bytes left in the buffer (after a protocol switch).
    static func run<Head: HTTP1ParsableHead>(
        _ bytes: [UInt8], as: Head.Type, methods: [HTTPMethod] = [], inputEnds: Bool = true,
        chunkSizes: () -> Int = { .max }
    ) -> (events: [ParsedEvent], rest: [UInt8]) {
        var parser = HTTP1Parser<Head>()
        for method in methods { parser.expectResponse(to: method) }
        var events: [ParsedEvent] = []
        var buffer = ByteBuffer()
        var fed = 0
        func drain(inputEnded: Bool) -> Bool {
            while true {
                do {
                    guard let part = try parser.next(from: &buffer, inputEnded: inputEnded) else { return true }
                    events.append(.from(part))
                } catch {
                    events.append(.error(error))
                    return false
                }
            }
        }
        while fed < bytes.count {
            let size = min(max(1, chunkSizes()), bytes.count - fed)
            buffer.writeBytes(bytes[fed..<(fed + size)])
            fed += size
            guard drain(inputEnded: false) else { return (ParsedEvent.joiningBodies(events), []) }
        }
        if inputEnds { _ = drain(inputEnded: true) }
        return (ParsedEvent.joiningBodies(events), Array(buffer.readableBytesView))
    }

    static func request(_ text: String, inputEnds: Bool = true) -> [ParsedEvent] {
        run(Array(text.utf8), as: HTTPRequestHead.self, inputEnds: inputEnds).events
    }

    static func response(_ text: String, to methods: [HTTPMethod] = [.GET], inputEnds: Bool = true) -> [ParsedEvent] {
        run(Array(text.utf8), as: HTTPResponseHead.self, methods: methods, inputEnds: inputEnds).events
    }
}

@Suite struct HTTP1ParserTests {
    // MARK: Requests

    @Test func aGetWithHeadersIsOneHeadAndAnEnd() {
        #expect(
            ParserFeed.request("GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nAccept:  */*  \r\nX-Empty:\r\n\r\n") == [
                .request(method: "GET", uri: "/a?b=c", version: "HTTP/1.1", headers: ["Host: example.test", "Accept: */*", "X-Empty: "]),
                .end(trailers: nil),
            ]
        )
    }

    @Test func aBodyIsReadByContentLengthAndPipelinedRequestsFollow() {
        let text = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.0\r\n\r\n"
        #expect(
            ParserFeed.request(text) == [
                .request(method: "POST", uri: "/p", version: "HTTP/1.1", headers: ["Content-Length: 5"]),
                .body(Array("hello".utf8)), .end(trailers: nil),
                .request(method: "GET", uri: "/next", version: "HTTP/1.0", headers: []), .end(trailers: nil),
            ]
        )
    }

    @Test func aContentLengthRepeatedAlikeIsOneLength() {
        // Repeats must be the same text (`3` and `03` are refused: malformedRequests).
        let text = "POST /p HTTP/1.1\r\nContent-Length: 3\r\ncontent-length:3\r\n\r\nabc"
        #expect(
            ParserFeed.request(text) == [
                .request(method: "POST", uri: "/p", version: "HTTP/1.1", headers: ["Content-Length: 3", "content-length: 3"]),
                .body(Array("abc".utf8)), .end(trailers: nil),
            ]
        )
    }

    @Test func aChunkedBodyWithExtensionsAndTrailers() {
        let text = "PUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1A ; x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 1\r\nX-Other: two\r\n\r\n"
        #expect(
            ParserFeed.request(text) == [
                .request(method: "PUT", uri: "/c", version: "HTTP/1.1", headers: ["Transfer-Encoding: gzip, Chunked"]),
                .body(Array("helloabcdefghijklmnopqrstuvwxyz".utf8)),
                .end(trailers: ["X-Checksum: 1", "X-Other: two"]),
            ]
        )
    }

    @Test func emptyLinesBeforeARequestAreSkipped() {
        #expect(
            ParserFeed.request("\r\n\r\nDELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == [
                .request(method: "DELETE", uri: "/x", version: "HTTP/1.1", headers: ["Content-Length: 0"]), .end(trailers: nil),
            ]
        )
    }

    @Test func anyMethodTokenAndAUTF8TargetAreAccepted() {
        #expect(
            ParserFeed.request("BREW /caf\u{e9} HTTP/1.1\r\n\r\n") == [
                .request(method: "BREW", uri: "/caf\u{e9}", version: "HTTP/1.1", headers: []), .end(trailers: nil),
            ]
        )
    }

    @Test func connectStopsTheParserAndLeavesTheTunnelBytes() {
        let bytes = Array("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n\u{16}\u{3}\u{1}GET / HTTP/1.1\r\n".utf8)
        let (events, rest) = ParserFeed.run(bytes, as: HTTPRequestHead.self)
        #expect(
            events == [
                .request(method: "CONNECT", uri: "example.test:443", version: "HTTP/1.1", headers: ["Host: example.test:443"]),
                .end(trailers: nil),
            ]
        )
        #expect(rest == Array("\u{16}\u{3}\u{1}GET / HTTP/1.1\r\n".utf8))
    }

    @Test func aWebSocketOfferDoesNotStopTheParser() {
        let text = "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
        #expect(ParserFeed.request(text).count == 4)
    }

    // MARK: Responses

    @Test func aResponseToHEADHasNoBodyWhateverItsLength() {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        #expect(
            ParserFeed.response(text, to: [.HEAD, .GET]) == [
                .response(status: 200, reason: "OK", version: "HTTP/1.1", headers: ["Content-Length: 10"]), .end(trailers: nil),
                .response(status: 200, reason: "OK", version: "HTTP/1.1", headers: ["Content-Length: 2"]),
                .body(Array("hi".utf8)), .end(trailers: nil),
            ]
        )
    }

    @Test func noBodyFor204And304() {
        let text = "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nHTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(ParserFeed.response(text, to: [.GET, .GET]).filter { if case .end = $0 { true } else { false } }.count == 2)
        #expect(!ParserFeed.response(text, to: [.GET, .GET]).contains { if case .body = $0 { true } else { false } })
    }

    @Test func informationalResponsesAreHeadsWithoutEnds() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        #expect(
            ParserFeed.response(text, to: [.POST]) == [
                .response(status: 100, reason: "Continue", version: "HTTP/1.1", headers: []),
                .response(status: 103, reason: "Early Hints", version: "HTTP/1.1", headers: ["Link: </s.css>"]),
                .response(status: 201, reason: "Created", version: "HTTP/1.1", headers: ["Content-Length: 0"]),
                .end(trailers: nil),
            ]
        )
    }

    @Test func switchingProtocolsStopsTheParserAndLeavesTheFrames() {
        let bytes = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".utf8) + [0x81, 0x02] + Array("hi".utf8)
        let (events, rest) = ParserFeed.run(bytes, as: HTTPResponseHead.self, methods: [.GET])
        #expect(events.count == 2)
        #expect(rest == [0x81, 0x02] + Array("hi".utf8))
    }

    @Test func a2xxToCONNECTStopsTheParser() {
        let bytes = Array("HTTP/1.1 200 Connection established\r\n\r\nraw".utf8)
        let (events, rest) = ParserFeed.run(bytes, as: HTTPResponseHead.self, methods: [.CONNECT])
        #expect(events == [.response(status: 200, reason: "OK", version: "HTTP/1.1", headers: []), .end(trailers: nil)])
        #expect(rest == Array("raw".utf8))
    }

    @Test func aResponseWithoutFramingEndsAtClose() {
        let text = "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it"
        #expect(ParserFeed.response(text, inputEnds: false).last == .body(Array("all of it".utf8)))
        #expect(ParserFeed.response(text).last == .end(trailers: nil))
        // A coding other than chunked last: the body ends at close too (RFC 9112 §6.3 item 4).
        #expect(ParserFeed.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz").suffix(2) == [.body(Array("zz".utf8)), .end(trailers: nil)])
    }

    @Test func reasonPhrasesOfUnknownCodesAreKeptAndMayBeMissing() {
        #expect(ParserFeed.response("HTTP/1.1 299 Fine Thanks\r\nContent-Length: 0\r\n\r\n").first == .response(status: 299, reason: "Fine Thanks", version: "HTTP/1.1", headers: ["Content-Length: 0"]))
        #expect(ParserFeed.response("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n").first == .response(status: 404, reason: "Not Found", version: "HTTP/1.1", headers: ["Content-Length: 0"]))
    }

    // MARK: Refused

    /// Each of these must be refused with its error, whether fed whole or a byte at a time.
    static let malformedRequests: [(String, HTTP1ParseError)] = [
        ("GET / HTTP/1.1\nHost: x\n\n", .invalidLineEnding),
        ("GET / HTTP/1.1\r\nHost: x\n\r\n", .invalidLineEnding),
        ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\n: x\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", .invalidField),
        ("GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", .obsoleteLineFolding),
        ("GET / HTTP/1.1\r\nX-A: nul\u{0}\r\n\r\n", .invalidField),
        ("G(T / HTTP/1.1\r\n\r\n", .invalidMethod),
        (" GET / HTTP/1.1\r\n\r\n", .invalidMethod),
        ("GET  / HTTP/1.1\r\n\r\n", .invalidTarget),
        ("GET /a b HTTP/1.1\r\n\r\n", .invalidTarget),
        ("GET / HTTP/2.0\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.10\r\n\r\n", .invalidVersion),
        ("GET / http/1.1\r\n\r\n", .invalidVersion),
        ("GET\r\n\r\n", .invalidStartLine),
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingFraming),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingFraming),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .conflictingFraming),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingFraming),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferCoding),
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .invalidContentLength),
        // Found by fuzzing (http1-request): one number, two texts, both forwarded as they came.
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length:03\r\n\r\nabc", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 03\r\nContent-Length: 3\r\n\r\nabc", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .invalidChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY", .invalidChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n", .invalidChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .invalidChunk),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", .invalidChunk),
        // A chunk line over the line limit is a bad chunk (400), not headers too large (431).
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;" + String(repeating: "x", count: 16 * 1024) + "\r\n", .invalidChunk),
        // Found by fuzzing (http1-chunked): a line over the limit that ends in a bare LF is over the limit, read
        // whole or in pieces (it was "invalid line ending" whole, the limit's error in pieces).
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;" + String(repeating: "x", count: 16 * 1024) + "\n\r\n", .invalidChunk),
        ("GET / HTTP/1.1\r\nX-Long: " + String(repeating: "x", count: 16 * 1024) + "\n\r\n", .headTooLarge),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", .truncated),
        ("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel", .truncated),
        ("GET / HTTP/1.1\r\nHost: x\r\n", .truncated),
    ]

    /// `text` must be refused with `expected`, the same whether it is fed whole or a byte at a time.
    static func checkRefused<Head: HTTP1ParsableHead>(_ text: String, as: Head.Type, _ expected: HTTP1ParseError) {
        let bytes = Array(text.utf8)
        let whole = ParserFeed.run(bytes, as: Head.self, methods: [.GET]).events
        let byByte = ParserFeed.run(bytes, as: Head.self, methods: [.GET], chunkSizes: { 1 }).events
        #expect(whole.last == .error(expected), "\(text.debugDescription): \(whole)")
        #expect(byByte == whole)
    }

    @Test(arguments: malformedRequests)
    func aMalformedRequestIsRefusedWholeOrByteByByte(_ text: String, _ expected: HTTP1ParseError) {
        Self.checkRefused(text, as: HTTPRequestHead.self, expected)
    }

    static let malformedResponses: [(String, HTTP1ParseError)] = [
        ("HTTP/1.1 2000 OK\r\n\r\n", .invalidStatus),
        ("HTTP/1.1 20 OK\r\n\r\n", .invalidStatus),
        ("HTTP/1.1 099 Low\r\n\r\n", .invalidStatus),
        ("HTTP/1.1 200 O\u{7f}K\r\n\r\n", .invalidStatus),
        ("HTTP/1.1  200 OK\r\n\r\n", .invalidStatus),
        ("HTTP/3.0 200 OK\r\n\r\n", .invalidVersion),
        ("ICY 200 OK\r\n\r\n", .invalidStartLine),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingFraming),
        ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .conflictingFraming),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", .truncated),
        ("HTTP/1.1 200 OK\r\nX: a\r\n\tfolded\r\n\r\n", .obsoleteLineFolding),
    ]

    @Test(arguments: malformedResponses)
    func aMalformedResponseIsRefusedWholeOrByteByByte(_ text: String, _ expected: HTTP1ParseError) {
        Self.checkRefused(text, as: HTTPResponseHead.self, expected)
    }

    @Test func headsOverTheLimitsAre431sEvenBeforeTheyEnd() {
        let limits = HTTP1Limits()
        let manyFields = "GET / HTTP/1.1\r\n" + String(repeating: "X-A: 1\r\n", count: limits.maxFields + 1) + "\r\n"
        let longLine = "GET / HTTP/1.1\r\nX-Long: " + String(repeating: "v", count: limits.maxLineBytes) + "\r\n\r\n"
        let endless = "GET / HTTP/1.1\r\n" + String(repeating: "X-Field: " + String(repeating: "v", count: 1000) + "\r\n", count: 66)
        let longUnfinishedLine = "GET / HTTP/1.1\r\nX-Long: " + String(repeating: "v", count: limits.maxLineBytes)
        for text in [manyFields, longLine, endless, longUnfinishedLine] {
            #expect(ParserFeed.request(text, inputEnds: false).last == .error(.headTooLarge))
            let byByte = ParserFeed.run(Array(text.utf8), as: HTTPRequestHead.self, inputEnds: false, chunkSizes: { 7 }).events
            #expect(byByte.last == .error(.headTooLarge))
        }
        // Exactly at the limits is fine.
        let atLimit = "GET / HTTP/1.1\r\n" + String(repeating: "X-A: 1\r\n", count: limits.maxFields) + "\r\n"
        #expect(ParserFeed.request(atLimit).last == .end(trailers: nil))
        let longestLine = "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: limits.maxLineBytes - 3) + "\r\n\r\n"
        #expect(ParserFeed.request(longestLine).last == .end(trailers: nil))
    }

    @Test func nothingIsReadOnceItFailed() throws {
        var parser = HTTP1Parser<HTTPRequestHead>()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nBad Field: x\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        #expect(throws: HTTP1ParseError.invalidField) { try parser.next(from: &buffer) }
        #expect(try parser.next(from: &buffer) == nil)
    }
}
