import NIOCore
import SluiceHTTP
import Testing

@Suite("WebSocketMessageAssembler")
struct WebSocketMessageAssemblerTests {
    private func text(_ bytes: [UInt8], fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: .text, payload: buffer(bytes))
    }

    private func continuation(_ bytes: [UInt8], fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: .continuation, payload: buffer(bytes))
    }

    @Test("an unfragmented message comes out at once")
    func singleFrame() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        let result = try assembler.push(WebSocketFrame(opcode: .binary, payload: buffer([1, 2, 3])))
        #expect(result == .message(WebSocketMessage(opcode: .binary, payload: buffer([1, 2, 3]), frameCount: 1)))
        #expect(!assembler.isMessageInProgress)
    }

    @Test("fragments with a ping between them")
    func pingBetweenFragments() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        let ping = WebSocketFrame(opcode: .ping, payload: ByteBuffer(string: "p"))
        #expect(try assembler.push(text(Array("Hel".utf8), fin: false)) == nil)
        #expect(assembler.isMessageInProgress)
        #expect(try assembler.push(ping) == .control(ping))
        #expect(try assembler.push(continuation(Array("lo".utf8), fin: false)) == nil)
        let result = try assembler.push(continuation(Array(" there".utf8)))
        let expected = WebSocketMessage(opcode: .text, payload: ByteBuffer(string: "Hello there"), frameCount: 3)
        #expect(result == .message(expected))
        #expect(!assembler.isMessageInProgress)

        // The assembler is reusable for the next message.
        let next = try assembler.push(WebSocketFrame(opcode: .binary, payload: ByteBuffer()))
        #expect(next == .message(WebSocketMessage(opcode: .binary, payload: ByteBuffer(), frameCount: 1)))
    }

    @Test("close and pong pass through between fragments")
    func otherControlFrames() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        #expect(try assembler.push(WebSocketFrame(fin: false, opcode: .binary, payload: buffer([1]))) == nil)
        let pong = WebSocketFrame(opcode: .pong, payload: ByteBuffer())
        let close = WebSocketFrame(opcode: .close, payload: WebSocketFrame.closePayload(code: 1000, reason: ""))
        #expect(try assembler.push(pong) == .control(pong))
        #expect(try assembler.push(close) == .control(close))
        #expect(assembler.isMessageInProgress)
    }

    @Test("a Close the RFC forbids is 1002 or 1007 and is not passed on", arguments: [
        ("03 E7", 1002 as UInt16),  // 999
        ("03 ED", 1002),  // 1005: reserved for local reporting
        ("03 EE", 1002),  // 1006
        ("03", 1002),  // a 1-byte body
        ("03 E8 FF FE", 1007),  // a reason that is not UTF-8
    ])
    func invalidClose(hex: String, code: UInt16) {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        let close = WebSocketFrame(opcode: .close, payload: buffer(hex: hex))
        #expect(closeCode { _ = try assembler.push(close) } == code)
    }

    @Test("a valid Close passes, empty or with a code and reason")
    func validClose() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        for hex in ["", "03 E8", "0F A0 62 79 65"] {
            let close = WebSocketFrame(opcode: .close, payload: buffer(hex: hex))
            #expect(try assembler.push(close) == .control(close))
        }
    }

    @Test("bufferedBytes counts the unfinished message, and reset lets it go")
    func bufferedBytes() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        _ = try assembler.push(text(Array("Hel".utf8), fin: false))
        _ = try assembler.push(continuation(Array("lo".utf8), fin: false))
        #expect(assembler.bufferedBytes == 5)
        assembler.reset()
        #expect(assembler.bufferedBytes == 0)
        #expect(!assembler.isMessageInProgress)
    }

    @Test("a continuation with no message started is 1002")
    func orphanContinuation() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        #expect(closeCode { _ = try assembler.push(continuation([0x41])) } == 1002)
        #expect(closeCode { _ = try assembler.push(continuation([0x41], fin: false)) } == 1002)
    }

    @Test("a new data frame inside a fragmented message is 1002")
    func interleavedMessage() {
        for opcode in [WebSocketOpcode.text, .binary] {
            var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
            #expect(closeCode { _ = try assembler.push(text([0x41], fin: false)) } == nil)
            let interloper = WebSocketFrame(opcode: opcode, payload: buffer([0x42]))
            #expect(closeCode { _ = try assembler.push(interloper) } == 1002)
            // After the error the assembler is idle again.
            #expect(!assembler.isMessageInProgress)
        }
    }

    @Test("messages over maxMessageSize are 1009")
    func tooLarge() {
        var single = WebSocketMessageAssembler(maxMessageSize: 4)
        let atLimit = WebSocketFrame(opcode: .binary, payload: buffer([1, 2, 3, 4]))
        let overLimit = WebSocketFrame(opcode: .binary, payload: buffer([1, 2, 3, 4, 5]))
        #expect(closeCode { _ = try single.push(atLimit) } == nil)
        #expect(closeCode { _ = try single.push(overLimit) } == 1009)

        var fragmented = WebSocketMessageAssembler(maxMessageSize: 4)
        #expect(closeCode { _ = try fragmented.push(text([0x41, 0x42], fin: false)) } == nil)
        #expect(closeCode { _ = try fragmented.push(continuation([0x43, 0x44], fin: false)) } == nil)
        #expect(closeCode { _ = try fragmented.push(continuation([0x45])) } == 1009)
    }

    @Test("control frames that break §5.5 are 1002 even when not from the parser")
    func badControlFrames() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        let fragmentedPing = WebSocketFrame(fin: false, opcode: .ping, payload: ByteBuffer())
        #expect(closeCode { _ = try assembler.push(fragmentedPing) } == 1002)
        let big = WebSocketFrame(opcode: .pong, payload: buffer(patternBytes(count: 126)))
        #expect(closeCode { _ = try assembler.push(big) } == 1002)
    }

    @Test("a text message split inside a multi-byte character is accepted when whole")
    func splitCharacter() throws {
        // "€😀" = E2 82 AC F0 9F 98 80, split inside both characters.
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        #expect(try assembler.push(text([0xE2], fin: false)) == nil)
        #expect(try assembler.push(continuation([0x82, 0xAC, 0xF0, 0x9F], fin: false)) == nil)
        let result = try assembler.push(continuation([0x98, 0x80]))
        #expect(result == .message(WebSocketMessage(opcode: .text, payload: ByteBuffer(string: "€😀"), frameCount: 3)))
    }

    @Test("an invalid fragmented text message is 1007")
    func invalidFragmentedText() {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        #expect(closeCode { _ = try assembler.push(text([0x41, 0xE2], fin: false)) } == nil)
        #expect(closeCode { _ = try assembler.push(continuation([0x82], fin: false)) } == nil)
        #expect(closeCode { _ = try assembler.push(continuation([0x41])) } == 1007)
        // Truncated at the end of the message.
        #expect(closeCode { _ = try assembler.push(text([0x41], fin: false)) } == nil)
        #expect(closeCode { _ = try assembler.push(continuation([0xF0, 0x9F, 0x98])) } == 1007)
    }

    @Test("binary messages are never UTF-8 checked")
    func binaryNotValidated() throws {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        let result = try assembler.push(WebSocketFrame(opcode: .binary, payload: buffer([0xFF, 0xFE])))
        #expect(result == .message(WebSocketMessage(opcode: .binary, payload: buffer([0xFF, 0xFE]), frameCount: 1)))
    }

    @Test("UTF-8 edge cases", arguments: [
        ("", true), ("41", true), ("C2 80", true), ("DF BF", true), ("E0 A0 80", true), ("ED 9F BF", true),
        ("EE 80 80", true), ("EF BF BF", true), ("F0 90 80 80", true), ("F4 8F BF BF", true),
        ("41 41 41 41 41 41 41 41 41 F0 9F 98 80", true),
        ("80", false), ("BF", false), ("C0 80", false), ("C1 BF", false), ("E0 9F BF", false), ("ED A0 80", false),
        ("ED BF BF", false), ("F0 8F BF BF", false), ("F4 90 80 80", false), ("F5 80 80 80", false), ("FF", false),
        ("C2", false), ("E2 82", false), ("C2 41", false), ("41 41 41 41 41 41 41 41 41 41 FE", false),
    ])
    func utf8EdgeCases(hex: String, valid: Bool) {
        var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
        let code = closeCode { _ = try assembler.push(text(hexBytes(hex))) }
        #expect(code == (valid ? nil : 1007))
    }

    @Test("UTF-8 validation agrees with the standard library on random input")
    func utf8AgainstStandardLibrary() {
        var generator = SplitMix64(seed: 0x5EED_0001)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        var disagreements = 0
        for _ in 0..<5000 {
            let count = Int.random(in: 0...12, using: &generator)
            let bytes = (0..<count).map { _ in
                Bool.random(using: &generator)
                    ? interesting[Int.random(in: 0..<interesting.count, using: &generator)]
                    : UInt8.random(in: 0...255, using: &generator)
            }
            // Decoding repairs invalid input with U+FFFD, so the bytes survive unchanged exactly when valid.
            let expectedValid = Array(String(decoding: bytes, as: UTF8.self).utf8) == bytes
            var assembler = WebSocketMessageAssembler(maxMessageSize: 1024)
            let code = closeCode { _ = try assembler.push(text(bytes)) }
            if (code == nil) != expectedValid {
                disagreements += 1
            }
        }
        #expect(disagreements == 0)
    }
}
