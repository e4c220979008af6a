/// Makes valid UTF-8 of a byte stream that arrives in chunks cut anywhere, one chunk at a time.
///
/// A terminal's output is bytes, and an SSH channel delivers them in packets that split multi-byte characters; a
/// recording stores text (asciicast is JSON), so each chunk is decoded as it comes: an incomplete character at the
/// end of a chunk is carried to the next one instead of becoming two U+FFFD, and bytes that can never be UTF-8
/// become U+FFFD, one per maximal ill-formed subpart (Unicode §3.9, as `String(decoding:as:)` does).
public struct IncrementalUTF8: Sendable, Equatable {
    /// The first bytes of a character the last chunk ended inside (at most three).
    public private(set) var tail: [UInt8] = []

    public init() {}

    /// Appends `chunk`'s valid UTF-8 to `output`, keeping an incomplete last character for the next call.
    public mutating func decode(_ chunk: some Collection<UInt8>, into output: inout [UInt8]) {
        if tail.isEmpty,
            chunk.withContiguousStorageIfAvailable({ tail = Self.decode($0, final: false, into: &output) }) != nil
        {
            return
        }
        let joined = tail + chunk
        tail = joined.withUnsafeBufferPointer { Self.decode($0, final: false, into: &output) }
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    public mutating func finish(into output: inout [UInt8]) {
        guard !tail.isEmpty else { return }
        let leftover = tail
        tail = []
        _ = leftover.withUnsafeBufferPointer { Self.decode($0, final: true, into: &output) }
    }

    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// Appends the valid UTF-8 of `bytes` to `output`; returns the bytes of an incomplete character at the end
    /// (empty when `final`, where such bytes are replaced too).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, final: Bool, into output: inout [UInt8]) -> [UInt8] {
        let count = bytes.count
        output.reserveCapacity(output.count + count)
        var index = 0
        var runStart = 0
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let need: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: need = 1
            case 0xE0:
                need = 2
                low = 0xA0  // no overlong forms
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED:
                need = 2
                high = 0x9F  // no surrogates
            case 0xF0:
                need = 3
                low = 0x90  // no overlong forms
            case 0xF1...0xF3: need = 3
            case 0xF4:
                need = 3
                high = 0x8F  // nothing above U+10FFFF
            default: need = 0  // a continuation byte, C0, C1 or F5...FF: never a lead
            }
            // How many bytes of a well-formed sequence start here (the maximal subpart when it is cut short).
            var valid = need == 0 ? 0 : 1
            while valid > 0, valid <= need, index + valid < count {
                let byte = bytes[index + valid]
                let (minimum, maximum) = valid == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard byte >= minimum, byte <= maximum else { break }
                valid += 1
            }
            if need > 0 && valid == need + 1 {
                index += valid
                continue
            }
            if need > 0 && index + valid == count && !final {
                // Well-formed so far and cut by the chunk's end: carried to the next chunk.
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                return Array(bytes[index..<count])
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            output.append(contentsOf: replacement)
            index += max(valid, 1)
            runStart = index
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<count]))
        return []
    }
}
