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

    /// Built in one byte buffer: a detail view draws thousands of these, and string concatenation per byte cost
    /// several microseconds a line.
    static func line<C: Collection>(_ chunk: C, offset: Int) -> String where C.Element == UInt8 {
        let space = UInt8(ascii: " ")
        var out: [UInt8] = []
        out.reserveCapacity(80)
        out.append(contentsOf: paddedHex(offset, width: 8).utf8)
        out.append(contentsOf: [space, space])
        var ascii: [UInt8] = []
        ascii.reserveCapacity(bytesPerLine)
        var column = 0
        for byte in chunk {
            if column == 8 { out.append(space) }
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0f)])
            out.append(space)
            ascii.append((0x20...0x7e).contains(byte) ? byte : UInt8(ascii: "."))
            column += 1
        }
        // The hex columns are padded to a full line's width, so the ASCII column lines up.
        let hexWidth = bytesPerLine * 3 + 2
        let written = column * 3 + (column > 8 ? 1 : 0)
        out.append(contentsOf: repeatElement(space, count: max(0, hexWidth - written)))
        out.append(UInt8(ascii: "|"))
        out.append(contentsOf: ascii)
        out.append(UInt8(ascii: "|"))
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    public static func hexByte(_ byte: UInt8) -> String {
        String(decoding: [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0f)]], as: UTF8.self)
    }

    public static func paddedHex(_ value: Int, width: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
