import NIOCore
import SluiceHTTP
import SluiceTestSupport
import Testing

@Suite("WebSocketFrameParser", .ownThread)
struct WebSocketFrameParserTests {
    // MARK: RFC 6455 §5.7 examples

    @Test("single-frame unmasked text")
    func unmaskedHello() throws {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var input = buffer(hex: "81 05 48 65 6c 6c 6f")
        let frame = try #require(try parser.parse(&input))
        #expect(frame == WebSocketFrame(fin: true, opcode: .text, payload: ByteBuffer(string: "Hello")))
        #expect(input.readableBytes == 0)
    }

    @Test("single-frame masked text")
    func maskedHello() throws {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: true)
        var input = buffer(hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58")
        let frame = try #require(try parser.parse(&input))
        #expect(frame.fin)
        #expect(frame.opcode == .text)
        #expect(frame.maskKey == 0x37FA_213D)
        #expect(frame.payload == ByteBuffer(string: "Hello"))
        #expect(input.readableBytes == 0)
    }

    @Test("fragmented unmasked text")
    func fragmentedHello() throws {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var input = buffer(hex: "01 03 48 65 6c 80 02 6c 6f")
        let first = try #require(try parser.parse(&input))
        let second = try #require(try parser.parse(&input))
        #expect(try parser.parse(&input) == nil)
        #expect(first == WebSocketFrame(fin: false, opcode: .text, payload: ByteBuffer(string: "Hel")))
        #expect(second == WebSocketFrame(fin: true, opcode: .continuation, payload: ByteBuffer(string: "lo")))
    }

