import NIOCore
import NIOEmbedded
import NIOHTTP1
import SluiceTestSupport
import Testing

@testable import SluiceHTTP

/// `HTTP1Parser` on random input: valid message streams must read exactly as NIO's decoder reads them, however
/// the bytes are cut; mutated streams must give the same outcome whole, in random pieces and byte by byte, never
/// crash, and where both parsers accept one they must agree on every message in it (two readers that split a
/// stream differently are what request smuggling is made of).
@Suite(.ownThread) struct HTTP1ParserFuzzTests {
    // MARK: Valid streams

    static let methods: [HTTPMethod] = [.GET, .POST, .PUT, .DELETE, .PATCH, .OPTIONS, .HEAD, .PROPFIND, .MKCOL]
    static let targets = ["/", "/a/b?c=d&e=f", "/x%20y", "http://h.test:8080/p?q=1", "/~user/!$&'()*+,;=:@"]
    static let names = ["Host", "Accept", "User-Agent", "X-Request-Id", "Cookie", "cache-control", "X_Under", "X-!#$%&'*+.^_`|~"]
    static let values = [
        "", "a", "text/html; q=0.9", "spaced  inside", "  leading", "trailing  ", "\ttabbed\t", "caf\u{e9}", "a\"quoted\"",
        String(repeating: "long-", count: 60),
    ]
    static let statuses = [200, 201, 204, 206, 301, 304, 404, 500, 299, 100, 103]

    /// A stream of one to three messages and what goes with it: the methods responses answer.
    struct Stream {
        var bytes: [UInt8] = []
        var methods: [HTTPMethod] = []
    }

    static func fields(_ generator: inout SplitMix64) -> String {
        (0..<Int.random(in: 0...6, using: &generator)).map { _ in
            "\(names.randomElement(using: &generator)!):\([" ", "", "  "].randomElement(using: &generator)!)\(values.randomElement(using: &generator)!)\r\n"
        }.joined()
    }

    /// Framing fields and the body bytes: by length, chunked (pieces of random size, extensions, trailers) or none.
    static func body(_ generator: inout SplitMix64, version: String, allowsUntilClose: Bool) -> (fields: String, bytes: String, untilClose: Bool) {
        let content = String((0..<[0, 1, 5, 100, 5000].randomElement(using: &generator)!).map { _ in "abcxyz0129-\r\n".randomElement(using: &generator)! })
        switch Int.random(in: 0..<(allowsUntilClose ? 4 : 3), using: &generator) {
        case 0:
            return ("Content-Length: \(content.utf8.count)\r\n", content, false)
        case 1 where version == "HTTP/1.1":
            var chunked = ""
            var rest = Substring(content)
            while !rest.isEmpty {
                let size = min(rest.count, Int.random(in: 1...2000, using: &generator))
                let hex = String(rest.prefix(size).utf8.count, radix: 16, uppercase: Bool.random(using: &generator))
                chunked += hex + (Bool.random(using: &generator) ? ";ext=1" : "") + "\r\n" + rest.prefix(size) + "\r\n"
                rest = rest.dropFirst(size)
            }
            chunked += "0\r\n" + (Bool.random(using: &generator) ? "X-Trailer: t\r\n" : "") + "\r\n"
            return ("Transfer-Encoding: chunked\r\n", chunked, false)
        case 3:
            return ("", content, true)
        default:
            return ("", "", false)
        }
    }

    /// An HTTP/1.0 message is the connection's last unless it says otherwise (llhttp refuses anything after it).
    static func keepAlive(_ version: String, last: Bool) -> String {
        version == "HTTP/1.0" && !last ? "Connection: keep-alive\r\n" : ""
    }

    static func requests(_ generator: inout SplitMix64) -> Stream {
        var text = ""
        let count = Int.random(in: 1...3, using: &generator)
        for index in 0..<count {
            let version = Bool.random(using: &generator) ? "HTTP/1.1" : "HTTP/1.0"
            let method = methods.randomElement(using: &generator)!
            let (framing, body, _) = Self.body(&generator, version: version, allowsUntilClose: false)
            text += "\(method.rawValue) \(targets.randomElement(using: &generator)!) \(version)\r\n" + fields(&generator)
                + keepAlive(version, last: index == count - 1) + framing + "\r\n" + body
        }
        return Stream(bytes: Array(text.utf8))
    }

