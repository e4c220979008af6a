import NIOCore
import SluiceCore
import Testing

@testable import SluiceHTTP

/// How a transparent listener recognises an HTTP client: a request line, or TLS (on the HTTPS ports, or offering HTTP
/// by ALPN elsewhere).
@Suite struct HTTPSniffTests {
    private func sniff(_ bytes: [UInt8], port: Int = 80) -> SniffResult {
        HTTPProxyModule.sniff(ByteBuffer(bytes: bytes).readableBytesView, port: port)
    }

    private func sniff(_ text: String, port: Int = 80) -> SniffResult { sniff(Array(text.utf8), port: port) }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "POST /form HTTP/1.0\r\n", "OPTIONS * HTTP/1.1\r\n",
        "GET http://example.com/ HTTP/1.1\r\n", "GET HTTPS://example.com/ HTTP/1.1\r\n", "PROPFIND /dav HTTP/1.1\r\n", "G /",
        "GET /", "GET http://", "GET https://",
    ])
    func aRequestLineIsHTTPOnAnyPort(text: String) {
        #expect(sniff(text) == .match)
        #expect(sniff(text, port: 5000) == .match)
    }

    @Test func requestLineByteAtATime() {
        let text = Array("DELETE /x HTTP/1.1\r\n".utf8)
        for length in 1...7 {
            #expect(sniff(Array(text.prefix(length))) == .needMoreData, "after \(length) bytes")
        }
        for length in 8...text.count {
            #expect(sniff(Array(text.prefix(length))) == .match)
        }
    }

    @Test(arguments: [
        "get / HTTP/1.1", " GET /", "GET  /", "GET\t/", "SSH-2.0-", "HELO mail.example.com\r\n", "GET ?", "GET \r\n",
        "ABCDEFGHIJKLMNOPQRSTU /", "\u{0}\u{0}\u{0}\u{8}", "PING\r\n", "GET ftp://x/",
        "GET httpx", "USER anonymous\r\n",
    ])
    func somethingElseIsNot(text: String) {
        #expect(sniff(text) == .noMatch, "\(text)")
    }

    @Test func anAbsoluteTargetWaitsForItsScheme() {
        for text in ["GET h", "GET http", "GET https:", "GET HTTP:/"] {
            #expect(sniff(text) == .needMoreData, "\(text)")
        }
    }

    @Test func aLongMethodStillWaitsUntilItsLimit() {
        #expect(sniff(String(repeating: "A", count: 20)) == .needMoreData)
        #expect(sniff(String(repeating: "A", count: 21)) == .noMatch)
    }

    // MARK: TLS

    private static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }

    /// A TLS 1.3-shaped ClientHello in one record, with ALPN when given.
    private static func clientHello(alpn: [String]) -> [UInt8] {
        var extensions: [UInt8] = []
        if !alpn.isEmpty {
            let list = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            extensions += u16(0x0010) + u16(list.count + 2) + u16(list.count) + list
        }
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0xab, count: 32) + [0]
        body += u16(2) + [0x13, 0x01] + [1, 0] + u16(extensions.count) + extensions
        let handshake = [0x01, 0, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
        return [0x16, 0x03, 0x01] + u16(handshake.count) + handshake
    }

    @Test func tlsOnAnHTTPSPortIsHTTPFromItsRecordHeader() {
        let hello = Self.clientHello(alpn: [])
        #expect(sniff(Array(hello.prefix(1)), port: 443) == .needMoreData)
        #expect(sniff(Array(hello.prefix(2)), port: 443) == .needMoreData)
        #expect(sniff(Array(hello.prefix(3)), port: 443) == .match)
        #expect(sniff(hello, port: 8443) == .match)
    }

    @Test func tlsElsewhereIsHTTPOnlyWhenItsALPNOffersHTTP() {
        let http = Self.clientHello(alpn: ["h2", "http/1.1"])
        for length in [1, 3, 10, http.count - 1] {
            #expect(sniff(Array(http.prefix(length)), port: 9443) == .needMoreData, "after \(length) bytes")
        }
        #expect(sniff(http, port: 9443) == .match)
        #expect(sniff(Self.clientHello(alpn: ["http/1.1"]), port: 993) == .match)
        #expect(sniff(Self.clientHello(alpn: ["imap"]), port: 993) == .noMatch)
        #expect(sniff(Self.clientHello(alpn: ["postgresql"]), port: 5432) == .noMatch)
        #expect(sniff(Self.clientHello(alpn: []), port: 993) == .noMatch)
    }

    @Test func brokenTLSIsNot() {
        #expect(sniff([0x16, 0x01], port: 443) == .noMatch)
        // A record that is no handshake message of the expected type.
        var hello = Self.clientHello(alpn: [])
        hello[5] = 0x02
        #expect(sniff(hello, port: 443) == .noMatch)
    }

    @Test func nothingYetNeedsMore() {
        #expect(sniff([], port: 80) == .needMoreData)
        #expect(sniff([], port: 443) == .needMoreData)
    }
}
