import Foundation
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

/// Flows written with the StoreWriter and read back, exactly the path `sluice export` takes.
struct ExportFixture {
    let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-export-test-\(UUID().uuidString)")
    let start = Date(timeIntervalSince1970: 1_796_080_701.5)
    private(set) var events: [ProxyEvent] = []

    /// One exchange. `keptUp` / `keptDown` cut the stored body as the recording limits would.
    mutating func exchange(
        _ id: Int64, kind: FlowKind = .http, method: String = "GET", url: String, requestHeaders: [HeaderField] = [],
        requestBody: Data = Data(), keptUp: Int? = nil, status: Int? = 200, reason: String = "OK",
        responseHeaders: [HeaderField] = [], responseBody: Data = Data(), keptDown: Int? = nil,
        timings: HTTPTimings = HTTPTimings(connect: 1.5, tls: 2.25, firstByte: 10), error: String? = nil,
        webSocket: [(Direction, MessageKind, Data)] = [], server: Endpoint = Endpoint(host: "10.0.0.5", port: 80)
    ) {
        let flowID = FlowID(id)
        let opened = start.addingTimeInterval(Double(id))
        var sequence: Int64 = 0
        func message(_ direction: Direction, _ kind: MessageKind, _ bytes: Data, kept: Int?, at offset: Double) {
            events.append(
                .message(
                    Message(
                        flowID: flowID, sequence: sequence, direction: direction,
                        time: opened.addingTimeInterval(offset),
                        size: bytes.count, payload: bytes.prefix(kept ?? bytes.count), kind: kind
                    )
                )
            )
            sequence += 1
        }
        events.append(
            .flowOpened(
                FlowOpened(
                    flowID: flowID, kind: kind, listener: "http://127.0.0.1:8080",
                    client: Endpoint(host: "127.0.0.1", port: 50000 + Int(id)), server: server, time: opened
                )
            )
        )
        events.append(
            .httpRequest(
                HTTPRequestStarted(
                    flowID: flowID, time: opened.addingTimeInterval(0.001), method: method, url: url,
                    version: "HTTP/1.1",
                    headers: requestHeaders
                )
            )
        )
        if !requestBody.isEmpty { message(.up, .body, requestBody, kept: keptUp, at: 0.002) }
        if let status {
            events.append(
                .httpResponse(
                    HTTPResponseStarted(
                        flowID: flowID, time: opened.addingTimeInterval(0.020), status: status, reason: reason,
                        version: "HTTP/1.1", headers: responseHeaders, timings: timings
                    )
                )
            )
        }
        if !responseBody.isEmpty { message(.down, .body, responseBody, kept: keptDown, at: 0.030) }
        for (index, (direction, messageKind, bytes)) in webSocket.enumerated() {
            message(direction, messageKind, bytes, kept: nil, at: 1 + Double(index))
        }
        if let error {
            events.append(.flowError(FlowError(flowID: flowID, phase: .connect, time: opened, message: error)))
        }
        let frames = webSocket.reduce(0) { $0 + $1.2.count }
        events.append(
            .flowClosed(
                FlowClosed(
                    flowID: flowID, time: opened.addingTimeInterval(0.050),
                    bytesUp: Int64(kind == .websocket ? frames : requestBody.count),
                    bytesDown: Int64(kind == .websocket ? frames : responseBody.count),
                    state: error == nil ? .closed : .error, error: error.map { "connect: \($0)" },
                    payloadTruncated: keptUp != nil || keptDown != nil
                )
            )
        )
    }

    mutating func tcp(_ id: Int64) {
        let flowID = FlowID(id)
        let client = Endpoint(host: "127.0.0.1", port: 40000)
        events.append(
            .flowOpened(
                FlowOpened(
                    flowID: flowID, kind: .tcp, listener: "tcp://127.0.0.1:9000=>10.0.0.5:7000", client: client,
                    server: Endpoint(host: "10.0.0.5", port: 7000), time: start
                )
            )
        )
        events.append(
            .flowClosed(
                FlowClosed(
                    flowID: flowID, time: start, bytesUp: 0, bytesDown: 0, state: .closed, error: nil,
                    payloadTruncated: false
                )
            )
        )
    }

