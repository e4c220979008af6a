import NIOCore
import SluiceHTTP
import Testing

@Suite("WebSocketClose")
struct WebSocketCloseTests {
    @Test("close payload is code then UTF-8 reason")
    func buildPayload() throws {
        #expect(WebSocketFrame.closePayload(code: 1000, reason: "bye") == buffer(hex: "03 E8 62 79 65"))
        #expect(WebSocketFrame.closePayload(code: 4000, reason: "") == buffer(hex: "0F A0"))
        let parsed = try WebSocketClose(payload: WebSocketFrame.closePayload(code: 1001, reason: "going away ✈"))
        #expect(parsed == WebSocketClose(code: 1001, reason: "going away ✈"))
    }

    @Test("long reasons are cut to fit a control frame without splitting a character")
    func longReason() throws {
        let reason = String(repeating: "a", count: 122) + "€€"  // 122 + 6 bytes: cut must land before the first €
        let payload = WebSocketFrame.closePayload(code: 1011, reason: reason)
        #expect(payload.readableBytes == 124)
        #expect(try WebSocketClose(payload: payload).reason == String(repeating: "a", count: 122))

        let emoji = String(repeating: "😀", count: 40)
        let emojiPayload = WebSocketFrame.closePayload(code: 1011, reason: emoji)
        #expect(emojiPayload.readableBytes <= 125)
        #expect(try WebSocketClose(payload: emojiPayload).reason == String(repeating: "😀", count: 30))
    }

    @Test("an empty body has no code")
    func emptyBody() throws {
        #expect(try WebSocketClose(payload: ByteBuffer()) == WebSocketClose(code: nil, reason: ""))
    }

    @Test("a 1-byte body is 1002")
    func oneByte() {
        #expect(closeCode { _ = try WebSocketClose(payload: buffer([0x03])) } == 1002)
    }

    @Test("codes allowed on the wire", arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
        1014, 3000, 3999, 4000, 4999] as [UInt16])
    func validCodes(code: UInt16) throws {
        #expect(try WebSocketClose(payload: WebSocketFrame.closePayload(code: code, reason: "x")).code == code)
    }

    @Test("codes not allowed on the wire are 1002", arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
        5000, 65535] as [UInt16])
    func invalidCodes(code: UInt16) {
        let payload = WebSocketFrame.closePayload(code: code, reason: "")
        #expect(closeCode { _ = try WebSocketClose(payload: payload) } == 1002)
    }

    @Test("a reason that is not UTF-8 is 1007")
    func invalidReason() {
        let payload = buffer(hex: "03 E8 CE BA E1 BD B9 CF 83 ED A0 80")  // "κόσμ" then a surrogate
        #expect(closeCode { _ = try WebSocketClose(payload: payload) } == 1007)
    }
}
