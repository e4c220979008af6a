import NIOCore

/// Length-encoded integers and strings (`int<lenenc>`, `string<lenenc>`; PROTOCOLS.md §2): below 0xFB the byte
/// itself, 0xFC + 2 bytes, 0xFD + 3 bytes, 0xFE + 8 bytes, little-endian. In a text-protocol row 0xFB stands for
/// NULL; 0xFF is never a valid prefix (a packet starting with it is an ERR).
///
/// The readers consume nothing when they throw, so a caller may report the error and still hold the whole input.
public enum MySQLLengthEncoded {
    /// Reads an integer; 0xFB (NULL) and 0xFF are errors, as is a prefix whose bytes are missing.
    public static func readInteger(from buffer: inout ByteBuffer) throws(MySQLProtocolError) -> UInt64 {
        var reader = MySQLPayloadReader(buffer, context: "length-encoded integer")
        let value = try reader.lengthEncodedInteger("value")
        buffer = reader.buffer
        return value
    }

    /// Reads a string's bytes; NULL (0xFB) is an error.
    public static func readBytes(from buffer: inout ByteBuffer) throws(MySQLProtocolError) -> ByteBuffer {
        var reader = MySQLPayloadReader(buffer, context: "length-encoded string")
        let value = try reader.lengthEncodedBytes("value")
        buffer = reader.buffer
        return value
    }

    /// Reads a string's bytes, or nil for NULL (0xFB), as in a text-protocol row.
    public static func readNullableBytes(from buffer: inout ByteBuffer) throws(MySQLProtocolError) -> ByteBuffer? {
        var reader = MySQLPayloadReader(buffer, context: "length-encoded string")
        let value = try reader.lengthEncodedBytesOrNull("value")
        buffer = reader.buffer
        return value
    }

    /// The number of bytes `writeInteger` uses for `value`.
    public static func size(of value: UInt64) -> Int {
        switch value {
        case 0..<0xFB: 1
        case 0xFB...0xFFFF: 3
        case 0x1_0000...0xFF_FFFF: 4
        default: 9
        }
    }

    public static func writeInteger(_ value: UInt64, into buffer: inout ByteBuffer) {
        switch value {
        case 0..<0xFB:
            buffer.writeInteger(UInt8(value))
        case 0xFB...0xFFFF:
            buffer.writeInteger(UInt8(0xFC))
            buffer.writeInteger(UInt16(value), endianness: .little)
        case 0x1_0000...0xFF_FFFF:
            buffer.writeInteger(UInt8(0xFD))
            buffer.writeInteger(UInt16(truncatingIfNeeded: value), endianness: .little)
            buffer.writeInteger(UInt8(truncatingIfNeeded: value >> 16))
        default:
            buffer.writeInteger(UInt8(0xFE))
            buffer.writeInteger(value, endianness: .little)
        }
    }

    public static func writeBytes(_ bytes: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        writeInteger(UInt64(bytes.count), into: &buffer)
        buffer.writeBytes(bytes)
    }
}
