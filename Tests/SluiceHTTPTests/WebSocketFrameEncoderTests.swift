import NIOCore
import SluiceHTTP
import Testing

@Suite("WebSocketFrameEncoder")
struct WebSocketFrameEncoderTests {
    @Test("RFC 6455 §5.7 examples encode byte for byte")
    func rfcExamples() {
        let hello = ByteBuffer(string: "Hello")
        #expect(encoded([WebSocketFrame(opcode: .text, payload: hello)]) == buffer(hex: "81 05 48 65 6c 6c 6f"))
        #expect(
            encoded([WebSocketFrame(opcode: .text, maskKey: 0x37FA_213D, payload: hello)])
                == buffer(hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58")
        )
        #expect(
            encoded([
                WebSocketFrame(fin: false, opcode: .text, payload: ByteBuffer(string: "Hel")),
                WebSocketFrame(opcode: .continuation, payload: ByteBuffer(string: "lo")),
            ]) == buffer(hex: "01 03 48 65 6c 80 02 6c 6f")
        )
        #expect(encoded([WebSocketFrame(opcode: .ping, payload: hello)]) == buffer(hex: "89 05 48 65 6c 6c 6f"))

        let payload256 = patternBytes(count: 256)
        #expect(
            encoded([WebSocketFrame(opcode: .binary, payload: buffer(payload256))])
                == buffer(hexBytes("82 7E 01 00") + payload256)
        )
        let payload64K = patternBytes(count: 65536)
        #expect(
            encoded([WebSocketFrame(opcode: .binary, payload: buffer(payload64K))])
                == buffer(hexBytes("82 7F 00 00 00 00 00 01 00 00") + payload64K)
        )
    }

    @Test("encode then parse round-trips", arguments: [0, 1, 125, 126, 127, 65535, 65536, 100_000])
    func roundTrip(size: Int) throws {
        for masked in [false, true] {
            let payload = buffer(patternBytes(count: size))
            let frame = WebSocketFrame(opcode: .binary, maskKey: masked ? 0xA1B2_C3D4 : nil, payload: payload)
            var wire = encoded([frame])

            let lengthBytes = size < 126 ? 0 : size <= 0xFFFF ? 2 : 8
            #expect(wire.readableBytes == 2 + lengthBytes + (masked ? 4 : 0) + size)

            var parser = WebSocketFrameParser(maxFrameSize: 1 << 20, expectMasked: masked)
            let parsed = try #require(try parser.parse(&wire))
            #expect(parsed == frame)
            #expect(wire.readableBytes == 0)
        }
    }

    @Test("fin, rsv and every opcode survive a round trip")
    func headerFields() throws {
        let opcodes: [WebSocketOpcode] = [.continuation, .text, .binary, .close, .ping, .pong]
        for opcode in opcodes {
            let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: 1, payload: ByteBuffer(string: "ab"))
            var wire = encoded([frame])
            var parser = WebSocketFrameParser(maxFrameSize: 1024, expectMasked: true)
            #expect(try parser.parse(&wire) == frame)
        }
        let withRSV = encoded([WebSocketFrame(fin: false, rsv: 0b101, opcode: .binary, payload: ByteBuffer())])
        #expect(withRSV == buffer(hex: "52 00"))
    }

    @Test("word-wise masking matches per-byte masking at every length and alignment")
    func maskingMatchesReference() {
        let key: UInt32 = 0xDEAD_BEEF
        for offset in 0..<4 {
            for length in 0..<40 {
                let bytes = patternBytes(count: offset + length)
                var payload = buffer(bytes)
                payload.moveReaderIndex(forwardBy: offset)  // unaligned source
                var out = ByteBuffer()
                out.writeBytes([0xFF, 0xFF, 0xFF].prefix(offset))  // unaligned destination
                WebSocketFrameEncoder.encode(
                    WebSocketFrame(opcode: .binary, maskKey: key, payload: payload),
                    into: &out
                )
                let wirePayload = Array(out.readableBytesView.suffix(length))
                #expect(wirePayload == referenceMask(Array(bytes.dropFirst(offset)), key: key))
            }
        }
    }

    @Test("random mask keys differ between calls")
    func randomMaskKeys() {
        let keys = Set((0..<64).map { _ in WebSocketFrameEncoder.randomMaskKey() })
        #expect(keys.count > 60)
    }
}
