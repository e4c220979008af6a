import NIOHTTP1
import SluiceCore
import SluiceModel
import Testing

@testable import SluiceHTTP

@Suite struct ExchangePlanTests {
    let explicit = ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 8080), target: nil)
    let reverse = ListenSpec(
        scheme: .reverseHTTP, listen: Endpoint(host: "127.0.0.1", port: 8000), target: Endpoint(host: "backend", port: 9000)
    )
    let client = Endpoint(host: "10.0.0.9", port: 5555)

    func head(_ uri: String, _ headers: [(String, String)], method: HTTPMethod = .GET, version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func explicitProxyRewritesToOriginFormAndDropsHopByHopHeaders() throws {
        let plan = try ExchangePlan(
            head: head(
                "http://example.com:8080/x?y",
                [
                    ("Host", "wrong.example"), ("Proxy-Connection", "keep-alive"), ("Proxy-Authorization", "Basic czpz"),
                    ("Connection", "X-Private, keep-alive"), ("X-Private", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                    ("Upgrade", "h2c"), ("Accept", "*/*"),
                ]
            ),
            spec: explicit, client: client
        )
        #expect(plan.upstreamHead.uri == "/x?y")
        #expect(plan.upstreamHead.headers["Host"] == ["example.com:8080"])  // RFC 9112 §3.2.2
        for name in ["Proxy-Connection", "Proxy-Authorization", "Connection", "X-Private", "Keep-Alive", "TE", "Upgrade"] {
            #expect(!plan.upstreamHead.headers.contains(name: name), "\(name) was forwarded")
        }
        #expect(plan.upstreamHead.headers["Accept"] == ["*/*"])
        #expect(plan.target.endpoint == Endpoint(host: "example.com", port: 8080))
        #expect(!plan.isWebSocket)
    }

    @Test func recordedRequestNeverHoldsProxyCredentials() throws {
        let plan = try ExchangePlan(head: head("http://a/", [("Proxy-Authorization", "Basic c2VjcmV0")]), spec: explicit, client: client)
        let event = plan.requestEvent(flowID: FlowID(1))
        #expect(!event.headers.contains { $0.value.contains("c2VjcmV0") })
    }

    @Test func chunkedBeatsContentLength() throws {
        let plan = try ExchangePlan(
            head: head("http://a/", [("Transfer-Encoding", "gzip, chunked"), ("Content-Length", "10")], method: .POST), spec: explicit,
            client: client
        )
        #expect(plan.upstreamHead.headers["Transfer-Encoding"] == ["chunked"])
        #expect(!plan.upstreamHead.headers.contains(name: "Content-Length"))
    }

    @Test func reverseProxyUsesTheBackendsHostAndAddsForwardedHeaders() throws {
        let plan = try ExchangePlan(
            head: head("/api?q=1", [("Host", "public.example"), ("X-Forwarded-For", "1.2.3.4")]), spec: reverse, client: client
        )
        #expect(plan.target.url == "http://backend:9000/api?q=1")
        #expect(plan.upstreamHead.headers["Host"] == ["backend:9000"])
        #expect(plan.upstreamHead.headers["X-Forwarded-For"] == ["1.2.3.4, 10.0.0.9"])
        #expect(plan.upstreamHead.headers["X-Forwarded-Host"] == ["public.example"])
        #expect(plan.upstreamHead.headers["X-Forwarded-Proto"] == ["http"])
    }

    @Test func reverseProxyRefusesAbsoluteFormAndConnect() {
        #expect(throws: RequestTargetError.self) { try ExchangePlan(head: head("http://a/", []), spec: reverse, client: client) }
        #expect(throws: RequestTargetError.self) { try ExchangePlan(head: head("a:443", [], method: .CONNECT), spec: reverse, client: client) }
    }

    @Test func webSocketUpgradeKeepsUpgradeAndDropsCompression() throws {
        let plan = try ExchangePlan(
            head: head(
                "http://a/chat",
                [
                    ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Extensions", "permessage-deflate"),
                ]
            ),
            spec: explicit, client: client
        )
        #expect(plan.isWebSocket)
        #expect(plan.upstreamHead.headers["Upgrade"] == ["websocket"])
        #expect(plan.upstreamHead.headers["Connection"] == ["Upgrade"])
        #expect(!plan.upstreamHead.headers.contains(name: "Sec-WebSocket-Extensions"))
        #expect(plan.upstreamHead.headers["Sec-WebSocket-Key"] == ["dGhlIHNhbXBsZSBub25jZQ=="])
    }

    @Test func versionsAsRecorded() {
        #expect(HTTPVersion.http1_1.text == "HTTP/1.1")
        #expect(HTTPVersion.http1_0.text == "HTTP/1.0")
        #expect(HTTPVersion(major: 2, minor: 0).text == "HTTP/2.0")
    }

    @Test func connectionCloseAndHTTP10() throws {
        #expect(try ExchangePlan(head: head("http://a/", [("Connection", "close")]), spec: explicit, client: client).clientWantsClose)
        #expect(try ExchangePlan(head: head("http://a/", [], version: .http1_0), spec: explicit, client: client).clientWantsClose)
        #expect(
            try !ExchangePlan(head: head("http://a/", [("Connection", "keep-alive")], version: .http1_0), spec: explicit, client: client)
                .clientWantsClose
        )
    }

    @Test func responseFramingForTheClient() throws {
        let plan = try ExchangePlan(head: head("http://a/", []), spec: explicit, client: client)
        // No length from the server: re-chunked for an HTTP/1.1 client.
        let (unframed, endsByClose) = plan.clientResponseHead(HTTPResponseHead(version: .http1_0, status: .ok), closing: false)
        #expect(unframed.headers["Transfer-Encoding"] == ["chunked"])
        #expect(!endsByClose)
        // A length stays; hop-by-hop headers go.
        let (sized, _) = plan.clientResponseHead(
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "5", "Keep-Alive": "timeout=1"]), closing: true
        )
        #expect(sized.headers["Content-Length"] == ["5"])
        #expect(!sized.headers.contains(name: "Keep-Alive"))
        #expect(sized.headers["Connection"] == ["close"])
        // 204 and 304 never get framing added.
        let (noContent, _) = plan.clientResponseHead(HTTPResponseHead(version: .http1_1, status: .noContent), closing: false)
        #expect(!noContent.headers.contains(name: "Transfer-Encoding"))
    }

    @Test func headResponsesGetNoChunkedFraming() throws {
        let plan = try ExchangePlan(head: head("http://a/", [], method: .HEAD), spec: explicit, client: client)
        let (response, endsByClose) = plan.clientResponseHead(HTTPResponseHead(version: .http1_1, status: .ok), closing: false)
        #expect(!response.headers.contains(name: "Transfer-Encoding"))
        #expect(!endsByClose)
    }

    @Test func http10ClientGetsABodyThatEndsByClose() throws {
        let plan = try ExchangePlan(head: head("http://a/", [], version: .http1_0), spec: explicit, client: client)
        let (response, endsByClose) = plan.clientResponseHead(HTTPResponseHead(version: .http1_1, status: .ok), closing: false)
        #expect(response.version == .http1_0)
        #expect(endsByClose)
        #expect(response.headers["Connection"] == ["close"])
    }
}
