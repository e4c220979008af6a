import NIOCore

/// A client command: the payload of a packet with sequence id 0 after authentication, named by its first byte
/// (PROTOCOLS.md §2; MariaDB "Text protocol", "Binary protocol").
///
/// Every command byte decodes: one this type does not know becomes `.other(byte)`, not an error, since the server
/// answers it (usually with ERR 1047 "Unknown command"). Decode with the connection's effective capabilities (only
/// CLIENT_QUERY_ATTRIBUTES and CLIENT_SECURE_CONNECTION change a command's layout). A COM_STMT_EXECUTE's parameters
/// need the statement's parameter count from its COM_STMT_PREPARE_OK: read them with `decodeExecute`.
public enum MySQLCommand: Equatable, Sendable {
    /// 0x01 COM_QUIT: the server closes the connection without answering.
    case quit
    /// 0x02 COM_INIT_DB: `USE schema`.
    case initDB(schema: String)
    /// 0x03 COM_QUERY: the SQL, possibly several statements (CLIENT_MULTI_STATEMENTS); with CLIENT_QUERY_ATTRIBUTES,
    /// the attributes that precede it.
    case query(sql: String, attributes: [MySQLQueryAttribute])
    /// 0x04 COM_FIELD_LIST (deprecated): the columns of a table, answered by column definitions and an EOF.
    case fieldList(table: String, wildcard: String)
    /// 0x05 COM_CREATE_DB (gone from MySQL 8, still parsed by old servers).
    case createDB(schema: String)
    /// 0x06 COM_DROP_DB (gone from MySQL 8, still parsed by old servers): drops a database without any SQL.
    case dropDB(schema: String)
    /// 0x09 COM_STATISTICS: answered by one human-readable string packet.
    case statistics
    /// 0x0A COM_PROCESS_INFO (deprecated SHOW PROCESSLIST): answered by a result set.
    case processInfo
    /// 0x0C COM_PROCESS_KILL: KILL a connection.
    case processKill(connectionID: UInt32)
    /// 0x0E COM_PING.
    case ping
    /// 0x11 COM_CHANGE_USER: re-authenticates as `user` (an authentication exchange follows, like the handshake's).
    case changeUser(user: String, database: String?)
    /// 0x12 COM_BINLOG_DUMP: the server streams binary log events until EOF (replication clients; passed through).
    case binlogDump
    /// 0x1E COM_BINLOG_DUMP_GTID (MySQL): as `binlogDump`.
    case binlogDumpGTID
    /// 0x16 COM_STMT_PREPARE.
    case statementPrepare(sql: String)
    /// 0x17 COM_STMT_EXECUTE: `flags` is the cursor type (0 none, 1 read only, 2 for update, 4 scrollable; MySQL
    /// adds 0x08 PARAMETER_COUNT_AVAILABLE). Statement id 0xFFFFFFFF means "the one just prepared" (MariaDB 10.2+).
    case statementExecute(statementID: UInt32, flags: UInt8)
    /// 0x18 COM_STMT_SEND_LONG_DATA (no reply): `byteCount` bytes for parameter `parameter`, not kept.
    case statementSendLongData(statementID: UInt32, parameter: UInt16, byteCount: Int)
    /// 0x19 COM_STMT_CLOSE (no reply).
    case statementClose(statementID: UInt32)
    /// 0x1A COM_STMT_RESET.
    case statementReset(statementID: UInt32)
    /// 0x1B COM_SET_OPTION: 0 turns multi-statements on, 1 off.
    case setOption(UInt16)
    /// 0x1C COM_STMT_FETCH: `rowCount` more rows from a cursor.
    case statementFetch(statementID: UInt32, rowCount: UInt32)
    /// 0x1F COM_RESET_CONNECTION.
    case resetConnection
    /// 0xFA COM_STMT_BULK_EXECUTE (MariaDB, MARIADB_CLIENT_STMT_BULK_OPERATIONS): many rows of parameters at once;
    /// `flags` 64 SEND_UNIT_RESULTS, 128 SEND_TYPES_TO_SERVER. The rows are not decoded.
    case bulkExecute(statementID: UInt32, flags: UInt16)
    /// Any other command byte (COM_SLEEP, COM_REFRESH, COM_SHUTDOWN, COM_DEBUG, COM_TIME, COM_REGISTER_SLAVE …), the
    /// rest unread.
    case other(UInt8)

