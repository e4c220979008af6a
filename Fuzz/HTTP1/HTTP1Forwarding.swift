import FuzzSupport
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceModel

// What the proxy forwards must read back, at the next hop, as the message it recorded: the head `ExchangePlan` makes
// for the other side (hop-by-hop headers gone, framing set for that connection) written by `HTTP1MessageWriter`,
// then the body and trailers, parsed again by a fresh `HTTP1Parser`. A message that reads back otherwise is one the
// server (or the client) would frame differently from Sluice: request smuggling, response splitting.

extension HTTPVersion {
    /// Defined in HTTPProxyHandler.swift, which this module does not compile: the same text as `wireText`.
    var text: String { wireText }
}

/// One complete message of an outcome.
struct Message<Head: Checkable> {
    var head: Head
    var body: [UInt8]
    var trailers: HTTPHeaders?
}

/// The complete messages in `events`, 1xx heads as messages without body or end.
func messages<Head: Checkable>(_ events: [Event<Head>]) -> [Message<Head>] {
    var result: [Message<Head>] = []
    var open: Message<Head>?
    for event in events {
        switch event {
        case .head(let head):
            if let informational = open { result.append(informational) }  // a 1xx: no end came
            open = Message(head: head, body: [], trailers: nil)
        case .body(let bytes):
            open?.body += bytes
        case .end(let trailers):
            open?.trailers = trailers
            if let message = open { result.append(message) }
            open = nil
        case .error:
            return result
        }
    }
    return result
}

/// The events a reader must see in `bytes` written for `head`: its head, the body, and the trailers when the
/// writer chunks the body (they are dropped otherwise, as there is no way to send them).
func expectedEvents<Head: Checkable>(_ head: Head, _ message: Message<Head>, chunked: Bool) -> [Event<Head>] {
    [.head(head)] + (message.body.isEmpty ? [] : [.body(message.body)]) + [.end(chunked ? message.trailers : nil)]
}

/// Whether the head at the start of `bytes` is within the reader's limits. The proxy adds fields (Host,
/// X-Forwarded-For…), so a head at the limit when it came can be over it when it leaves: the next hop refuses that
/// with a 431, as any server whose limits are lower than Sluice's would refuse what it forwards.
func withinLimits(_ bytes: [UInt8], fields: Int) -> Bool {
    let limits = HTTP1Limits()
    guard fields <= limits.maxFields else { return false }
    var headEnd = 0
    var lineStart = 0
    for index in bytes.indices where bytes[index] == 0x0A {
        guard index - lineStart <= limits.maxLineBytes + 1 else { return false }
        if index - lineStart == 1 {
            headEnd = index + 1
            break
        }
        lineStart = index + 1
    }
    return headEnd <= limits.maxHeadBytes
}

/// Writes `parts` as the proxy does, one writer per connection and direction.
func written<Head: HTTP1Head>(_ parts: [HTTPPart<Head, IOData>]) -> [UInt8] {
    var writer = HTTP1MessageWriter()
    var bytes: [UInt8] = []
    for part in parts {
        writer.write(part, allocator: ByteBufferAllocator(), promise: nil) { data, _ in
            guard case .byteBuffer(let buffer) = data else { return }
            bytes += buffer.readableBytesView
        }
    }
    return bytes
}

func isChunked(_ headers: HTTPHeaders) -> Bool {
    headers.first(name: "transfer-encoding") == "chunked"
}

let client = Endpoint(host: "10.0.0.9", port: 40000)
let specs = [
    ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 8080), target: nil),
    ListenSpec(
        scheme: .reverseHTTP, listen: Endpoint(host: "127.0.0.1", port: 8081), target: Endpoint(host: "b", port: 80)),
]

/// Every request Sluice would forward, as the server reads it.
func checkForwarding(_ requests: Outcome<HTTPRequestHead>) {
    for message in messages(requests.events) where message.head.method != .CONNECT {
        for spec in specs {
            guard let plan = try? ExchangePlan(head: message.head, spec: spec, client: client) else { continue }
            let head = plan.upstreamHead
            var parts: [HTTPClientRequestPart] = [.head(head)]
            if !message.body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: message.body)))) }
            parts.append(.end(message.trailers))
            let bytes = written(parts)
            guard withinLimits(bytes, fields: head.headers.count) else { continue }
            let server = parse(bytes, as: HTTPRequestHead.self, methods: [], plan: [bytes.count])
            require(
                server.events == expectedEvents(head, message, chunked: isChunked(head.headers)) && server.rest.isEmpty,
                "\(spec.scheme) forwards \(text(bytes)), read as \(server.events)"
            )
        }
    }
}

/// Every response Sluice would pass to the client, as the client reads it: to an HTTP/1.1 client on a connection
/// that stays open or is to close after it, and to an HTTP/1.0 client.
func checkForwarding(_ responses: Outcome<HTTPResponseHead>, methods: [HTTPMethod]) {
    var methods = methods[...]
    for message in messages(responses.events) {
        let code = message.head.status.code
        if code < 200 && code != 101 {
            // Relayed as it came, hop-by-hop headers removed (`Exchange.responseHead`).
            var headers = message.head.headers
            HopByHop.strip(&headers, keepUpgrade: false)
            let head = HTTPResponseHead(version: .http1_1, status: message.head.status, headers: headers)
            let bytes = written([HTTPServerResponsePart.head(head)])
            let client = parse(bytes, as: HTTPResponseHead.self, methods: [.GET], plan: [bytes.count])
            require(client.events == [.head(head)], "1xx forwarded as \(text(bytes)), read as \(client.events)")
            continue
        }
        let method = methods.popFirst() ?? .GET
        if code == 101 || method == .CONNECT { return }  // the connection is another protocol's now
        for (version, closing) in [(HTTPVersion.http1_1, false), (.http1_1, true), (.http1_0, false)] {
            let request = HTTPRequestHead(version: version, method: method, uri: "http://origin.test/")
            guard let plan = try? ExchangePlan(head: request, spec: specs[0], client: client) else {
                require(false, "no plan for \(method)")
                return
            }
            let (head, endsByClose) = plan.clientResponseHead(message.head, closing: closing)
            var parts: [HTTPServerResponsePart] = [.head(head)]
            if !message.body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: message.body)))) }
            parts.append(.end(message.trailers))
            let bytes = written(parts)
            guard withinLimits(bytes, fields: head.headers.count) else { continue }
            let client = parse(bytes, as: HTTPResponseHead.self, methods: [method], plan: [bytes.count])
            require(
                client.events == expectedEvents(head, message, chunked: isChunked(head.headers)) && client.rest.isEmpty,
                "to an \(version) client \(text(bytes)) (ends by close: \(endsByClose)) reads as \(client.events)"
            )
        }
    }
}

func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes.prefix(2000), as: UTF8.self).debugDescription
}