    static func responses(_ generator: inout SplitMix64) -> Stream {
        var stream = Stream()
        var text = ""
        let count = Int.random(in: 1...3, using: &generator)
        for index in 0..<count {
            let method: HTTPMethod = [.GET, .GET, .POST, .HEAD].randomElement(using: &generator)!
            stream.methods.append(method)
            var status = statuses.randomElement(using: &generator)!
            if status < 200 {
                text += "HTTP/1.1 \(status) Info\r\n" + fields(&generator) + "\r\n"
                status = 200
            }
            let version = Bool.random(using: &generator) ? "HTTP/1.1" : "HTTP/1.0"
            let (framing, body, untilClose) = Self.body(&generator, version: version, allowsUntilClose: index == count - 1)
            let bodiless = method == .HEAD || status == 204 || status == 304
            // Without framing a response ends at close, so only the last one may lack it.
            let framingFields = framing.isEmpty && !untilClose && !bodiless ? "Content-Length: 0\r\n" : framing
            text += "\(version) \(status) Some Reason\r\n" + fields(&generator) + keepAlive(version, last: index == count - 1)
                + framingFields + "\r\n" + (bodiless ? "" : body)
            if untilClose && !bodiless { break }
        }
        stream.bytes = Array(text.utf8)
        return stream
    }

    // MARK: Feeding

    static func ours<Head: HTTP1ParsableHead>(_ stream: Stream, as: Head.Type, chunks: inout SplitMix64?) -> [ParsedEvent] {
        var generator = chunks
        defer { chunks = generator }
        return ParserFeed.run(stream.bytes, as: Head.self, methods: stream.methods) {
            guard var rng = generator else { return .max }
            defer { generator = rng }
            return [1, 1, 2, 3, 7, 64, 1000].randomElement(using: &rng)!
        }.events
    }