    /// The command byte.
    public var code: UInt8 {
        switch self {
        case .quit: 0x01
        case .initDB: 0x02
        case .query: 0x03
        case .fieldList: 0x04
        case .createDB: 0x05
        case .dropDB: 0x06
        case .statistics: 0x09
        case .processInfo: 0x0A
        case .processKill: 0x0C
        case .ping: 0x0E
        case .changeUser: 0x11
        case .binlogDump: 0x12
        case .statementPrepare: 0x16
        case .statementExecute: 0x17
        case .statementSendLongData: 0x18
        case .statementClose: 0x19
        case .statementReset: 0x1A
        case .setOption: 0x1B
        case .statementFetch: 0x1C
        case .binlogDumpGTID: 0x1E
        case .resetConnection: 0x1F
        case .bulkExecute: 0xFA
        case .other(let code): code
        }
    }

    /// The protocol's name for a command byte, e.g. `COM_QUERY`, or `COM_0x42` for one it does not name.
    public static func name(of code: UInt8) -> String {
        names[code] ?? "COM_\(MySQLPacketName.hex(code))"
    }

    private static let names: [UInt8: String] = [
        0x00: "COM_SLEEP", 0x01: "COM_QUIT", 0x02: "COM_INIT_DB", 0x03: "COM_QUERY", 0x04: "COM_FIELD_LIST",
        0x05: "COM_CREATE_DB", 0x06: "COM_DROP_DB", 0x07: "COM_REFRESH", 0x08: "COM_SHUTDOWN", 0x09: "COM_STATISTICS",
        0x0A: "COM_PROCESS_INFO", 0x0B: "COM_CONNECT", 0x0C: "COM_PROCESS_KILL", 0x0D: "COM_DEBUG", 0x0E: "COM_PING",
        0x0F: "COM_TIME", 0x10: "COM_DELAYED_INSERT", 0x11: "COM_CHANGE_USER", 0x12: "COM_BINLOG_DUMP",
        0x13: "COM_TABLE_DUMP", 0x14: "COM_CONNECT_OUT", 0x15: "COM_REGISTER_SLAVE", 0x16: "COM_STMT_PREPARE",
        0x17: "COM_STMT_EXECUTE", 0x18: "COM_STMT_SEND_LONG_DATA", 0x19: "COM_STMT_CLOSE", 0x1A: "COM_STMT_RESET",
        0x1B: "COM_SET_OPTION", 0x1C: "COM_STMT_FETCH", 0x1D: "COM_DAEMON", 0x1E: "COM_BINLOG_DUMP_GTID",
        0x1F: "COM_RESET_CONNECTION", 0xFA: "COM_STMT_BULK_EXECUTE",
    ]

