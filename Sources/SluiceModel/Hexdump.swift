/// Classic `hexdump -C` layout: offset, 16 bytes in two groups of 8, and an ASCII column where
/// non-printable bytes are dots.
public enum Hexdump {
    public static let bytesPerLine = 16

    /// The lines for `bytes`, with offsets counted from `startOffset` (so a message can be shown at its
    /// position in the stream).
    public static func lines<C: Collection>(_ bytes: C, startOffset: Int = 0) -> [String] where C.Element == UInt8 {
        var result: [String] = []
        result.reserveCapacity(bytes.count / bytesPerLine + 1)
        var index = bytes.startIndex
        var offset = startOffset
        while index != bytes.endIndex {
            let end = bytes.index(index, offsetBy: bytesPerLine, limitedBy: bytes.endIndex) ?? bytes.endIndex
            result.append(line(bytes[index..<end], offset: offset))
            offset += bytes.distance(from: index, to: end)
            index = end
        }
        return result
    }

    public static func format<C: Collection>(_ bytes: C, startOffset: Int = 0) -> String where C.Element == UInt8 {
        lines(bytes, startOffset: startOffset).joined(separator: "\n")
    }

    static func line<C: Collection>(_ chunk: C, offset: Int) -> String where C.Element == UInt8 {
        var hex = ""
        var ascii = ""
        var column = 0
        for byte in chunk {
            if column == 8 { hex += " " }
            hex += hexByte(byte) + " "
            ascii.unicodeScalars.append((0x20...0x7e).contains(byte) ? Unicode.Scalar(byte) : ".")
            column += 1
        }
        let width = bytesPerLine * 3 + 2
        hex += String(repeating: " ", count: max(0, width - hex.count))
        return paddedHex(offset, width: 8) + "  " + hex + "|" + ascii + "|"
    }

    public static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
    }

    public static func paddedHex(_ value: Int, width: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
