import NIOCore
import SluiceMySQL
import Testing

@Suite("MySQL commands")
struct MySQLCommandTests {
    static let capabilities: MySQLCapabilities = [.protocol41, .secureConnection, .pluginAuth, .multiStatements]

    static func command(_ bytes: [UInt8], _ capabilities: MySQLCapabilities = capabilities) throws -> MySQLCommand {
        try MySQLCommand(payload: buffer(bytes), capabilities: capabilities)
    }

    static func clientPayload(_ step: String, in session: [CapturedStep] = MariaDBCaptures.classic) -> ByteBuffer {
        session[named: step].clientPayloads.first ?? ByteBuffer()
    }

    /// The statement id of a captured COM_STMT_PREPARE's answer.
    static func statementID(_ step: String) -> UInt32 {
        let payload = MariaDBCaptures.classic[named: step].serverPayloads.first ?? ByteBuffer()
        return payload.getInteger(at: payload.readerIndex + 1, endianness: .little, as: UInt32.self) ?? 0
    }

    @Test("the captured commands decode")
    func capturedCommands() throws {
        let caps = Self.capabilities
        func decode(_ step: String) throws -> MySQLCommand {
            try MySQLCommand(payload: Self.clientPayload(step), capabilities: caps)
        }
        #expect(try decode("COM_QUERY select 1") == .query(sql: "select 1", attributes: []))
        #expect(
            try decode("COM_QUERY multi")
                == .query(sql: "select 1; select 2, 'x'; insert into t (name) values ('m')", attributes: []))
        #expect(
            try decode("COM_STMT_PREPARE insert")
                == .statementPrepare(sql: "insert into t (id, name, ts) values (?, ?, ?)"))
        let select = Self.statementID("COM_STMT_PREPARE select")
        #expect(try decode("COM_STMT_EXECUTE select (int)") == .statementExecute(statementID: select, flags: 0))
        #expect(try decode("COM_STMT_EXECUTE select with cursor") == .statementExecute(statementID: select, flags: 1))
        #expect(try decode("COM_STMT_FETCH 2 rows") == .statementFetch(statementID: select, rowCount: 2))
        #expect(try decode("COM_STMT_RESET") == .statementReset(statementID: select))
        #expect(try decode("COM_STMT_CLOSE (no reply)") == .statementClose(statementID: select))
        #expect(try decode("COM_PING") == .ping)
        #expect(try decode("COM_INIT_DB") == .initDB(schema: "sluice"))
        #expect(try decode("COM_SET_OPTION off") == .setOption(1))
        #expect(try decode("COM_SET_OPTION on") == .setOption(0))
        #expect(try decode("COM_STATISTICS") == .statistics)
        #expect(try decode("COM_FIELD_LIST t") == .fieldList(table: "t", wildcard: ""))
        #expect(try decode("unknown command 0x42") == .other(0x42))
        #expect(try decode("COM_RESET_CONNECTION") == .resetConnection)
        #expect(try decode("COM_QUIT") == .quit)
        #expect(MySQLCommand.name(of: 0x42) == "COM_0x42")
        #expect(MySQLCommand.name(of: 0x16) == "COM_STMT_PREPARE")
    }

    @Test("every command byte decodes, unknown ones to .other", arguments: Array(0...255) as [Int])
    func everyCommandByte(code: Int) throws {
        // Enough zero bytes for any fixed fields.
        let payload = [UInt8(code)] + [UInt8](repeating: 0, count: 16)
        let command = try Self.command(payload)
        #expect(command.code == UInt8(code))
        let known: Set<Int> = [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0A, 0x0C, 0x0E, 0x11, 0x12, 0x16, 0x17, 0x18, 0x19, 0x1A,
            0x1B, 0x1C, 0x1E, 0x1F, 0xFA,
        ]
        #expect((command == .other(UInt8(code))) == !known.contains(code))
    }

    @Test("hand-written commands: CHANGE_USER, SEND_LONG_DATA, BULK_EXECUTE, PROCESS_KILL, DROP_DB")
    func handWritten() throws {
        let changeUser =
            [0x11] + Wire.cstring("bob") + [3, 9, 9, 9] + Wire.cstring("shop") + Wire.uint16(45)
            + Wire.cstring("mysql_native_password")
        #expect(try Self.command(changeUser) == .changeUser(user: "bob", database: "shop"))
        let longData = [0x18] + Wire.uint32(7) + Wire.uint16(2) + Array("chunk".utf8)
        #expect(try Self.command(longData) == .statementSendLongData(statementID: 7, parameter: 2, byteCount: 5))
        let bulk = [0xFA] + Wire.uint32(0xFFFF_FFFF) + Wire.uint16(128) + [0x03, 0x00, 0x00] + Wire.uint32(1)
        #expect(try Self.command(bulk) == .bulkExecute(statementID: 0xFFFF_FFFF, flags: 128))
        #expect(try Self.command([0x0C] + Wire.uint32(42)) == .processKill(connectionID: 42))
        #expect(try Self.command([0x06] + Array("prod".utf8)) == .dropDB(schema: "prod"))
        #expect(try Self.command([0x12] + Wire.uint32(4) + Wire.uint16(0) + Wire.uint32(2)) == .binlogDump)
    }

    @Test("malformed commands: empty, fixed fields cut short")
    func malformed() {
        #expect(reason { _ = try Self.command([]) } == "command packet is empty")
        #expect(reason { _ = try Self.command([0x19, 1, 2]) } == "COM_STMT_CLOSE: statement id is missing")
        #expect(reason { _ = try Self.command([0x1C] + Wire.uint32(1)) } == "COM_STMT_FETCH: row count is missing")
        #expect(kind { _ = try Self.command([0x11] + Array("no-nul".utf8)) } == .malformedPacket)
        #expect(
            reason { _ = try Self.command([0x11] + Wire.cstring("bob") + [20, 1, 2]) }
                == "COM_CHANGE_USER: auth response needs 20 bytes but 2 remain")
    }

    // MARK: Query attributes

    @Test("COM_QUERY with CLIENT_QUERY_ATTRIBUTES: no attributes is 03 00 01 <sql>")
    func emptyQueryAttributes() throws {
        let caps = Self.capabilities.union(.queryAttributes)
        #expect(
            try Self.command([0x03, 0x00, 0x01] + Array("select 1".utf8), caps)
                == .query(sql: "select 1", attributes: []))
        // Without the capability the same bytes are SQL.
        #expect(
            try Self.command([0x03, 0x00, 0x01] + Array("select 1".utf8))
                == .query(sql: "\u{0}\u{1}select 1", attributes: []))
    }

    @Test("COM_QUERY with two query attributes, one NULL")
    func queryAttributes() throws {
        let caps = Self.capabilities.union(.queryAttributes)
        let payload =
            [0x03, 0x02, 0x01, 0b10, 0x01] + [0xFD, 0x00] + Wire.lenencString("trace")
            + [0x08, 0x80] + Wire.lenencString("n") + Wire.lenencString("abc") + Array("select 1".utf8)
        let expected: MySQLCommand = .query(
            sql: "select 1",
            attributes: [
                MySQLQueryAttribute(
                    name: "trace", type: MySQLParameterType(type: .varString),
                    value: .bytes(buffer(Array("abc".utf8)))),
                MySQLQueryAttribute(
                    name: "n", type: MySQLParameterType(type: .longLong, isUnsigned: true), value: .null),
            ])
        #expect(try Self.command(payload, caps) == expected)
        // A count larger than the payload is refused before anything is allocated.
        #expect(
            reason { _ = try Self.command([0x03, 0xFC, 0xFF, 0xFF, 0x01], caps) }
                == "COM_QUERY: query attribute count 65535 needs at least 65535 × 3 bytes but 1 remain")
        #expect(
            reason { _ = try Self.command([0x03, 0x01, 0x02, 0x00, 0x00, 0x00], caps) }
                == "COM_QUERY: parameter set count is 2, not 1")
    }

    // MARK: COM_STMT_EXECUTE

    @Test("a captured execution with int, string and NULL parameters")
    func executeIntStringNull() throws {
        let payload = Self.clientPayload("COM_STMT_EXECUTE insert (int, string, NULL)")
        let execute = try MySQLCommand.decodeExecute(payload, parameterCount: 3)
        #expect(execute.statementID == Self.statementID("COM_STMT_PREPARE insert"))
        #expect(execute.flags == 0)
        #expect(execute.iterations == 1)
        #expect(execute.typesWereSent)
        #expect(execute.parameterTypes.map(\.type) == [.longLong, .varString, .null])
        #expect(execute.parameters == [.integer(10), .bytes(buffer(Array("héllo".utf8))), .null])
        #expect(execute.parameterTexts == ["10", "héllo", nil])
        #expect(execute.attributes.isEmpty)
    }

    @Test("an execution that does not resend its types needs the earlier ones")
    func executeWithoutTypes() throws {
        let first = try MySQLCommand.decodeExecute(
            Self.clientPayload("COM_STMT_EXECUTE select (int)"), parameterCount: 1)
        #expect(first.parameterTypes == [MySQLParameterType(type: .long)])
        #expect(first.parameters == [.integer(0)])
        let again = Self.clientPayload("COM_STMT_EXECUTE select again, types not resent")
        #expect(kind { _ = try MySQLCommand.decodeExecute(again, parameterCount: 1) } == .missingContext)
        let decoded = try MySQLCommand.decodeExecute(again, parameterCount: 1, boundTypes: first.parameterTypes)
        #expect(!decoded.typesWereSent)
        #expect(decoded.parameterTexts == ["1"])
        #expect(
            kind { _ = try MySQLCommand.decodeExecute(again, parameterCount: 1, boundTypes: []) } == .missingContext)
    }

    @Test("a captured execution with a date, a datetime with microseconds, a negative time and a double")
    func executeDates() throws {
        let payload = Self.clientPayload("COM_STMT_EXECUTE dates")
        let execute = try MySQLCommand.decodeExecute(payload, parameterCount: 4)
        #expect(
            execute.parameters == [
                .date(MySQLDateTime(year: 2024, month: 2, day: 29)),
                .dateTime(
                    MySQLDateTime(year: 2024, month: 2, day: 29, hour: 13, minute: 14, second: 15, microsecond: 123_456)
                ),
                .time(MySQLTime(isNegative: true, days: 1, hour: 2, minute: 3, second: 4)),
                .double(2.5),
            ])
        #expect(execute.parameterTexts == ["2024-02-29", "2024-02-29 13:14:15.123456", "-26:03:04", "2.5"])
    }

    @Test("integer widths, signedness, float, zero-length dates, a BLOB that is not UTF-8, and long data")
    func executeValues() throws {
        let types: [(UInt8, UInt8)] = [
            (0x01, 0x00), (0x01, 0x80), (0x02, 0x00), (0x03, 0x80), (0x08, 0x80), (0x04, 0x00), (0x0C, 0x00),
            (0x0B, 0x00), (0xFC, 0x00), (0xFC, 0x00), (0xF6, 0x00),
        ]
        var payload: [UInt8] = [0x17] + Wire.uint32(9) + [0] + Wire.uint32(1)
        payload += [0x00, 0x00, 0x01] + types.flatMap { [$0.0, $0.1] }
        payload += [0xFF, 0xFF] + Wire.uint16(0x8000) + Wire.uint32(0xFFFF_FFFF) + Wire.uint64(UInt64.max)
        payload += Wire.uint32(Float(1.5).bitPattern) + [0] + [0]
        payload += Wire.lenenc(3) + [0xDE, 0xAD, 0xBE]
        // Parameter 9 was sent with COM_STMT_SEND_LONG_DATA: no value here.
        payload += Wire.lenencString("3.14")
        let execute = try MySQLCommand.decodeExecute(buffer(payload), parameterCount: 11, longDataParameters: [9])
        #expect(
            execute.parameterTexts == [
                "-1", "255", "-32768", "4294967295", "18446744073709551615", "1.5", "0000-00-00 00:00:00", "00:00:00",
                "0xdeadbe", "<long data>", "3.14",
            ])
        #expect(execute.parameterTypes[4].description == "LONGLONG UNSIGNED")
    }

    @Test("malformed executions: counts larger than the payload, unknown types, cut values")
    func executeMalformed() {
        let head: [UInt8] = [0x17] + Wire.uint32(1) + [0] + Wire.uint32(1)
        #expect(
            reason { _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1]), parameterCount: 5000) }
                == "COM_STMT_EXECUTE: 5000 parameters need a NULL bitmap of 625 bytes and a flag byte, but 2 bytes "
                + "remain")
        #expect(
            reason { _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1, 0x03, 0x00]), parameterCount: 2) }
                == "COM_STMT_EXECUTE: 2 parameter types need at least 4 bytes but 2 remain")
        #expect(
            kind { _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1, 0x13, 0x00, 1]), parameterCount: 1) }
                == .missingContext)
        #expect(
            reason { _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1, 0x03, 0x00, 1, 2]), parameterCount: 1) }
                == "COM_STMT_EXECUTE: parameter 1 is missing")
        #expect(
            reason {
                _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1, 0xFD, 0x00, 0xFC, 0x10]), parameterCount: 1)
            } == "COM_STMT_EXECUTE: parameter 1 length is missing")
        #expect(
            reason {
                _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1, 0xFD, 0x00, 0x09, 1]), parameterCount: 1)
            } == "COM_STMT_EXECUTE: parameter 1 length 9 exceeds the 1 bytes left")
        #expect(
            reason { _ = try MySQLCommand.decodeExecute(buffer(head + [0, 1, 0x0A, 0x00, 5]), parameterCount: 1) }
                == "COM_STMT_EXECUTE: parameter 1: a DATE of 5 bytes is not 0, 4, 7 or 11")
        #expect(
            reason { _ = try MySQLCommand.decodeExecute(buffer([0x16, 1]), parameterCount: 0) }
                == "COM_STMT_EXECUTE: command byte 0x16 is not 0x17")
        // No parameters: nothing after the iteration count is read.
        #expect((try? MySQLCommand.decodeExecute(buffer(head), parameterCount: 0))?.parameters == [])
    }

    @Test("MySQL 8 executions with query attributes after the parameters")
    func executeWithAttributes() throws {
        let caps = Self.capabilities.union(.queryAttributes)
        var payload: [UInt8] = [0x17] + Wire.uint32(3) + [0x08] + Wire.uint32(1)
        payload +=
            [0x02, 0b00, 0x01] + [0x03, 0x00] + Wire.lenencString("") + [0xFD, 0x00] + Wire.lenencString("app")
        payload += Wire.uint32(7) + Wire.lenencString("shop")
        let execute = try MySQLCommand.decodeExecute(buffer(payload), parameterCount: 1, capabilities: caps)
        #expect(execute.parameters == [.integer(7)])
        #expect(execute.parameterTypes == [MySQLParameterType(type: .long)])
        #expect(
            execute.attributes == [
                MySQLQueryAttribute(
                    name: "app", type: MySQLParameterType(type: .varString), value: .bytes(buffer(Array("shop".utf8))))
            ])
    }

    // MARK: Streamed commands

    @Test("the head of a streamed command names it")
    func streamedCommands() throws {
        let sql = "INSERT INTO t VALUES ('" + String(repeating: "x", count: 2000)
        let query = buffer(Array(([0x03] + Array(sql.utf8)).prefix(1024)))
        #expect(
            try MySQLStreamedCommand(head: query, capabilities: Self.capabilities)
                == .query(sqlPrefix: String(sql.prefix(1023))))
        let longData = buffer([0x18] + Wire.uint32(4) + Wire.uint16(1) + [1, 2, 3])
        #expect(
            try MySQLStreamedCommand(head: longData, capabilities: Self.capabilities)
                == .statementSendLongData(statementID: 4, parameter: 1))
        #expect(
            try MySQLStreamedCommand(head: buffer([0x17] + Wire.uint32(8)), capabilities: Self.capabilities)
                == .statementExecute(statementID: 8))
        #expect(kind { _ = try MySQLStreamedCommand(head: ByteBuffer(), capabilities: []) } == .malformedPacket)
    }
}

