import NIOCore

/// OK_Packet: `0x00` (or `0xFE` where it ends a result set under CLIENT_DEPRECATE_EOF), affected rows lenenc, last
/// insert id lenenc, status u16, warnings u16 (with CLIENT_PROTOCOL_41), then the info string and, with
/// CLIENT_SESSION_TRACK and SERVER_SESSION_STATE_CHANGED, the session-state changes (MariaDB "OK_Packet").
public struct MySQLOKPacket: Equatable, Sendable {
    /// 0x00, or 0xFE for the OK that replaces the EOF ending a result set.
    public var header: UInt8
    public var affectedRows: UInt64
    public var lastInsertID: UInt64
    public var status: MySQLServerStatus
    public var warnings: UInt16
    /// Human-readable, e.g. `Rows matched: 1  Changed: 1  Warnings: 0`; often empty.
    public var info: String
    /// The session-state change records, undecoded, when the status says there are some.
    public var sessionStateChanges: ByteBuffer?

    public init(
        header: UInt8 = 0x00, affectedRows: UInt64 = 0, lastInsertID: UInt64 = 0, status: MySQLServerStatus = [],
        warnings: UInt16 = 0, info: String = "", sessionStateChanges: ByteBuffer? = nil
    ) {
        self.header = header
        self.affectedRows = affectedRows
        self.lastInsertID = lastInsertID
        self.status = status
        self.warnings = warnings
        self.info = info
        self.sessionStateChanges = sessionStateChanges
    }

    /// Decodes an OK payload with the connection's effective capabilities.
    ///
    /// The info field is a length-encoded string in what servers send (MySQL's and MariaDB's `net_send_ok` store it
    /// that way whether or not CLIENT_SESSION_TRACK is set, and libmysql reads it so), although MySQL's documentation
    /// calls it `string<EOF>` without session tracking; without session tracking, info that does not parse as a
    /// length-encoded string filling the rest is taken as the rest.
    public init(payload: ByteBuffer, capabilities: MySQLCapabilities) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "OK packet")
        header = try reader.uint8("header")
        guard header == 0x00 || header == 0xFE else {
            throw reader.error("header \(MySQLPacketName.hex(header)) is neither 0x00 nor 0xFE")
        }
        affectedRows = try reader.lengthEncodedInteger("affected rows")
        lastInsertID = try reader.lengthEncodedInteger("last insert id")
        status = []
        warnings = 0
        if capabilities.contains(.protocol41) {
            status = MySQLServerStatus(rawValue: try reader.uint16("status flags"))
            warnings = try reader.uint16("warning count")
        } else if capabilities.contains(.transactions) {
            status = MySQLServerStatus(rawValue: try reader.uint16("status flags"))
        }
        info = ""
        sessionStateChanges = nil
        guard reader.remaining > 0 else { return }
        if capabilities.contains(.sessionTrack) {
            info = try reader.lengthEncodedString("info")
            if status.contains(.sessionStateChanged), reader.remaining > 0 {
                sessionStateChanges = try reader.lengthEncodedBytes("session state changes")
            }
            try reader.finish()
        } else {
            var attempt = reader
            if let text = try? attempt.lengthEncodedString("info"), attempt.remaining == 0 {
                info = text
            } else {
                info = MySQLPayloadReader.lenientString(reader.rest().readableBytesView)
            }
        }
    }
}

/// ERR_Packet: `0xFF`, error code u16, then with CLIENT_PROTOCOL_41 `#` and a 5-character SQLSTATE, then the message
/// to the end of the payload (MariaDB "ERR_Packet").
public struct MySQLErrorPacket: Equatable, Sendable {
    /// E.g. 1146 ER_NO_SUCH_TABLE, 1045 ER_ACCESS_DENIED_ERROR, 1064 ER_PARSE_ERROR.
    public var code: UInt16
    /// E.g. `42S02`; nil when the packet has no `#` marker (before the handshake, or without CLIENT_PROTOCOL_41).
    public var sqlState: String?
    public var message: String

