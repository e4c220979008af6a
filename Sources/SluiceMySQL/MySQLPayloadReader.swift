import NIOCore

/// Reads the fields of one payload, little-endian, turning every shortfall into a `malformedPacket` error that names
/// the packet ("COM_STMT_EXECUTE: …") and the field.
///
/// Counts and lengths are checked against the bytes left before anything is allocated for them, so a length-encoded
/// count of 2^63 in a ten-byte payload costs nothing.
struct MySQLPayloadReader {
    private(set) var buffer: ByteBuffer
    /// "COM_QUERY", prefixed to every error.
    let context: String
    private let start: Int

    init(_ payload: ByteBuffer, context: String) {
        self.buffer = payload
        self.context = context
        self.start = payload.readerIndex
    }

    var remaining: Int { buffer.readableBytes }
    /// Bytes read so far: the offset of the next field within the payload.
    var offset: Int { buffer.readerIndex - start }

    func error(_ what: String) -> MySQLProtocolError {
        .malformed("\(context): \(what)")
    }

    func peekUInt8() -> UInt8? {
        buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)
    }

    mutating func uint8(_ field: String) throws(MySQLProtocolError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw error("\(field) is missing") }
        return value
    }

    mutating func uint16(_ field: String) throws(MySQLProtocolError) -> UInt16 {
        guard let value = buffer.readInteger(endianness: .little, as: UInt16.self) else {
            throw error("\(field) is missing")
        }
        return value
    }

    mutating func uint24(_ field: String) throws(MySQLProtocolError) -> UInt32 {
        guard let low = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt16.self),
            let high = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt8.self)
        else { throw error("\(field) is missing") }
        buffer.moveReaderIndex(forwardBy: 3)
        return UInt32(low) | UInt32(high) << 16
    }

    mutating func uint32(_ field: String) throws(MySQLProtocolError) -> UInt32 {
        guard let value = buffer.readInteger(endianness: .little, as: UInt32.self) else {
            throw error("\(field) is missing")
        }
        return value
    }

    mutating func uint64(_ field: String) throws(MySQLProtocolError) -> UInt64 {
        guard let value = buffer.readInteger(endianness: .little, as: UInt64.self) else {
            throw error("\(field) is missing")
        }
        return value
    }

    mutating func bytes(_ count: Int, _ field: String) throws(MySQLProtocolError) -> ByteBuffer {
        guard count >= 0, let slice = buffer.readSlice(length: count) else {
            throw error("\(field) needs \(count) bytes but \(remaining) remain")
        }
        return slice
    }

    mutating func skip(_ count: Int, _ field: String) throws(MySQLProtocolError) {
        guard count >= 0, count <= remaining else {
            throw error("\(field) needs \(count) bytes but \(remaining) remain")
        }
        buffer.moveReaderIndex(forwardBy: count)
    }

    /// A NUL-terminated string (`string<NUL>`), decoded as UTF-8 with invalid bytes replaced: recording must not fail
    /// on a character set that is not UTF-8.
    mutating func nulString(_ field: String) throws(MySQLProtocolError) -> String {
        guard let nul = buffer.readableBytesView.firstIndex(of: 0) else {
            throw error("\(field) has no NUL terminator")
        }
        let length = nul - buffer.readerIndex
        let text = Self.lenientString(buffer.readableBytesView.prefix(length))
        buffer.moveReaderIndex(forwardBy: length + 1)
        return text
    }

    /// A NUL-terminated string that may instead end with the payload, as servers accept for the last fields of a
    /// handshake (the network layer NUL-terminates every packet it reads) and as MySQL 5.5.7–5.5.9 sent the greeting's
    /// plugin name (Bug #59453).
    mutating func nulStringOrRest(_ field: String) -> String {
        if let nul = buffer.readableBytesView.firstIndex(of: 0) {
            let length = nul - buffer.readerIndex
            let text = Self.lenientString(buffer.readableBytesView.prefix(length))
            buffer.moveReaderIndex(forwardBy: length + 1)
            return text
        }
        return Self.lenientString(rest().readableBytesView)
    }

    static func lenientString(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes as a string when they are valid UTF-8, else nil.
    static func strictString(_ bytes: some Sequence<UInt8>) -> String? {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: return String(scalars)
            case .error: return nil
            }
        }
    }

    /// `int<lenenc>`: below 0xFB the byte itself; 0xFC, 0xFD, 0xFE announce 2, 3 and 8 bytes. 0xFB (NULL, only
    /// meaningful in a text row) and 0xFF (the first byte of an ERR packet) are not integers.
    mutating func lengthEncodedInteger(_ field: String) throws(MySQLProtocolError) -> UInt64 {
        guard let value = try lengthEncodedIntegerOrNull(field) else {
            throw error("\(field) is NULL (length-encoded prefix 0xFB) where an integer is required")
        }
        return value
    }

    /// `int<lenenc>`, or nil for the NULL prefix 0xFB.
    mutating func lengthEncodedIntegerOrNull(_ field: String) throws(MySQLProtocolError) -> UInt64? {
        let prefix = try uint8(field)
        switch prefix {
        case 0..<0xFB:
            return UInt64(prefix)
        case 0xFB:
            return nil
        case 0xFC:
            return UInt64(try uint16(field))
        case 0xFD:
            return UInt64(try uint24(field))
        case 0xFE:
            return try uint64(field)
        default:
            throw error("\(field) has the invalid length-encoded prefix 0xFF")
        }
    }

    /// A length-encoded count or length, refused when `count * minimumElementSize` exceeds what is left.
    mutating func lengthEncodedCount(_ field: String, minimumElementSize: Int) throws(MySQLProtocolError) -> Int {
        let value = try lengthEncodedInteger("\(field) count")
        let (needed, overflow) = value.multipliedReportingOverflow(by: UInt64(max(minimumElementSize, 0)))
        guard value <= UInt64(remaining), !overflow, needed <= UInt64(remaining) else {
            throw error(
                "\(field) count \(value) needs at least \(value) × \(minimumElementSize) bytes but \(remaining) remain")
        }
        return Int(value)
    }

    /// `string<lenenc>`: a length-encoded length, then that many bytes. NULL is an error.
    mutating func lengthEncodedBytes(_ field: String) throws(MySQLProtocolError) -> ByteBuffer {
        guard let bytes = try lengthEncodedBytesOrNull(field) else {
            throw error("\(field) is NULL (length-encoded prefix 0xFB) where a string is required")
        }
        return bytes
    }

    /// `string<lenenc>`, or nil for NULL (0xFB), as in a text-protocol row.
    mutating func lengthEncodedBytesOrNull(_ field: String) throws(MySQLProtocolError) -> ByteBuffer? {
        guard let length = try lengthEncodedIntegerOrNull("\(field) length") else { return nil }
        guard length <= UInt64(remaining) else {
            throw error("\(field) length \(length) exceeds the \(remaining) bytes left")
        }
        return try bytes(Int(length), field)
    }

    mutating func lengthEncodedString(_ field: String) throws(MySQLProtocolError) -> String {
        Self.lenientString(try lengthEncodedBytes(field).readableBytesView)
    }

    /// Whatever is left.
    mutating func rest() -> ByteBuffer {
        let slice = buffer
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return slice
    }

    /// The whole payload must have been read: trailing bytes mean the packet is not what it claims.
    func finish() throws(MySQLProtocolError) {
        guard remaining == 0 else { throw error("\(remaining) trailing bytes") }
    }
}