    /// Writes the events and reads every flow back with its messages and errors.
    func load() throws -> (store: Store, items: [(flow: StoredFlow, messages: [StoredMessage], errors: [StoredError])])
    {
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in events { writer.receive(event) }
        writer.close()
        let store = try Store(directory: directory)
        let items = try store.flows(limit: 1000).map { flow in
            (flow: flow, messages: try store.messages(of: flow.id), errors: try store.errors(of: flow.id))
        }
        return (store, items)
    }
}

/// gzip's `{"message":"hello, gzip world"}`, made by Python's gzip module: an encoder independent of the decoder.
let gzippedJSON = Data([
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0xca, 0x4d, 0x2d, 0x2e, 0x4e, 0x4c, 0x4f,
    0x55, 0xb2, 0x52, 0xca, 0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0x48, 0xaf, 0xca, 0x2c, 0x50, 0x28, 0xcf, 0x2f, 0xca,
    0x49, 0x51, 0xaa, 0x05, 0x00, 0xd8, 0xef, 0x9a, 0x9f, 0x1f, 0x00, 0x00, 0x00,
])
let plainJSON = #"{"message":"hello, gzip world"}"#

@Suite struct HARExportTests {
    private let har = HARExport(creatorVersion: "9.9.9")

    private func document(_ fixture: ExportFixture) throws -> [String: Any] {
        let data = har.document(try fixture.load().items)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(object["log"] as? [String: Any])
    }

    private func entries(_ fixture: ExportFixture) throws -> [[String: Any]] {
        try #require(try document(fixture)["entries"] as? [[String: Any]])
    }

    private func object(_ value: Any?, _ key: String) throws -> [String: Any] {
        try #require((value as? [String: Any])?[key] as? [String: Any], "\(key) is an object")
    }

    /// A JSON number, not a boolean (Foundation's NSNumber answers `is Bool` for 0 and 1 too).
    private func number(_ value: Any?) -> Double? {
        guard let number = value as? NSNumber, !String(describing: type(of: number)).contains("Boolean") else {
            return nil
        }
        return number.doubleValue
    }

