import NIOHTTP1
import Testing

@testable import SluiceHTTP

@Suite struct HopByHopTests {
    @Test func namesCompareIgnoringASCIICaseOnly() {
        #expect("Content-Length".equalsIgnoringASCIICase("content-length"))
        #expect("CONNECTION".equalsIgnoringASCIICase("connection"))
        #expect("x-secret".equalsIgnoringASCIICase("X-Secret"))
        #expect(!"Connection2".equalsIgnoringASCIICase("connection"))
        #expect(!"connectio".equalsIgnoringASCIICase("connection"))
        // Only A-Z fold: '[' and '{' differ by 0x20 too; non-ASCII never folds.
        #expect(!"[".equalsIgnoringASCIICase("{"))
        #expect(!"{".equalsIgnoringASCIICase("["))
        #expect(!"É".equalsIgnoringASCIICase("é"))
        #expect("".equalsIgnoringASCIICase(""))
        // Substrings (tokens of a header value) compare the same way.
        #expect("close, Keep-Alive".dropFirst(7).equalsIgnoringASCIICase("keep-alive"))
        #expect(!"close, Keep-Alivf".dropFirst(7).equalsIgnoringASCIICase("keep-alive"))
    }

    private func tokens(_ value: String) -> [Substring] {
        var tokens: [Substring] = []
        HopByHop.forEachToken(value) { token in
            tokens.append(token)
            return true
        }
        return tokens
    }

    @Test func tokensAreTrimmedAndEmptyOnesSkipped() {
        #expect(tokens(" close ,\tKeep-Alive,, x-a ") == ["close", "Keep-Alive", "x-a"])
        #expect(tokens("").isEmpty)
        #expect(tokens(" , ").isEmpty)
    }

    @Test func stripRemovesHopByHopAndListedHeadersInAnyCaseAndKeepsTheRestInOrder() {
        var headers = HTTPHeaders([
            ("Date", "today"), ("CONNECTION", "X-Secret,  keep-alive"), ("x-secret", "1"), ("Keep-Alive", "timeout=5"),
            ("Content-Length", "3"), ("Proxy-Authorization", "Basic x"), ("te", "trailers"), ("X-Secret", "2"), ("Via", "a"),
        ])
        HopByHop.strip(&headers, keepUpgrade: false)
        #expect(headers.map { "\($0.name): \($0.value)" } == ["Date: today", "Content-Length: 3", "Via: a"])
    }

    @Test func stripLeavesHeadersWithoutHopByHopOnesUntouched() {
        var headers = HTTPHeaders([("Host", "a"), ("Accept", "*/*"), ("Transfer-Encoding", "chunked")])
        HopByHop.strip(&headers, keepUpgrade: false)
        #expect(headers.map(\.name) == ["Host", "Accept", "Transfer-Encoding"])
    }

    @Test func aWebSocketHandshakeKeepsItsUpgrade() {
        var headers = HTTPHeaders([("Connection", "keep-alive, Upgrade"), ("Upgrade", "WebSocket"), ("Sec-WebSocket-Key", "k")])
        #expect(HeaderScan(headers).isWebSocketUpgrade)
        HopByHop.strip(&headers, keepUpgrade: true)
        #expect(headers.map { "\($0.name): \($0.value)" } == ["Sec-WebSocket-Key: k", "Upgrade: WebSocket", "Connection: Upgrade"])
        #expect(!HeaderScan(HTTPHeaders([("Upgrade", "websocket")])).isWebSocketUpgrade, "no Connection: upgrade")
        #expect(!HeaderScan(HTTPHeaders([("Upgrade", "h2c"), ("Connection", "upgrade")])).isWebSocketUpgrade)
    }

    @Test func closeFollowsTheConnectionHeaderAndTheVersion() {
        #expect(HeaderScan(HTTPHeaders([("Connection", "Close")])).wantsClose(version: .http1_1))
        #expect(HeaderScan(HTTPHeaders([("connection", "x, close")])).wantsClose(version: .http1_1))
        #expect(!HeaderScan(HTTPHeaders([("Connection", "closed")])).wantsClose(version: .http1_1))
        #expect(!HeaderScan(HTTPHeaders()).wantsClose(version: .http1_1))
        #expect(HeaderScan(HTTPHeaders()).wantsClose(version: .http1_0))
        #expect(!HeaderScan(HTTPHeaders([("Connection", "Keep-Alive")])).wantsClose(version: .http1_0))
    }

    @Test func proxyCredentialsAreNeverRecorded() {
        let headers = HTTPHeaders([("PROXY-AUTHORIZATION", "Basic c2VjcmV0"), ("Authorization", "Bearer t")])
        #expect(headers.redacted.map(\.name) == ["Authorization"])
    }
}