    @Test("unmasked ping and masked pong")
    func pingPong() throws {
        var server = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var ping = buffer(hex: "89 05 48 65 6c 6c 6f")
        #expect(try server.parse(&ping) == WebSocketFrame(opcode: .ping, payload: ByteBuffer(string: "Hello")))

        var client = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: true)
        var pong = buffer(hex: "8a 85 37 fa 21 3d 7f 9f 4d 51 58")
        let frame = try #require(try client.parse(&pong))
        #expect(frame.opcode == .pong)
        #expect(frame.payload == ByteBuffer(string: "Hello"))
    }

    @Test("256-byte binary uses the 16-bit length")
    func binary256() throws {
        let payload = patternBytes(count: 256)
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var input = buffer(hexBytes("82 7E 01 00") + payload)
        let frame = try #require(try parser.parse(&input))
        #expect(frame == WebSocketFrame(opcode: .binary, payload: buffer(payload)))
        #expect(input.readableBytes == 0)
    }

    @Test("64 KiB binary uses the 64-bit length")
    func binary64KiB() throws {
        let payload = patternBytes(count: 65536)
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var input = buffer(hexBytes("82 7F 00 00 00 00 00 01 00 00") + payload)
        let frame = try #require(try parser.parse(&input))
        #expect(frame == WebSocketFrame(opcode: .binary, payload: buffer(payload)))
        #expect(input.readableBytes == 0)
    }

    // MARK: Partial input

    @Test("incomplete frames consume nothing", arguments: [
        "", "81", "82 7E", "82 7E 01", "82 7E 01 00 AA", "82 7F 00 00 00 00 00 01 00", "81 85 37 fa 21",
        "81 85 37 fa 21 3d 7f 9f 4d 51",
    ])
    func incomplete(hex: String) throws {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: hex.hasPrefix("81 85"))
        var input = buffer(hex: hex)
        let before = input
        #expect(try parser.parse(&input) == nil)
        #expect(input == before)
        #expect(input.readerIndex == before.readerIndex)
    }

    @Test("byte-at-a-time feed yields the same frames, each only when complete")
    func byteAtATime() throws {
        for masked in [true, false] {
            let frames = [
                WebSocketFrame(fin: false, opcode: .text, payload: ByteBuffer(string: "Hél")),
                WebSocketFrame(opcode: .ping, payload: ByteBuffer(string: "are you there")),
                WebSocketFrame(opcode: .continuation, payload: ByteBuffer(string: "lo wörld")),
                WebSocketFrame(opcode: .binary, payload: buffer(patternBytes(count: 300))),
                WebSocketFrame(opcode: .binary, payload: ByteBuffer()),
                WebSocketFrame(opcode: .binary, payload: buffer(patternBytes(count: 70000, seed: 3))),
                WebSocketFrame(opcode: .close, payload: WebSocketFrame.closePayload(code: 1000, reason: "bye")),
            ].enumerated().map { index, frame in
                var frame = frame
                frame.maskKey = masked ? 0x0102_0304 &* UInt32(index + 1) : nil
                return frame
            }
            var stream = ByteBuffer()
            var frameEnds: [Int] = []
            for frame in frames {
                WebSocketFrameEncoder.encode(frame, into: &stream)
                frameEnds.append(stream.writerIndex)
            }

            var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: masked)
            var received = ByteBuffer()
            var parsed: [WebSocketFrame] = []
            var fed = 0
            var earlyOrLate = 0
            for byte in stream.readableBytesView {
                received.writeInteger(byte)
                fed += 1
                let before = received.readerIndex
                if let frame = try parser.parse(&received) {
                    parsed.append(frame)
                    if fed != frameEnds[parsed.count - 1] || received.readerIndex != fed {
                        earlyOrLate += 1
                    }
                } else if received.readerIndex != before {
                    earlyOrLate += 1
                }
            }
            #expect(earlyOrLate == 0)
            #expect(parsed == frames)
            #expect(received.readableBytes == 0)
        }
    }

    // MARK: Errors

    @Test("reserved opcodes are rejected with 1002", arguments: [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] as [UInt8])
    func reservedOpcode(opcode: UInt8) {
        var parser = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: false)
        var input = buffer([0x80 | opcode, 0x00])
        #expect(closeCode { _ = try parser.parse(&input) } == 1002)
    }

    @Test("RSV bits are rejected with 1002", arguments: [0x40, 0x20, 0x10, 0x70] as [UInt8])
    func rsvBits(bits: UInt8) {
        var parser = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: false)
        var input = buffer([0x81 | bits, 0x01, 0x41])
        #expect(closeCode { _ = try parser.parse(&input) } == 1002)
    }

    @Test("fragmented control frames are rejected with 1002", arguments: [0x08, 0x09, 0x0A] as [UInt8])
    func fragmentedControl(opcode: UInt8) {
        var parser = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: false)
        var input = buffer([opcode, 0x00])
        #expect(closeCode { _ = try parser.parse(&input) } == 1002)
    }

    @Test("control payloads over 125 bytes are rejected with 1002, even before the payload arrives")
    func oversizedControl() {
        var parser = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: false)
        var input = buffer(hex: "89 7E 00 7E")
        #expect(closeCode { _ = try parser.parse(&input) } == 1002)
        var headerOnly = buffer(hex: "88 7E")
        #expect(closeCode { _ = try parser.parse(&headerOnly) } == 1002)
        var exactly125 = buffer(hexBytes("89 7D") + patternBytes(count: 125))
        #expect(closeCode { _ = try parser.parse(&exactly125) } == nil)
    }

    @Test("64-bit length with the top bit set is rejected with 1002")
    func topBitLength() {
        var parser = WebSocketFrameParser(maxFrameSize: Int.max, expectMasked: false)
        var input = buffer(hex: "82 7F 80 00 00 00 00 00 00 00")
        #expect(closeCode { _ = try parser.parse(&input) } == 1002)
        var allOnes = buffer(hex: "82 7F FF FF FF FF FF FF FF FF")
        #expect(closeCode { _ = try parser.parse(&allOnes) } == 1002)
    }

    @Test("non-minimal length encodings are rejected with 1002", arguments: [
        "82 7E 00 00", "82 7E 00 7D", "82 7F 00 00 00 00 00 00 00 05", "82 7F 00 00 00 00 00 00 FF FF",
    ])
    func nonMinimalLength(hex: String) {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var input = buffer(hex: hex)
        #expect(closeCode { _ = try parser.parse(&input) } == 1002)
    }

    @Test("minimal boundary lengths are accepted")
    func minimalBoundaries() throws {
        var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: false)
        var len126 = buffer(hexBytes("82 7E 00 7E") + patternBytes(count: 126))
        #expect(try parser.parse(&len126)?.payload.readableBytes == 126)
        var len65536 = buffer(hexBytes("82 7F 00 00 00 00 00 01 00 00") + patternBytes(count: 65536))
        #expect(try parser.parse(&len65536)?.payload.readableBytes == 65536)
    }

    @Test("masking must match the direction: 1002")
    func maskMismatch() {
        var fromClient = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: true)
        var unmasked = buffer(hex: "81 05 48 65 6c 6c 6f")
        #expect(closeCode { _ = try fromClient.parse(&unmasked) } == 1002)

        var fromServer = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: false)
        var masked = buffer(hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58")
        #expect(closeCode { _ = try fromServer.parse(&masked) } == 1002)
    }

    @Test("frames over maxFrameSize are rejected with 1009 as soon as the length is known")
    func tooBig() {
        var parser = WebSocketFrameParser(maxFrameSize: 10, expectMasked: false)
        var headerOnly = buffer(hex: "82 0B")
        #expect(closeCode { _ = try parser.parse(&headerOnly) } == 1009)
        var sixteen = buffer(hex: "82 7E 01 00")
        #expect(closeCode { _ = try parser.parse(&sixteen) } == 1009)
        var huge = buffer(hex: "82 7F 7F FF FF FF FF FF FF FF")
        #expect(closeCode { _ = try parser.parse(&huge) } == 1009)
        var atLimit = buffer(hexBytes("82 0A") + patternBytes(count: 10))
        #expect(closeCode { _ = try parser.parse(&atLimit) } == nil)
    }

    @Test("error description is one line naming the code")
    func errorDescription() {
        var parser = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: false)
        var input = buffer(hex: "09 00")
        do {
            _ = try parser.parse(&input)
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "websocket protocol error 1002: control frame is fragmented")
        }
    }
}
