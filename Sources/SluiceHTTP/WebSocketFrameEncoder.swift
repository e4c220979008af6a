import NIOCore

/// Serializes frames to RFC 6455 wire format (§5.2).
///
/// The encoder trusts its input: it is fed frames built by the proxy itself, or frames that already passed
/// `WebSocketFrameParser`. It does not re-check control-frame size or opcode/fragment rules.
public enum WebSocketFrameEncoder {
    /// Appends `frame` to `buffer` using the shortest length form, masking the payload when `maskKey` is set.
    ///
    /// The minimal length encoding is mandatory (§5.2: "the minimal number of bytes MUST be used"), and a
    /// strict peer such as this module's own parser rejects anything longer.
    public static func encode(_ frame: WebSocketFrame, into buffer: inout ByteBuffer) {
        let length = frame.payload.readableBytes
        let firstByte = (frame.fin ? 0x80 : 0) | ((frame.rsv & 0x7) << 4) | frame.opcode.rawValue
        let maskBit: UInt8 = frame.maskKey == nil ? 0 : 0x80
        let headerSize = 2 + (length < 126 ? 0 : length <= 0xFFFF ? 2 : 8) + (frame.maskKey == nil ? 0 : 4)
        buffer.reserveCapacity(minimumWritableBytes: headerSize + length)

        buffer.writeInteger(firstByte)
        if length < 126 {
            buffer.writeInteger(maskBit | UInt8(length))
        } else if length <= 0xFFFF {
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(length))
        }

        if let maskKey = frame.maskKey {
            buffer.writeInteger(maskKey)
            writeMasked(frame.payload, maskKey: maskKey, into: &buffer)
        } else {
            buffer.writeImmutableBuffer(frame.payload)
        }
    }

    /// A fresh, unpredictable masking key for one client-to-server frame.
    ///
    /// RFC 6455 §5.3 and §10.3 require a new key per frame, drawn from a strong source of entropy, so that a
    /// hostile script cannot choose the bytes a confused intermediary sees on the wire.
    public static func randomMaskKey() -> UInt32 {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }

    /// Appends `source` XORed with the masking key (RFC 6455 §5.3) to `output`.
    ///
    /// XOR masking is its own inverse, so the parser uses this same routine to unmask. The bulk runs on 8-byte
    /// words; the key is laid out in memory order twice over, so the word XOR matches `key[i % 4]` per byte.
    static func writeMasked(_ source: ByteBuffer, maskKey: UInt32, into output: inout ByteBuffer) {
        let count = source.readableBytes
        guard count > 0 else { return }
        let keyWord = UInt64(maskKey.bigEndian) | (UInt64(maskKey.bigEndian) << 32)
        _ = source.withUnsafeReadableBytes { input in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
                var index = 0
                while index + 8 <= count {
                    let word = input.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    target.storeBytes(of: word ^ keyWord, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                while index < count {
                    let shift = UInt32(24 - 8 * (index % 4))
                    target[index] = input[index] ^ UInt8(truncatingIfNeeded: maskKey >> shift)
                    index += 1
                }
                return count
            }
        }
    }
}