    /// Decodes a command payload. An empty payload is an error (the server closes such a connection). Bytes after the
    /// fields the server reads are ignored, as the server does.
    public init(payload: ByteBuffer, capabilities: MySQLCapabilities) throws(MySQLProtocolError) {
        guard let code = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else {
            throw .malformed("command packet is empty")
        }
        var reader = MySQLPayloadReader(payload, context: Self.name(of: code))
        try reader.skip(1, "command byte")
        switch code {
        case 0x01:
            self = .quit
        case 0x02:
            self = .initDB(schema: Self.text(reader.rest()))
        case 0x03:
            var attributes: [MySQLQueryAttribute] = []
            if capabilities.contains(.queryAttributes) {
                attributes = try Self.queryAttributes(&reader)
            }
            self = .query(sql: Self.text(reader.rest()), attributes: attributes)
        case 0x04:
            let table = reader.nulStringOrRest("table")
            self = .fieldList(table: table, wildcard: Self.text(reader.rest()))
        case 0x05:
            self = .createDB(schema: Self.text(reader.rest()))
        case 0x06:
            self = .dropDB(schema: Self.text(reader.rest()))
        case 0x09:
            self = .statistics
        case 0x0A:
            self = .processInfo
        case 0x0C:
            self = .processKill(connectionID: try reader.uint32("connection id"))
        case 0x0E:
            self = .ping
        case 0x11:
            self = try Self.changeUser(&reader, capabilities: capabilities)
        case 0x12:
            self = .binlogDump
        case 0x1E:
            self = .binlogDumpGTID
        case 0x16:
            self = .statementPrepare(sql: Self.text(reader.rest()))
        case 0x17:
            let statementID = try reader.uint32("statement id")
            let flags = try reader.uint8("flags")
            // Iterations (always 1) and the parameters: `decodeExecute` reads them.
            _ = try reader.uint32("iteration count")
            self = .statementExecute(statementID: statementID, flags: flags)
        case 0x18:
            let statementID = try reader.uint32("statement id")
            let parameter = try reader.uint16("parameter id")
            self = .statementSendLongData(
                statementID: statementID, parameter: parameter, byteCount: reader.rest().readableBytes)
        case 0x19:
            self = .statementClose(statementID: try reader.uint32("statement id"))
        case 0x1A:
            self = .statementReset(statementID: try reader.uint32("statement id"))
        case 0x1B:
            self = .setOption(try reader.uint16("option"))
        case 0x1C:
            let statementID = try reader.uint32("statement id")
            self = .statementFetch(statementID: statementID, rowCount: try reader.uint32("row count"))
        case 0x1F:
            self = .resetConnection
        case 0xFA:
            let statementID = try reader.uint32("statement id")
            self = .bulkExecute(statementID: statementID, flags: try reader.uint16("bulk flags"))
        default:
            self = .other(code)
        }
    }

    /// SQL and names: UTF-8 with invalid bytes replaced (the connection's character set is usually utf8mb4).
    private static func text(_ bytes: ByteBuffer) -> String {
        MySQLPayloadReader.lenientString(bytes.readableBytesView)
    }

    /// COM_CHANGE_USER: user NUL, auth data (u8 length with CLIENT_SECURE_CONNECTION, else NUL-terminated), database
    /// NUL, then optionally character set u16, plugin NUL, attributes; only user and database are kept.
    private static func changeUser(
        _ reader: inout MySQLPayloadReader, capabilities: MySQLCapabilities
    ) throws(MySQLProtocolError) -> MySQLCommand {
        let user = try reader.nulString("user name")
        if capabilities.contains(.secureConnection) {
            try reader.skip(Int(try reader.uint8("auth response length")), "auth response")
        } else {
            _ = try reader.nulString("auth response")
        }
        let database = reader.remaining > 0 ? reader.nulStringOrRest("database") : nil
        _ = reader.rest()  // Character set, plugin name, attributes: not needed.
        return .changeUser(user: user, database: database)
    }