    /// Every field PROTOCOLS.md §8 requires, with its JSON type.
    private func expectHARShape(_ entry: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        func expectString(_ object: [String: Any], _ key: String) {
            #expect(object[key] is String, "\(key) is a string", sourceLocation: sourceLocation)
        }
        func expectNumber(_ object: [String: Any], _ key: String) {
            #expect(number(object[key]) != nil, "\(key) is a number", sourceLocation: sourceLocation)
        }
        func expectPairs(_ object: [String: Any], _ key: String) {
            let list = object[key] as? [[String: Any]]
            #expect(list != nil, "\(key) is a list of objects", sourceLocation: sourceLocation)
            for pair in list ?? [] {
                #expect(
                    pair["name"] is String && pair["value"] is String, "\(key): \(pair)", sourceLocation: sourceLocation
                )
            }
        }
        let started = try #require(entry["startedDateTime"] as? String)
        #expect(started.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, sourceLocation: sourceLocation)
        expectNumber(entry, "time")
        let request = try object(entry, "request")
        for key in ["method", "url", "httpVersion"] { expectString(request, key) }
        for key in ["cookies", "headers", "queryString"] { expectPairs(request, key) }
        for key in ["headersSize", "bodySize"] { expectNumber(request, key) }
        if let postData = request["postData"] {
            let postData = try #require(postData as? [String: Any])
            expectString(postData, "mimeType")
            expectString(postData, "text")
            #expect(postData["encoding"] == nil, "HAR 1.2 postData has no encoding", sourceLocation: sourceLocation)
        }
        let response = try object(entry, "response")
        for key in ["statusText", "httpVersion", "redirectURL"] { expectString(response, key) }
        for key in ["status", "headersSize", "bodySize"] { expectNumber(response, key) }
        for key in ["cookies", "headers"] { expectPairs(response, key) }
        let content = try object(response, "content")
        expectNumber(content, "size")
        expectString(content, "mimeType")
        #expect(entry["cache"] is [String: Any], sourceLocation: sourceLocation)
        let timings = try object(entry, "timings")
        var sum = 0.0
        for key in ["blocked", "dns", "connect", "send", "wait", "receive"] {
            let value = try #require(number(timings[key]), "timings.\(key)")
            if ["send", "wait", "receive"].contains(key) {
                #expect(value >= 0, "timings.\(key) is required non-negative", sourceLocation: sourceLocation)
            }
            if value != -1 { sum += value }
        }
        #expect(number(timings["ssl"]) != nil, sourceLocation: sourceLocation)
        // ssl is part of connect (HAR 1.2), so `time` sums the others.
        #expect(
            abs((number(entry["time"]) ?? -1) - sum) < 0.001, "time = sum of timings", sourceLocation: sourceLocation)
    }

    @Test func everyEntryHasEveryRequiredFieldAndNonHTTPFlowsAreLeftOut() throws {
        var fixture = ExportFixture()
        fixture.exchange(
            1, url: "http://api.test/v1/items?id=7", requestHeaders: [HeaderField(name: "Host", value: "api.test")],
            responseHeaders: [HeaderField(name: "Content-Type", value: "application/json")],
            responseBody: Data("{}".utf8)
        )
        fixture.tcp(2)
        fixture.exchange(
            3, method: "POST", url: "http://api.test/v1/x",
            requestHeaders: [HeaderField(name: "Content-Type", value: "application/json")],
            requestBody: Data(#"{"a":1}"#.utf8), status: 201, reason: "Created"
        )
        fixture.exchange(4, url: "http://down.test/", status: nil, timings: HTTPTimings(), error: "connection refused")
        fixture.exchange(5, method: "CONNECT", url: "api.test:443", status: 200, reason: "Connection established")

        let log = try document(fixture)
        #expect(log["version"] as? String == "1.2")
        let creator = try object(log, "creator")
        #expect(creator["name"] as? String == "sluice" && creator["version"] as? String == "9.9.9")
        #expect((log["pages"] as? [Any])?.isEmpty == true)
        let entries = try #require(log["entries"] as? [[String: Any]])
        #expect(entries.count == 3, "the TCP flow and the CONNECT tunnel are not HAR entries")
        for entry in entries { try expectHARShape(entry) }

        let get = entries[0]
        #expect(get["startedDateTime"] as? String == "2026-11-30T23:18:22.501Z")
        #expect(get["serverIPAddress"] as? String == "10.0.0.5")
        let getTimings = try object(get, "timings")
        #expect(number(getTimings["connect"]) == 3.75, "TLS time is inside connect")
        #expect(number(getTimings["ssl"]) == 2.25)
        #expect(number(getTimings["wait"]) == 10)
        #expect(number(getTimings["dns"]) == -1 && number(getTimings["blocked"]) == -1)
        let getResponse = try object(get, "response")
        #expect(number(getResponse["status"]) == 200 && getResponse["statusText"] as? String == "OK")
        #expect(number(getResponse["bodySize"]) == 2)
        let getContent = try object(getResponse, "content")
        #expect(getContent["text"] as? String == "{}" && getContent["mimeType"] as? String == "application/json")
        #expect(try object(get, "request")["postData"] == nil, "no body, no postData")

        let post = try object(entries[1], "request")
        let postData = try object(post, "postData")
        #expect(postData["mimeType"] as? String == "application/json")
        #expect(postData["text"] as? String == #"{"a":1}"#)
        #expect(number(post["bodySize"]) == 7)
    }

    @Test func aFlowWithoutResponseHasStatusZeroAndSaysWhy() throws {
        var fixture = ExportFixture()
        fixture.exchange(1, url: "http://down.test/", status: nil, timings: HTTPTimings(), error: "connection refused")
        let entry = try #require(try entries(fixture).first)
        try expectHARShape(entry)
        let response = try object(entry, "response")
        #expect(number(response["status"]) == 0)
        #expect(response["statusText"] as? String == "")
        #expect(number(try object(response, "content")["size"]) == 0)
        let comment = try #require(entry["comment"] as? String)
        #expect(comment.contains("no response") && comment.contains("connection refused"), "\(comment)")
        #expect(number(try object(entry, "timings")["connect"]) == -1)
    }

    @Test func cookiesAndQueryStringAreParsed() throws {
        var fixture = ExportFixture()
        fixture.exchange(
            1, url: "http://api.test/search?q=hello%20world&n=1&n=2&plus=a+b&flag&odd=%zz#top",
            requestHeaders: [
                HeaderField(name: "Cookie", value: "session=abc123; theme=dark"),
                HeaderField(name: "cookie", value: "token=a=b"),
            ],
            status: 302, reason: "Found",
            responseHeaders: [
                HeaderField(name: "Set-Cookie", value: "id=7; Path=/; HttpOnly; Secure; Max-Age=60"),
                HeaderField(
                    name: "Set-Cookie", value: "lang=en; Domain=api.test; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
                HeaderField(name: "Location", value: "/login"),
            ]
        )
        let entry = try #require(try entries(fixture).first)
        try expectHARShape(entry)
        let request = try object(entry, "request")
        func pairs(_ value: Any?) -> [[String]] {
            ((value as? [[String: Any]]) ?? []).map { [$0["name"] as? String ?? "?", $0["value"] as? String ?? "?"] }
        }
        #expect(pairs(request["cookies"]) == [["session", "abc123"], ["theme", "dark"], ["token", "a=b"]])
        #expect(
            pairs(request["queryString"]) == [
                ["q", "hello world"], ["n", "1"], ["n", "2"], ["plus", "a b"], ["flag", ""], ["odd", "%zz"],
            ]
        )
        #expect(pairs(request["headers"]).map { $0[0] } == ["Cookie", "cookie"], "order and repeats kept")
        let response = try object(entry, "response")
        #expect(response["redirectURL"] as? String == "/login")
        let cookies = try #require(response["cookies"] as? [[String: Any]])
        #expect(cookies.count == 2)
        #expect(cookies[0]["name"] as? String == "id" && cookies[0]["value"] as? String == "7")
        #expect(cookies[0]["path"] as? String == "/")
        #expect(cookies[0]["httpOnly"] as? Bool == true && cookies[0]["secure"] as? Bool == true)
        // Max-Age counts from the response: 23:18:22.520 + 60 s.
        #expect(cookies[0]["expires"] as? String == "2026-11-30T23:19:22.520Z")
        #expect(cookies[1]["domain"] as? String == "api.test")
        #expect(cookies[1]["expires"] as? String == "2026-10-21T07:28:00.000Z")
    }

    @Test func gzipResponseIsDecoded() throws {
        var fixture = ExportFixture()
        fixture.exchange(
            1, url: "http://api.test/z",
            responseHeaders: [
                HeaderField(name: "Content-Type", value: "application/json"),
                HeaderField(name: "Content-Encoding", value: "gzip"),
            ],
            responseBody: gzippedJSON
        )
        let entry = try #require(try entries(fixture).first)
        try expectHARShape(entry)
        let response = try object(entry, "response")
        let content = try object(response, "content")
        #expect(content["text"] as? String == plainJSON)
        #expect(content["encoding"] == nil)
        #expect(number(content["size"]) == Double(plainJSON.utf8.count), "size is the decoded length")
        #expect(number(response["bodySize"]) == Double(gzippedJSON.count), "bodySize is what travelled")
        #expect(number(content["compression"]) == Double(plainJSON.utf8.count - gzippedJSON.count))
    }

    @Test func undecodableAndBinaryBodiesAreBase64() throws {
        var fixture = ExportFixture()
        let binary = Data([0x00, 0xff, 0xfe, 0x80, 0x41])
        fixture.exchange(
            1, method: "PUT", url: "http://api.test/blob", requestBody: binary,
            responseHeaders: [HeaderField(name: "Content-Encoding", value: "br")], responseBody: binary
        )
        let entry = try #require(try entries(fixture).first)
        try expectHARShape(entry)
        let postData = try object(try object(entry, "request"), "postData")
        #expect(postData["text"] as? String == binary.base64EncodedString())
        #expect((postData["comment"] as? String)?.contains("base64") == true)
        let content = try object(try object(entry, "response"), "content")
        #expect(content["text"] as? String == binary.base64EncodedString())
        #expect(content["encoding"] as? String == "base64")
        #expect((content["comment"] as? String)?.contains("br not decoded") == true)
    }

    @Test func truncatedBodiesSayHowMuchWasStored() throws {
        var fixture = ExportFixture()
        fixture.exchange(
            1, method: "POST", url: "http://api.test/upload", requestBody: Data(repeating: 0x61, count: 1000),
            keptUp: 100,
            responseBody: Data(repeating: 0x62, count: 5000), keptDown: 4096
        )
        let entry = try #require(try entries(fixture).first)
        try expectHARShape(entry)
        let request = try object(entry, "request")
        let postData = try object(request, "postData")
        #expect(postData["text"] as? String == String(repeating: "a", count: 100))
        #expect((postData["comment"] as? String)?.contains("100 of 1000 bytes stored") == true, "\(postData)")
        #expect(number(request["bodySize"]) == 1000)
        let response = try object(entry, "response")
        let content = try object(response, "content")
        #expect((content["comment"] as? String)?.contains("4096 of 5000 bytes stored") == true, "\(content)")
        #expect(number(response["bodySize"]) == 5000)
        let comment = try #require(entry["comment"] as? String)
        #expect(comment.contains("100 of 1000") && comment.contains("4096 of 5000"))
    }

    @Test func truncatedGzipDecodesAsFarAsItGoes() throws {
        var fixture = ExportFixture()
        // A gzip stream with one stored (uncompressed) deflate block, so that every byte kept decodes to one byte.
        let text = Data(String(repeating: "sluice ", count: 100).utf8)
        let header: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03]
        let storedBlock: [UInt8] = [0x01, 0xbc, 0x02, 0x43, 0xfd]  // final, stored, LEN 700, NLEN ~700
        let gzipped = Data(header + storedBlock) + text + Data(count: 8)  // the CRC is never reached
        fixture.exchange(
            1, url: "http://api.test/big", responseHeaders: [HeaderField(name: "Content-Encoding", value: "gzip")],
            responseBody: gzipped, keptDown: 15 + 100
        )
        let entry = try #require(try entries(fixture).first)
        let content = try object(try object(entry, "response"), "content")
        #expect(content["text"] as? String == String(decoding: text.prefix(100), as: UTF8.self))
        #expect(number(content["size"]) == 100)
        #expect(content["compression"] == nil, "unknown for a body that was cut")
        #expect((content["comment"] as? String)?.contains("115 of \(gzipped.count) bytes stored") == true)
    }

    @Test func webSocketFlowsCarryTheirMessages() throws {
        var fixture = ExportFixture()
        fixture.exchange(
            1, kind: .websocket, url: "http://chat.test/socket",
            requestHeaders: [
                HeaderField(name: "Upgrade", value: "websocket"), HeaderField(name: "Connection", value: "Upgrade"),
            ],
            status: 101, reason: "Switching Protocols",
            responseHeaders: [HeaderField(name: "Upgrade", value: "websocket")],
            webSocket: [
                (.up, .text, Data("hello ✓".utf8)), (.down, .binary, Data([0, 1, 2, 255])),
                (.up, .ping, Data("p".utf8)),
                (.down, .text, Data("bye".utf8)), (.up, .close, Data([0x03, 0xe8])),
            ]
        )
        let entry = try #require(try entries(fixture).first)
        try expectHARShape(entry)
        #expect(entry["_resourceType"] as? String == "websocket")
        let messages = try #require(entry["_webSocketMessages"] as? [[String: Any]])
        #expect(messages.map { $0["type"] as? String } == ["send", "receive", "receive"], "data frames only")
        #expect(messages.map { number($0["opcode"]) } == [1, 2, 1])
        #expect(
            messages.map { $0["data"] as? String } == ["hello ✓", Data([0, 1, 2, 255]).base64EncodedString(), "bye"])
        let time = try #require(number(messages[0]["time"]))
        #expect(abs(time - (fixture.start.timeIntervalSince1970 + 1 + 1)) < 0.001, "epoch seconds")
        let response = try object(entry, "response")
        #expect(number(response["status"]) == 101)
        #expect(number(response["bodySize"]) == 0, "the frames are not the handshake's body")
        #expect(number(try object(entry, "request")["bodySize"]) == 0)
        // The entry ends with the handshake, not when the socket closed.
        #expect(try #require(number(entry["time"])) < 100)
    }

    @Test func exportIsValidJSONEvenWithNothingToExport() throws {
        var fixture = ExportFixture()
        fixture.tcp(1)
        let log = try document(fixture)
        #expect((log["entries"] as? [Any])?.isEmpty == true)
    }
}