@Suite("MySQL length-encoded values")
struct MySQLLengthEncodedTests {
    @Test("integers of every width round-trip at their boundaries")
    func roundTrip() throws {
        for value: UInt64 in [0, 1, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000, UInt64.max] {
            var written = ByteBuffer()
            MySQLLengthEncoded.writeInteger(value, into: &written)
            #expect(written.readableBytes == MySQLLengthEncoded.size(of: value))
            #expect(Array(written.readableBytesView) == Wire.lenenc(value))
            #expect(try MySQLLengthEncoded.readInteger(from: &written) == value)
            #expect(written.readableBytes == 0)
        }
    }

    @Test("0xFB is NULL for strings and an error for integers; 0xFF is never valid; truncation consumes nothing")
    func invalid() throws {
        var null = buffer([0xFB, 0x01])
        #expect(try MySQLLengthEncoded.readNullableBytes(from: &null) == nil)
        #expect(null.readableBytes == 1)
        var nullInteger = buffer([0xFB])
        #expect(
            reason { _ = try MySQLLengthEncoded.readInteger(from: &nullInteger) }
                == "length-encoded integer: value is NULL (length-encoded prefix 0xFB) where an integer is required")
        #expect(nullInteger.readableBytes == 1)
        var ff = buffer([0xFF, 0x00, 0x00])
        #expect(
            reason { _ = try MySQLLengthEncoded.readInteger(from: &ff) }
                == "length-encoded integer: value has the invalid length-encoded prefix 0xFF")
        #expect(ff.readableBytes == 3)
        for truncated in [[0xFC, 0x01], [0xFD, 0x01, 0x02], [0xFE, 1, 2, 3, 4, 5, 6, 7], []] as [[UInt8]] {
            var input = buffer(truncated)
            #expect(kind { _ = try MySQLLengthEncoded.readInteger(from: &input) } == .malformedPacket)
            #expect(input.readableBytes == truncated.count)
        }
        var string = buffer([0x03, 0x61, 0x62])
        #expect(
            reason { _ = try MySQLLengthEncoded.readBytes(from: &string) }
                == "length-encoded string: value length 3 exceeds the 2 bytes left")
        var huge = buffer([0xFE] + Wire.uint64(UInt64.max))
        #expect(kind { _ = try MySQLLengthEncoded.readBytes(from: &huge) } == .malformedPacket)
        var good = buffer([0x02, 0x61, 0x62, 0x63])
        #expect(try MySQLLengthEncoded.readBytes(from: &good) == buffer([0x61, 0x62]))
        #expect(good.readableBytes == 1)
    }
}
