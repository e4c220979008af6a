import Foundation
import SluiceModel
import Testing

@testable import SluiceHTTP

@Suite struct HTTPMessageTextTests {
    @Test func aRequestRoundTripsWithoutItsFramingHeaders() throws {
        let text = HTTPMessageText.request(
            method: "POST", url: "http://a.example/x?y=1",
            headers: [HeaderField(name: "Host", value: "a.example"), HeaderField(name: "Content-Length", value: "3"),
                      HeaderField(name: "X-A", value: "1"), HeaderField(name: "X-A", value: "2")],
            body: Data("a=1".utf8)
        )
        #expect(String(decoding: text, as: UTF8.self) == "POST http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\nX-A: 2\r\n\r\na=1")
        let parsed = try HTTPMessageText.parseRequest(text)
        #expect(parsed.method == "POST")
        #expect(parsed.target == "http://a.example/x?y=1")
        #expect(parsed.headers.map(\.value) == ["a.example", "1", "2"])
        #expect(parsed.body == Data("a=1".utf8))
    }

    @Test func bareLineFeedsFromAnEditorAreAccepted() throws {
        let parsed = try HTTPMessageText.parseRequest(Data("GET /x HTTP/1.1\nHost: a\nContent-Length: 99\n\nbody\nmore".utf8))
        #expect(parsed.target == "/x")
        #expect(parsed.headers == [HeaderField(name: "Host", value: "a")], "framing is recomputed, not taken from the edit")
        #expect(parsed.body == Data("body\nmore".utf8))
    }

    @Test func aResponseRoundTrips() throws {
        let text = HTTPMessageText.response(
            status: 404, reason: "Not Found", headers: [HeaderField(name: "Content-Type", value: "text/plain")], body: Data("no".utf8)
        )
        let parsed = try HTTPMessageText.parseResponse(text)
        #expect(parsed == HTTPMessageText.Response(status: 404, reason: "Not Found", headers: [HeaderField(name: "Content-Type", value: "text/plain")], body: Data("no".utf8)))
    }

    @Test(arguments: [
        "GET /x HTTP/1.1\r\nHost: a\r\n",  // no blank line
        "\r\n\r\n",  // no start line
        "GET\r\n\r\n",  // no target
        "GE T /x HTTP/1.1 extra\r\n\r\n",
        "G\u{1}T /x HTTP/1.1\r\n\r\n",
        "GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
        "GET /x HTTP/1.1\r\nX: a\u{0}b\r\n\r\n",
    ])
    func malformedRequestsAreRefusedWithAReason(_ text: String) {
        #expect(throws: HTTPMessageTextError.self) { try HTTPMessageText.parseRequest(Data(text.utf8)) }
    }

    @Test(arguments: ["HTTP/1.1 99 Odd\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n", "HTTX 200 OK\r\n\r\n", "HTTP/1.1 OK\r\n\r\n"])
    func malformedResponsesAreRefused(_ text: String) {
        #expect(throws: HTTPMessageTextError.self) { try HTTPMessageText.parseResponse(Data(text.utf8)) }
    }
}
