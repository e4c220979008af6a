import NIOCore

/// Strict UTF-8 validation for text messages and close reasons (RFC 6455 §5.6, §8.1).
///
/// Hand-written rather than `String(validating:)` so it works on every deployment target and never allocates.
/// Follows the Unicode well-formed byte sequence table (Unicode §3.9, Table 3-7): rejects overlong forms,
/// UTF-16 surrogates (U+D800...U+DFFF) and anything above U+10FFFF.
enum UTF8Validator {
    static func isValid(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { isValid($0) }
    }

    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        var index = 0
        while index < count {
            // ASCII fast path: skip 8 bytes at once when none has the high bit set.
            if index + 8 <= count,
                bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
            {
                index += 8
                continue
            }
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let continuationCount: Int
            var secondLow: UInt8 = 0x80
            var secondHigh: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF:
                continuationCount = 1
            case 0xE0:
                continuationCount = 2
                secondLow = 0xA0  // exclude overlong 3-byte forms
            case 0xE1...0xEC, 0xEE...0xEF:
                continuationCount = 2
            case 0xED:
                continuationCount = 2
                secondHigh = 0x9F  // exclude surrogates
            case 0xF0:
                continuationCount = 3
                secondLow = 0x90  // exclude overlong 4-byte forms
            case 0xF1...0xF3:
                continuationCount = 3
            case 0xF4:
                continuationCount = 3
                secondHigh = 0x8F  // exclude code points above U+10FFFF
            default:
                return false  // continuation byte as lead, overlong C0/C1, or F5...FF
            }
            guard index + continuationCount < count else { return false }
            guard (secondLow...secondHigh).contains(bytes[index + 1]) else { return false }
            var offset = 2
            while offset <= continuationCount {
                guard (0x80...0xBF).contains(bytes[index + offset]) else { return false }
                offset += 1
            }
            index += continuationCount + 1
        }
        return true
    }
}