    public init(code: UInt16, sqlState: String?, message: String) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
    }

    /// MariaDB's progress reports (with MARIADB_CLIENT_PROGRESS) are ERR packets with code 0xFFFF; they are not the
    /// end of a command.
    public static let progressReportCode: UInt16 = 0xFFFF

    /// Decodes an ERR payload. The SQLSTATE is read whenever the `#` marker is there: servers send it to every 4.1
    /// client, and MariaDB also before it has read the client's capabilities.
    public init(payload: ByteBuffer, capabilities: MySQLCapabilities) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "ERR packet")
        let header = try reader.uint8("header")
        guard header == 0xFF else {
            throw reader.error("header \(MySQLPacketName.hex(header)) is not 0xFF")
        }
        code = try reader.uint16("error code")
        sqlState = nil
        if reader.peekUInt8() == UInt8(ascii: "#"), reader.remaining >= 6 {
            try reader.skip(1, "SQLSTATE marker")
            sqlState = MySQLPayloadReader.lenientString(try reader.bytes(5, "SQLSTATE").readableBytesView)
        }
        message = MySQLPayloadReader.lenientString(reader.rest().readableBytesView)
    }

    /// True for an ERR payload that is a MariaDB progress report rather than an error.
    public static func isProgressReport(_ payload: ByteBuffer) -> Bool {
        payload.readableBytes >= 3 && payload.getInteger(at: payload.readerIndex, as: UInt8.self) == 0xFF
            && payload.getInteger(at: payload.readerIndex + 1, endianness: .little, as: UInt16.self)
                == progressReportCode
    }
}

/// EOF_Packet: `0xFE`, then with CLIENT_PROTOCOL_41 warnings u16 and status u16; its payload is shorter than 9 bytes,
/// which is what tells it from a text row whose first value has a length prefix of 0xFE.
public struct MySQLEOFPacket: Equatable, Sendable {
    public var warnings: UInt16
    public var status: MySQLServerStatus

    public init(warnings: UInt16 = 0, status: MySQLServerStatus = []) {
        self.warnings = warnings
        self.status = status
    }

    /// True for a payload that is an EOF packet: header 0xFE and fewer than 9 bytes.
    public static func isEOF(_ payload: ByteBuffer) -> Bool {
        payload.readableBytes < 9 && payload.getInteger(at: payload.readerIndex, as: UInt8.self) == 0xFE
    }

    public init(payload: ByteBuffer, capabilities: MySQLCapabilities) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "EOF packet")
        let header = try reader.uint8("header")
        guard header == 0xFE, payload.readableBytes < 9 else {
            throw reader.error("is not 0xFE with fewer than 9 bytes")
        }
        warnings = 0
        status = []
        if capabilities.contains(.protocol41) {
            warnings = try reader.uint16("warning count")
            status = MySQLServerStatus(rawValue: try reader.uint16("status flags"))
        }
    }
}

/// COM_STMT_PREPARE_OK: `0x00`, statement id u32, column count u16, parameter count u16, a filler byte, warnings u16;
/// then the parameter definitions and the column definitions, each group ended by an EOF unless
/// CLIENT_DEPRECATE_EOF (PROTOCOLS.md §2).
public struct MySQLPrepareOK: Equatable, Sendable {
    public var statementID: UInt32
    public var columnCount: Int
    public var parameterCount: Int
    public var warnings: UInt16

    public init(statementID: UInt32, columnCount: Int, parameterCount: Int, warnings: UInt16) {
        self.statementID = statementID
        self.columnCount = columnCount
        self.parameterCount = parameterCount
        self.warnings = warnings
    }

    /// Decodes the payload. The filler and warnings are optional, as in the oldest 4.1 servers; MySQL 8's
    /// `metadata_follows` byte after them (CLIENT_OPTIONAL_RESULTSET_METADATA) is ignored.
    public init(payload: ByteBuffer) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "COM_STMT_PREPARE_OK")
        let header = try reader.uint8("header")
        guard header == 0x00 else { throw reader.error("header \(MySQLPacketName.hex(header)) is not 0x00") }
        statementID = try reader.uint32("statement id")
        columnCount = Int(try reader.uint16("column count"))
        parameterCount = Int(try reader.uint16("parameter count"))
        warnings = 0
        if reader.remaining >= 3 {
            try reader.skip(1, "filler")
            warnings = try reader.uint16("warning count")
        }
    }
}