    /// The query attributes that precede a COM_QUERY's SQL with CLIENT_QUERY_ATTRIBUTES: parameter count lenenc,
    /// parameter set count lenenc (always 1), and when the count is not 0: NULL bitmap, new-params-bound flag (always
    /// 1), per attribute type u16 and name lenenc, then the values (MySQL `COM_QUERY`). With no attributes the prefix
    /// is `00 01`.
    private static func queryAttributes(
        _ reader: inout MySQLPayloadReader
    ) throws(MySQLProtocolError) -> [MySQLQueryAttribute] {
        // Each attribute takes at least a type (2 bytes) and a name length (1 byte).
        let count = try reader.lengthEncodedCount("query attribute", minimumElementSize: 3)
        let setCount = try reader.lengthEncodedInteger("parameter set count")
        guard setCount == 1 else { throw reader.error("parameter set count is \(setCount), not 1") }
        guard count > 0 else { return [] }
        let nullBitmap = try reader.bytes((count + 7) / 8, "NULL bitmap")
        let bound = try reader.uint8("new params bound flag")
        guard bound == 1 else {
            throw reader.error("query attributes without their types (new params bound flag \(bound))")
        }
        var types: [(MySQLParameterType, String)] = []
        types.reserveCapacity(count)
        for index in 0..<count {
            let type = try MySQLStatementExecute.parameterType(&reader, field: "type of attribute \(index + 1)")
            types.append((type, try reader.lengthEncodedString("name of attribute \(index + 1)")))
        }
        var attributes: [MySQLQueryAttribute] = []
        attributes.reserveCapacity(count)
        for (index, (type, name)) in types.enumerated() {
            let value: MySQLBinaryValue
            if MySQLStatementExecute.isNull(index, in: nullBitmap) {
                value = .null
            } else {
                value = try MySQLBinaryValue.read(type, from: &reader, field: "value of attribute \"\(name)\"")
            }
            attributes.append(MySQLQueryAttribute(name: name, type: type, value: value))
        }
        return attributes
    }
}

/// A query attribute (MySQL 8.0.23+, CLIENT_QUERY_ATTRIBUTES): a named value sent along with a statement, readable
/// with `mysql_query_attribute_string()`.
public struct MySQLQueryAttribute: Equatable, Sendable {
    public var name: String
    public var type: MySQLParameterType
    public var value: MySQLBinaryValue

    public init(name: String, type: MySQLParameterType, value: MySQLBinaryValue) {
        self.name = name
        self.type = type
        self.value = value
    }
}

/// What can be read from the head of a command too large to buffer (a `.streamStart` from a client's seq-0 packet):
/// the command and the fields before its bulk. The rest is relayed unread.
public enum MySQLStreamedCommand: Equatable, Sendable {
    /// COM_QUERY: the SQL's first bytes (a multi-megabyte INSERT); empty when query attributes fill the head.
    case query(sqlPrefix: String)
    /// COM_STMT_PREPARE: the SQL's first bytes.
    case statementPrepare(sqlPrefix: String)
    /// COM_STMT_EXECUTE with large parameter values.
    case statementExecute(statementID: UInt32)
    /// COM_STMT_SEND_LONG_DATA with a large chunk.
    case statementSendLongData(statementID: UInt32, parameter: UInt16)
    /// COM_STMT_BULK_EXECUTE with many rows.
    case bulkExecute(statementID: UInt32)
    /// Any other command byte.
    case other(UInt8)

    /// Reads `head`, as carried by `.streamStart`.
    public init(head: ByteBuffer, capabilities: MySQLCapabilities) throws(MySQLProtocolError) {
        guard let code = head.getInteger(at: head.readerIndex, as: UInt8.self) else {
            throw .malformed("streamed command has an empty head")
        }
        var reader = MySQLPayloadReader(head, context: MySQLCommand.name(of: code) + " (streamed)")
        try reader.skip(1, "command byte")
        switch code {
        case 0x03:
            if capabilities.contains(.queryAttributes) {
                // The attributes must fit the head for the SQL to start in it.
                if case .query(let sql, _)? = try? MySQLCommand(payload: head, capabilities: capabilities) {
                    self = .query(sqlPrefix: sql)
                } else {
                    self = .query(sqlPrefix: "")
                }
            } else {
                self = .query(sqlPrefix: MySQLPayloadReader.lenientString(reader.rest().readableBytesView))
            }
        case 0x16:
            self = .statementPrepare(sqlPrefix: MySQLPayloadReader.lenientString(reader.rest().readableBytesView))
        case 0x17:
            self = .statementExecute(statementID: try reader.uint32("statement id"))
        case 0x18:
            let statementID = try reader.uint32("statement id")
            self = .statementSendLongData(statementID: statementID, parameter: try reader.uint16("parameter id"))
        case 0xFA:
            self = .bulkExecute(statementID: try reader.uint32("statement id"))
        default:
            self = .other(code)
        }
    }
}
