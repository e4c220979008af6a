import NIOCore

/// What can be read from the head of a streamed message (`PostgresFrame.Kind.streamStart`): the fields before the
/// bulk data. The rest of a streamed message is relayed unread, so its inner lengths are not checked here; the
/// receiving peer checks them as it always does.
public enum PostgresStreamHead: Equatable, Sendable {
    /// A backend DataRow too large to buffer, with its column count.
    case dataRow(columnCount: Int)
    /// CopyData, either direction: no fields.
    case copyData
    /// A frontend Bind too large to buffer (large parameter values): enough to map portal → statement → SQL.
    case bind(portal: String, statement: String)
    /// A backend FunctionCallResponse too large to buffer.
    case functionCallResponse

    /// Reads `head` (the body's first bytes, as carried by `.streamStart`) of a streamed `type` message.
    ///
    /// A Bind whose two names do not end within the head (`PostgresFramer.streamHeadBytes`) is refused: the
    /// inspector could not tell which statement it binds, and names that long are cut to 63 bytes by the server.
    public init(direction: PostgresDirection, type: UInt8, head: ByteBuffer) throws(PostgresProtocolError) {
        var reader = PostgresMessageReader(head, direction: direction, type: type, streamed: true)
        switch (direction, type) {
        case (.backend, UInt8(ascii: "D")):
            let count = Int(try reader.int16("column count"))
            guard count >= 0 else { throw reader.error("column count \(count) is negative") }
            self = .dataRow(columnCount: count)
        case (_, UInt8(ascii: "d")):
            self = .copyData
        case (.frontend, UInt8(ascii: "B")):
            let portal = try reader.cString("portal name")
            self = .bind(portal: portal, statement: try reader.cString("statement name"))
        case (.backend, UInt8(ascii: "V")):
            self = .functionCallResponse
        default:
            throw PostgresProtocolError(
                kind: .unknownMessageType,
                reason: "\(direction.describe(type)) is not a message type that is streamed")
        }
    }
}