/// The LOCAL INFILE request: `0xFB` + the file name the client is asked to send (LOAD DATA LOCAL INFILE). The client
/// then sends the file's contents in packets and an empty packet, and the server answers OK or ERR.
public struct MySQLLocalInfileRequest: Equatable, Sendable {
    public var filename: String

    public init(filename: String) {
        self.filename = filename
    }

    public init(payload: ByteBuffer) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "LOCAL INFILE request")
        let header = try reader.uint8("header")
        guard header == 0xFB else { throw reader.error("header \(MySQLPacketName.hex(header)) is not 0xFB") }
        filename = MySQLPayloadReader.lenientString(reader.rest().readableBytesView)
    }
}

/// The first packet of a result set: the column count, and with MARIADB_CLIENT_CACHE_METADATA or MySQL's
/// CLIENT_OPTIONAL_RESULTSET_METADATA a byte saying whether column definitions follow.
public struct MySQLColumnCount: Equatable, Sendable {
    public var columnCount: Int
    public var metadataFollows: Bool

    public init(columnCount: Int, metadataFollows: Bool = true) {
        self.columnCount = columnCount
        self.metadataFollows = metadataFollows
    }

    /// Decodes the payload; `hasMetadataFlag` says whether the effective capabilities include one of the two
    /// capabilities above. A count of 0 or above 65,535 (MySQL allows 4,096 columns) is refused.
    public init(payload: ByteBuffer, hasMetadataFlag: Bool) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "column count packet")
        let count = try reader.lengthEncodedInteger("column count")
        guard (1...0xFFFF).contains(count) else { throw reader.error("column count \(count) is out of range") }
        columnCount = Int(count)
        metadataFollows = true
        if hasMetadataFlag {
            metadataFollows = try reader.uint8("metadata follows flag") != 0
        }
        try reader.finish()
    }
}

/// What a server sends during authentication, after the client's handshake response or CHANGE_USER and after each of
/// the client's auth answers (PROTOCOLS.md §2). The inspector relays all of it; the data of AuthSwitchRequest and
/// AuthMoreData is what the server sends (a nonce, a status byte, a public key), never the client's secret.
public enum MySQLAuthenticationPacket: Equatable, Sendable {
    /// Authentication succeeded.
    case ok(MySQLOKPacket)
    /// Authentication failed (e.g. 1045 ER_ACCESS_DENIED_ERROR).
    case error(MySQLErrorPacket)
    /// `0xFE` + plugin name NUL + plugin data: the client must answer with that plugin.
    case authSwitchRequest(pluginName: String, data: ByteBuffer)
    /// A lone `0xFE`: the pre-4.1 "use the old password hash" request.
    case oldAuthSwitchRequest
    /// `0x01` + data: a plugin's exchange, e.g. caching_sha2_password's `0x03` (fast auth succeeded, an OK follows) or
    /// `0x04` (full authentication needed), or a PEM public key.
    case authMoreData(ByteBuffer)

    /// Decodes an authentication-phase server payload.
    public init(payload: ByteBuffer, capabilities: MySQLCapabilities) throws(MySQLProtocolError) {
        var reader = MySQLPayloadReader(payload, context: "authentication packet")
        let header = try reader.uint8("header")
        switch header {
        case 0x00:
            self = .ok(try MySQLOKPacket(payload: payload, capabilities: capabilities))
        case 0xFF:
            self = .error(try MySQLErrorPacket(payload: payload, capabilities: capabilities))
        case 0xFE where reader.remaining == 0:
            self = .oldAuthSwitchRequest
        case 0xFE:
            let plugin = reader.nulStringOrRest("plugin name")
            self = .authSwitchRequest(pluginName: plugin, data: reader.rest())
        case 0x01:
            self = .authMoreData(reader.rest())
        default:
            throw MySQLProtocolError(
                kind: .unexpectedPacket,
                reason: "authentication packet with header \(MySQLPacketName.hex(header)) is none of OK, ERR, "
                    + "AuthSwitchRequest, AuthMoreData")
        }
    }
}

/// Small helpers for reasons.
enum MySQLPacketName {
    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "0x" + (digits.count == 1 ? "0" + digits : digits)
    }
}
