import NIOCore

/// The few packets Sluice writes itself, and the packet writer they share: the ERR that answers a blocked statement,
/// an OK, and re-framing a rewritten payload (PROTOCOLS.md §2).
public enum MySQLPacketEncoder {
    /// MySQL clients keep at most this many bytes of an error message (`MYSQL_ERRMSG_SIZE`, 512).
    public static let maxErrorMessageBytes = 512

    /// Writes `payload` as packets starting with `sequenceID` and returns the sequence id after the last one.
    ///
    /// A payload of 0xFFFFFF bytes or more is split into packets of exactly 0xFFFFFF bytes and a shorter last one,
    /// which is empty when the length is a multiple of 0xFFFFFF: a receiver reads a full packet as "more follows".
    @discardableResult
    public static func writePacket(payload: ByteBuffer, sequenceID: UInt8, into buffer: inout ByteBuffer) -> UInt8 {
        var sequenceID = sequenceID
        var rest = payload
        while true {
            let length = min(rest.readableBytes, MySQLPacketFramer.maxPacketPayloadBytes)
            buffer.writeInteger(UInt16(truncatingIfNeeded: length), endianness: .little)
            buffer.writeInteger(UInt8(truncatingIfNeeded: length >> 16))
            buffer.writeInteger(sequenceID)
            if let part = rest.readSlice(length: length) {
                buffer.writeImmutableBuffer(part)
            }
            sequenceID &+= 1
            if length < MySQLPacketFramer.maxPacketPayloadBytes {
                return sequenceID
            }
        }
    }

    /// An ERR packet, header included: `0xFF`, `code`, `#`, `sqlState`, `message`. Its sequence id must be the last
    /// client packet's plus one (1 for a one-packet command). The SQLSTATE is made exactly 5 ASCII characters
    /// (`HY000` when `sqlState` cannot be), and the message is cut at 512 bytes on a character boundary, as clients
    /// would. For a blocked statement: 1142 ER_TABLEACCESS_DENIED_ERROR or 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR with
    /// SQLSTATE 42000, the message naming the rule; the session and transaction state do not change.
    public static func errorPacket(code: UInt16, sqlState: String, message: String, sequenceID: UInt8) -> ByteBuffer {
        var payload = ByteBuffer()
        writeErrorPayload(code: code, sqlState: sqlState, message: message, into: &payload)
        var packet = ByteBuffer()
        writePacket(payload: payload, sequenceID: sequenceID, into: &packet)
        return packet
    }

    /// The ERR payload alone (see `errorPacket`).
    public static func writeErrorPayload(
        code: UInt16, sqlState: String, message: String, into buffer: inout ByteBuffer
    ) {
        buffer.writeInteger(UInt8(0xFF))
        buffer.writeInteger(code, endianness: .little)
        buffer.writeInteger(UInt8(ascii: "#"))
        let state = Array(sqlState.utf8)
        let valid = state.count == 5 && state.allSatisfy { (0x21...0x7E).contains($0) }
        buffer.writeBytes(valid ? state : Array("HY000".utf8))
        buffer.writeBytes(truncated(message, toBytes: maxErrorMessageBytes))
    }

    /// An OK packet, header included: `0x00` (or `0xFE` where it ends a result set under CLIENT_DEPRECATE_EOF),
    /// affected rows, last insert id, status, warnings, and the info as a length-encoded string when not empty (how
    /// servers write it, with or without CLIENT_SESSION_TRACK).
    public static func okPacket(
        affectedRows: UInt64 = 0, lastInsertID: UInt64 = 0, status: MySQLServerStatus, warnings: UInt16 = 0,
        info: String = "", endsResultSet: Bool = false, sequenceID: UInt8
    ) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(UInt8(endsResultSet ? 0xFE : 0x00))
        MySQLLengthEncoded.writeInteger(affectedRows, into: &payload)
        MySQLLengthEncoded.writeInteger(lastInsertID, into: &payload)
        payload.writeInteger(status.rawValue, endianness: .little)
        payload.writeInteger(warnings, endianness: .little)
        if !info.isEmpty {
            MySQLLengthEncoded.writeBytes(Array(info.utf8), into: &payload)
        }
        var packet = ByteBuffer()
        writePacket(payload: payload, sequenceID: sequenceID, into: &packet)
        return packet
    }

    /// The UTF-8 of `text`, at most `limit` bytes, never ending inside a character.
    private static func truncated(_ text: String, toBytes limit: Int) -> [UInt8] {
        if text.utf8.count <= limit {
            return Array(text.utf8)
        }
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            guard bytes.count + encoded.count <= limit else { break }
            bytes += encoded
        }
        return bytes
    }
}
