import NIOCore
import SluiceHTTP

/// Parses a hex string such as "81 05 48 65" (whitespace ignored) into bytes.
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer {
    ByteBuffer(bytes: bytes)
}

func buffer(hex: String) -> ByteBuffer {
    ByteBuffer(bytes: hexBytes(hex))
}

/// Deterministic, non-trivial payload bytes.
func patternBytes(count: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

/// The close code of the error `body` throws, or nil when it does not throw (0 for a foreign error type).
///
/// Untyped `throws` because closures written inside `#expect` are inferred as throwing `any Error`.
func closeCode(_ body: () throws -> Void) -> UInt16? {
    do {
        try body()
        return nil
    } catch let error as WebSocketProtocolError {
        return error.closeCode
    } catch {
        return 0
    }
}

func encoded(_ frames: [WebSocketFrame]) -> ByteBuffer {
    var out = ByteBuffer()
    for frame in frames {
        WebSocketFrameEncoder.encode(frame, into: &out)
    }
    return out
}

/// Per-byte reference masking (RFC 6455 §5.3), to check the word-at-a-time implementation against.
func referenceMask(_ bytes: [UInt8], key: UInt32) -> [UInt8] {
    bytes.enumerated().map { index, byte in
        byte ^ UInt8(truncatingIfNeeded: key >> UInt32(24 - 8 * (index % 4)))
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough to drive reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