@Suite struct BodyDecodingTests {
    let zlibJSON = Data([
        0x78, 0x9c, 0xab, 0x56, 0xca, 0x4d, 0x2d, 0x2e, 0x4e, 0x4c, 0x4f, 0x55, 0xb2, 0x52, 0xca, 0x48, 0xcd, 0xc9,
        0xc9, 0xd7, 0x51, 0x48, 0xaf, 0xca, 0x2c, 0x50, 0x28, 0xcf, 0x2f, 0xca, 0x49, 0x51, 0xaa, 0x05, 0x00, 0xae,
        0xd3, 0x0b, 0x02,
    ])
    let rawDeflateJSON = Data([
        0xab, 0x56, 0xca, 0x4d, 0x2d, 0x2e, 0x4e, 0x4c, 0x4f, 0x55, 0xb2, 0x52, 0xca, 0x48, 0xcd, 0xc9, 0xc9, 0xd7,
        0x51, 0x48, 0xaf, 0xca, 0x2c, 0x50, 0x28, 0xcf, 0x2f, 0xca, 0x49, 0x51, 0xaa, 0x05, 0x00,
    ])
    /// gzip of 1,000 × "a".
    let gzippedAs = Data([
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x4b, 0x4c, 0x1c, 0x05, 0xa3, 0x60, 0x14, 0x0c,
        0x77, 0x00, 0x00, 0x03, 0xda, 0x38, 0x9a, 0xe8, 0x03, 0x00, 0x00,
    ])

