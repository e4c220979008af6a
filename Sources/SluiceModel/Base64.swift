/// Standard base64 with padding (RFC 4648 §4), written straight into the caller's buffer.
///
/// The store's writer encodes every recorded payload for the JSON Lines, so this is on the recording path: six
/// bytes per step through a table of character pairs (one 8-byte load, four lookups, one 8-byte store) costs
/// about a quarter of the instructions of Foundation's `base64EncodedData()` per byte, and makes no `Data`.
public enum Base64 {
    /// How many characters `count` bytes encode to.
    public static func encodedCount(_ count: Int) -> Int {
        (count + 2) / 3 * 4
    }

    /// The encoding as a string.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        let length = encodedCount(input.count)
        return String(unsafeUninitializedCapacity: length) { output in
            input.withUnsafeBytes { source in
                guard let destination = output.baseAddress else { return 0 }
                encode(source, to: destination)
                return length
            }
        }
    }

    /// Writes the encoding of `source` at `destination`, which must have room for `encodedCount(source.count)`
    /// bytes.
    public static func encode(_ source: UnsafeRawBufferPointer, to destination: UnsafeMutablePointer<UInt8>) {
        guard let input = source.baseAddress else { return }
        pairs.withUnsafeBufferPointer { pairs in
            var read = 0
            var written = 0
            let count = source.count
            // Six bytes become eight characters: a 48-bit group is four 12-bit pair indices. The 8-byte load reads
            // two bytes past the group, so this runs while eight are left.
            while count - read >= 8 {
                let group = UInt64(bigEndian: (input + read).loadUnaligned(as: UInt64.self))
                let characters =
                    UInt64(pairs[Int(truncatingIfNeeded: group >> 52)])
                    | UInt64(pairs[Int(truncatingIfNeeded: group >> 40 & 0xFFF)]) << 16
                    | UInt64(pairs[Int(truncatingIfNeeded: group >> 28 & 0xFFF)]) << 32
                    | UInt64(pairs[Int(truncatingIfNeeded: group >> 16 & 0xFFF)]) << 48
                UnsafeMutableRawPointer(destination + written).storeBytes(of: characters.littleEndian, as: UInt64.self)
                read += 6
                written += 8
            }
            while count - read >= 3 {
                let group = Int(input.load(fromByteOffset: read, as: UInt8.self)) << 16
                    | Int(input.load(fromByteOffset: read + 1, as: UInt8.self)) << 8
                    | Int(input.load(fromByteOffset: read + 2, as: UInt8.self))
                let characters = UInt32(pairs[group >> 12]) | UInt32(pairs[group & 0xFFF]) << 16
                UnsafeMutableRawPointer(destination + written).storeBytes(of: characters.littleEndian, as: UInt32.self)
                read += 3
                written += 4
            }
            let left = count - read
            guard left > 0 else { return }
            let first = Int(input.load(fromByteOffset: read, as: UInt8.self))
            let second = left == 2 ? Int(input.load(fromByteOffset: read + 1, as: UInt8.self)) : 0
            let group = first << 16 | second << 8
            destination[written] = alphabet[group >> 18]
            destination[written + 1] = alphabet[group >> 12 & 0x3F]
            destination[written + 2] = left == 2 ? alphabet[group >> 6 & 0x3F] : UInt8(ascii: "=")
            destination[written + 3] = UInt8(ascii: "=")
        }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// The two characters of every 12-bit value, first one in the low byte (so a little-endian store writes them
    /// in order).
    private static let pairs: [UInt16] = (0..<4096).map { value in
        UInt16(alphabet[value >> 6]) | UInt16(alphabet[value & 0x3F]) << 8
    }
}