    /// Collects what a NIO decoder passes on, and whether it failed.
    final class Collector<Head: Equatable>: ChannelInboundHandler {
        typealias InboundIn = HTTPPart<Head, ByteBuffer>
        var events: [ParsedEvent] = []
        var failed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            events.append(.from(unwrapInboundIn(data)))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            failed = true
        }
    }

    /// NIO's reading of the stream (llhttp), then its end; nil when NIO refuses it.
    static func nio(_ stream: Stream, requests: Bool) throws -> [ParsedEvent]? {
        let channel = EmbeddedChannel()
        let events: () -> [ParsedEvent]
        let failed: () -> Bool
        if requests {
            let collector = Collector<HTTPRequestHead>()
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try channel.pipeline.syncOperations.addHandler(collector)
            (events, failed) = ({ collector.events }, { collector.failed })
        } else {
            let collector = Collector<HTTPResponseHead>()
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .forward))
            )
            try channel.pipeline.syncOperations.addHandler(collector)
            for method in stream.methods {
                try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
            }
            (events, failed) = ({ collector.events }, { collector.failed })
        }
        try channel.writeInbound(ByteBuffer(bytes: stream.bytes))
        channel.pipeline.fireChannelInactive()
        return failed() ? nil : ParsedEvent.joiningBodies(events())
    }

    /// What may differ between the two readers without changing any message: NIO keeps no reason phrase but its
    /// own, and llhttp keeps a field value's trailing tab (not part of the value, RFC 9110 §5.5).
    static func normalized(_ events: [ParsedEvent]) -> [ParsedEvent] {
        func trimmed(_ fields: [String]) -> [String] {
            fields.map { String($0.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
        }
        return events.map {
            switch $0 {
            case .response(let status, _, let version, let headers):
                .response(status: status, reason: "", version: version, headers: trimmed(headers))
            case .request(let method, let uri, let version, let headers):
                .request(method: method, uri: uri, version: version, headers: trimmed(headers))
            case .end(let trailers?):
                .end(trailers: trimmed(trailers))
            default:
                $0
            }
        }
    }

    /// 1,000 random valid streams from `make`: ours whole, ours cut at random, and NIO's must read the same.
    static func checkValid<Head: HTTP1ParsableHead>(_: Head.Type, seed: UInt64, make: (inout SplitMix64) -> Stream) throws {
        var generator = SplitMix64(seed: seed)
        for round in 0..<1000 {
            let stream = make(&generator)
            var whole: SplitMix64? = nil
            var pieces: SplitMix64? = SplitMix64(seed: UInt64(round))
            let ours = Self.normalized(Self.ours(stream, as: Head.self, chunks: &whole))
            let cut = Self.normalized(Self.ours(stream, as: Head.self, chunks: &pieces))
            let theirs = try Self.nio(stream, requests: Head.self == HTTPRequestHead.self).map(Self.normalized)
            let text = String(decoding: stream.bytes.prefix(300), as: UTF8.self).debugDescription
            try #require(ours == theirs, "round \(round) \(stream.methods): \(text)\nours: \(ours)\nNIO:  \(theirs.map { "\($0)" } ?? "refused")")
            try #require(cut == ours, "round \(round): cut differently: \(cut)")
        }
    }

    @Test func validRequestStreamsReadAsNIOReadsThemHoweverTheyAreCut() throws {
        try Self.checkValid(HTTPRequestHead.self, seed: 0x5EED_0001, make: Self.requests)
    }

    @Test func validResponseStreamsReadAsNIOReadsThemHoweverTheyAreCut() throws {
        try Self.checkValid(HTTPResponseHead.self, seed: 0x5EED_0002, make: Self.responses)
    }

    // MARK: Mutated streams

    static let interesting: [UInt8] = [0x00, 0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x3B, 0x2C, 0x30, 0x66, 0x7F, 0x80, 0xFF, 0x41]

    static func mutate(_ bytes: [UInt8], _ generator: inout SplitMix64) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
            let index = Int.random(in: 0..<bytes.count, using: &generator)
            let byte = interesting.randomElement(using: &generator)!
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: bytes[index] = byte
            case 1: bytes.insert(byte, at: index)
            case 2: bytes.remove(at: index)
            default:
                // Repeat a stretch: duplicated lines, fields and chunk sizes.
                let end = min(bytes.count, index + Int.random(in: 1...40, using: &generator))
                bytes.insert(contentsOf: bytes[index..<end], at: index)
            }
        }
        return bytes
    }

    /// 2,000 streams from `make`, each mutated: whole, random pieces and byte by byte give one outcome, and where
    /// NIO also accepts one, it is NIO's. The mutations must reach the refusals (a parser that accepted anything
    /// would pass the rest).
    static func checkMutated<Head: HTTP1ParsableHead>(_: Head.Type, seed: UInt64, make: (inout SplitMix64) -> Stream) throws {
        var generator = SplitMix64(seed: seed)
        var refusals = 0
        for round in 0..<2000 {
            var stream = make(&generator)
            stream.bytes = Self.mutate(stream.bytes, &generator)
            var whole: SplitMix64? = nil
            var pieces: SplitMix64? = SplitMix64(seed: UInt64(round) &* 31)
            let ours = Self.normalized(Self.ours(stream, as: Head.self, chunks: &whole))
            let cut = Self.normalized(Self.ours(stream, as: Head.self, chunks: &pieces))
            let text = String(decoding: stream.bytes.prefix(400), as: UTF8.self).debugDescription
            try #require(cut == ours, "round \(round): \(text)\nwhole: \(ours)\ncut:   \(cut)")
            if stream.bytes.count <= 1500 {  // longer ones are cut into pieces of one byte often enough above
                let byByte = Self.normalized(ParserFeed.run(stream.bytes, as: Head.self, methods: stream.methods, chunkSizes: { 1 }).events)
                try #require(byByte == ours, "round \(round): \(text)\nwhole:   \(ours)\nby byte: \(byByte)")
            }
            if ours.contains(where: { if case .error = $0 { true } else { false } }) {
                refusals += 1
                continue
            }
            guard let theirs = try Self.nio(stream, requests: Head.self == HTTPRequestHead.self).map(Self.normalized) else { continue }
            try #require(ours == theirs, "round \(round): both accept, but read differently: \(text)\nours: \(ours)\nNIO:  \(theirs)")
        }
        #expect(refusals > 700)
    }

    @Test func mutatedRequestStreamsAreReadOneWayOrRefused() throws {
        try Self.checkMutated(HTTPRequestHead.self, seed: 0x5EED_0003, make: Self.requests)
    }

    @Test func mutatedResponseStreamsAreReadOneWayOrRefused() throws {
        try Self.checkMutated(HTTPResponseHead.self, seed: 0x5EED_0004, make: Self.responses)
    }
}