    /// gzip of 256 KiB of zeros: 289 bytes, mostly zeros, built from its fixed head and tail.
    var gzippedZeros: Data {
        let head: [UInt8] = [
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed, 0xc1, 0x31, 0x01, 0x00, 0x00, 0x00, 0xc2,
            0xa0, 0xf5, 0x4f, 0xed, 0x6d, 0x07, 0xa0,
        ]
        let tail: [UInt8] = [0xde, 0x00, 0x22, 0xea, 0x0e, 0xe2, 0x00, 0x00, 0x04, 0x00]
        return Data(head) + Data(count: 254) + Data(tail)
    }

    @Test func gzipDeflateAndRawDeflateDecode() {
        func text(_ data: Data?) -> String? { data.map { String(decoding: $0, as: UTF8.self) } }
        #expect(text(BodyDecoding.decode(gzippedJSON, contentEncoding: "gzip")) == plainJSON)
        #expect(text(BodyDecoding.decode(gzippedJSON, contentEncoding: "X-GZIP")) == plainJSON)
        #expect(text(BodyDecoding.decode(zlibJSON, contentEncoding: "deflate")) == plainJSON)
        #expect(text(BodyDecoding.decode(rawDeflateJSON, contentEncoding: "deflate")) == plainJSON, "raw deflate too")
        #expect(text(BodyDecoding.decode(gzippedJSON, contentEncoding: "identity, gzip")) == plainJSON)
        #expect(BodyDecoding.decode(Data("plain".utf8), contentEncoding: nil) == Data("plain".utf8))
        #expect(BodyDecoding.decode(Data(), contentEncoding: "gzip") == Data(), "a HEAD answer has the header, no body")
        #expect(BodyDecoding.decode(gzippedJSON, contentEncoding: "br") == nil, "unsupported")
        #expect(BodyDecoding.decode(gzippedJSON, contentEncoding: "gzip, br") == nil)
    }

