import NIOCore

/// Reads the fields of one message body, turning every shortfall into a `malformedMessage` error that names the
/// message ("frontend 'P' Parse: …") and the field.
///
/// Counts are checked against the bytes left before anything is allocated for them, so a count of 32,767 in a
/// ten-byte message costs nothing.
struct PostgresMessageReader {
    /// What is being read, named in every error. Kept as values and put in words only for an error: messages are
    /// read by the thousand per second, errors are rare.
    private enum Context {
        case message(PostgresDirection, UInt8, streamed: Bool)
        case named(String)
    }

    private var buffer: ByteBuffer
    private let context: Context

    init(_ body: ByteBuffer, context: String) {
        self.buffer = body
        self.context = .named(context)
    }

    /// A reader for a typed message's body, "frontend 'P' Parse" in errors.
    init(_ body: ByteBuffer, direction: PostgresDirection, type: UInt8, streamed: Bool = false) {
        self.buffer = body
        self.context = .message(direction, type, streamed: streamed)
    }

    var remaining: Int { buffer.readableBytes }

    func error(_ what: String) -> PostgresProtocolError {
        let name: String
        switch context {
        case .message(let direction, let type, let streamed): name = direction.describe(type) + (streamed ? " (streamed)" : "")
        case .named(let text): name = text
        }
        return .malformed("\(name): \(what)")
    }

    /// A NUL-terminated string (the protocol's `String`), decoded as UTF-8 with invalid bytes replaced: recording
    /// must not fail on a client_encoding that is not UTF-8.
    mutating func cString(_ field: String) throws(PostgresProtocolError) -> String {
        guard let nul = buffer.readableBytesView.firstIndex(where: { $0 == 0 }) else {
            throw error("\(field) has no NUL terminator")
        }
        let length = nul - buffer.readerIndex
        let text = Self.lenientString(buffer.readableBytesView.prefix(length))
        buffer.moveReaderIndex(forwardBy: length + 1)
        return text
    }

    static func lenientString(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    mutating func uint8(_ field: String) throws(PostgresProtocolError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw error("\(field) is missing") }
        return value
    }

    mutating func int16(_ field: String) throws(PostgresProtocolError) -> Int16 {
        guard let value = buffer.readInteger(as: Int16.self) else { throw error("\(field) is missing") }
        return value
    }

    mutating func int32(_ field: String) throws(PostgresProtocolError) -> Int32 {
        guard let value = buffer.readInteger(as: Int32.self) else { throw error("\(field) is missing") }
        return value
    }

    mutating func uint32(_ field: String) throws(PostgresProtocolError) -> UInt32 {
        guard let value = buffer.readInteger(as: UInt32.self) else { throw error("\(field) is missing") }
        return value
    }

    mutating func bytes(_ count: Int, _ field: String) throws(PostgresProtocolError) -> ByteBuffer {
        guard count >= 0, let slice = buffer.readSlice(length: count) else {
            throw error("\(field) needs \(count) bytes but \(remaining) remain")
        }
        return slice
    }

    /// An Int16 element count, refused when negative or when `count * minimumElementSize` exceeds what is left.
    mutating func count(_ field: String, minimumElementSize: Int) throws(PostgresProtocolError) -> Int {
        let count = Int(try int16("\(field) count"))
        try checkCount(count, field, minimumElementSize: minimumElementSize)
        return count
    }

    func checkCount(_ count: Int, _ field: String, minimumElementSize: Int) throws(PostgresProtocolError) {
        guard count >= 0 else { throw error("\(field) count \(count) is negative") }
        guard count * minimumElementSize <= remaining else {
            throw error(
                "\(field) count \(count) needs at least \(count * minimumElementSize) bytes but \(remaining) remain")
        }
    }

    /// An Int16 count followed by that many Int16 values (format codes).
    mutating func int16Array(_ field: String) throws(PostgresProtocolError) -> [Int16] {
        let count = try self.count(field, minimumElementSize: 2)
        var values: [Int16] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            values.append(try int16(field))
        }
        return values
    }

    /// A value prefixed by an Int32 length, -1 meaning NULL (Bind parameters, DataRow columns, function results).
    mutating func nullableValue(_ field: String) throws(PostgresProtocolError) -> ByteBuffer? {
        let length = try int32("\(field) length")
        if length == -1 {
            return nil
        }
        guard length >= 0 else { throw error("\(field) length \(length) is negative") }
        return try bytes(Int(length), field)
    }

    /// Whatever is left.
    mutating func rest() -> ByteBuffer {
        let slice = buffer
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return slice
    }

    /// The whole body must have been read: trailing bytes mean the message is not what its type says.
    func finish() throws(PostgresProtocolError) {
        guard remaining == 0 else { throw error("\(remaining) trailing bytes") }
    }
}