    @Test func concatenatedGzipMembersAllDecode() {
        let twice = gzippedJSON + gzippedJSON
        #expect(BodyDecoding.gunzip(twice) == Data((plainJSON + plainJSON).utf8))
        #expect(BodyDecoding.gunzip(gzippedJSON + Data("trailing junk".utf8)) == Data(plainJSON.utf8))
    }

    @Test func outputIsCapped() {
        #expect(BodyDecoding.gunzip(gzippedAs, limit: 1000)?.count == 1000)
        #expect(BodyDecoding.gunzip(gzippedAs, limit: 999) == nil)
        // 260 members of 256 KiB: 65 MiB from 75 KB of input, past the default 64 MiB.
        let member = gzippedZeros
        #expect(BodyDecoding.gunzip(member)?.count == 256 << 10)
        var bomb = Data()
        for _ in 0..<260 { bomb.append(member) }
        #expect(BodyDecoding.decode(bomb, contentEncoding: "gzip") == nil)
        #expect(BodyDecoding.decode(bomb.prefix(member.count * 200), contentEncoding: "gzip")?.count == 200 << 18)
    }

    @Test func corruptInputIsNilNeverACrash() {
        // Every cut of a stream is incomplete; decoding what there is works only when asked for.
        for length in 1..<gzippedJSON.count {
            let cut = gzippedJSON.prefix(length)
            #expect(BodyDecoding.gunzip(cut) == nil, "cut at \(length)")
            if let partial = BodyDecoding.gunzip(cut, truncated: true) {
                #expect(Data(plainJSON.utf8).starts(with: partial), "cut at \(length)")
            }
        }
        for length in 1..<zlibJSON.count {
            #expect(BodyDecoding.inflate(zlibJSON.prefix(length)) == nil, "cut at \(length)")
        }
        // Every single-bit flip: the CRC catches any change to the data; none may crash.
        for index in gzippedJSON.indices {
            for bit in 0..<8 {
                var flipped = gzippedJSON
                flipped[index] ^= UInt8(1 << bit)
                if let decoded = BodyDecoding.gunzip(flipped) {
                    // Header fields and the padding after the last block are outside the CRC; the data is not.
                    #expect(decoded == Data(plainJSON.utf8), "flip at byte \(index) bit \(bit)")
                }
            }
        }
        // Noise.
        var generator = SplitMix64(seed: 0x51_1ce)
        for size in [1, 2, 3, 10, 100, 1000, 65536] {
            for _ in 0..<20 {
                let noise = Data((0..<size).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
                _ = BodyDecoding.decode(noise, contentEncoding: "gzip")
                _ = BodyDecoding.decode(noise, contentEncoding: "deflate", truncated: true)
                _ = BodyDecoding.decode(Data([0x1f, 0x8b, 0x08, 0x00]) + noise, contentEncoding: "gzip")
                _ = BodyDecoding.decode(Data([0x78, 0x9c]) + noise, contentEncoding: "deflate")
            }
        }
        #expect(BodyDecoding.gunzip(Data("not gzip at all".utf8)) == nil)
        #expect(BodyDecoding.inflate(Data([0x78, 0x9c, 0xff, 0xff])) == nil)
    }
}

/// A small deterministic generator, so a failing noise case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
