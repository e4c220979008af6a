import NIOCore
import SluicePostgres
import Testing

/// Frames `bytes` (which must be exactly one backend message) and decodes it.
private func decode(_ bytes: [UInt8]) throws -> PostgresBackendMessage {
    var framer = PostgresFramer(direction: .backend)
    var input = buffer(bytes)
    let frame = try #require(try framer.next(&input))
    #expect(input.readableBytes == 0, "input held more than one message")
    guard case .message(let type, let body) = frame.kind else {
        throw PostgresProtocolError(kind: .malformedMessage, reason: "test: streamed \(frame.kind)")
    }
    return try PostgresBackendMessage(type: type, body: body)
}

private func failure(_ bytes: [UInt8]) -> String? {
    reason { _ = try decode(bytes) }
}

private func field(_ code: Unicode.Scalar, _ value: String) -> [UInt8] {
    Wire.byte(code) + Wire.cstring(value)
}

@Suite("PostgresBackendMessage")
struct PostgresBackendMessageTests {
    // MARK: Authentication

    /// PostgreSQL 15 on a TLS connection with scram-sha-256 in pg_hba.conf: channel binding first.
    static let saslOverTLS = hexBytes(
        """
        52 00 00 00 2a 00 00 00 0a 53 43 52 41 4d 2d 53 48 41 2d 32 35 36 2d 50 4c 55 53 00
        53 43 52 41 4d 2d 53 48 41 2d 32 35 36 00 00
        """)

    @Test("every Authentication request")
    func authentication() throws {
        #expect(try decode(Wire.message("R", Wire.int32(0))) == .authentication(.ok))
        #expect(try decode(Wire.message("R", Wire.int32(2))) == .authentication(.kerberosV5))
        #expect(try decode(Wire.message("R", Wire.int32(3))) == .authentication(.cleartextPassword))
        #expect(
            try decode(hexBytes("52 00 00 00 0c 00 00 00 05 9c 2e 41 f7"))
                == .authentication(.md5Password(salt: [0x9C, 0x2E, 0x41, 0xF7])))
        #expect(try decode(Wire.message("R", Wire.int32(7))) == .authentication(.gss))
        #expect(try decode(Wire.message("R", Wire.int32(8), [0x60, 0x82, 0x01])) == .authentication(.gssContinue))
        #expect(try decode(Wire.message("R", Wire.int32(9))) == .authentication(.sspi))
        #expect(
            try decode(Self.saslOverTLS)
                == .authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])))
        let serverFirst = Array(
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8)
        #expect(try decode(Wire.message("R", Wire.int32(11), serverFirst)) == .authentication(.saslContinue))
        #expect(
            try decode(Wire.message("R", Wire.int32(12), Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)))
                == .authentication(.saslFinal))
        #expect(try decode(Wire.message("R", Wire.int32(6))) == .authentication(.other(code: 6)))
        #expect(PostgresAuthenticationRequest.sasl(mechanisms: []).code == 10)
    }

    @Test("malformed Authentication requests")
    func malformedAuthentication() {
        #expect(failure(Wire.message("R", Wire.int32(0), [0])) == "backend 'R' Authentication: 1 trailing bytes")
        #expect(
            failure(Wire.message("R", Wire.int32(5), [1, 2]))
                == "backend 'R' Authentication: MD5 salt needs 4 bytes but 2 remain")
        #expect(
            failure(Wire.message("R", Wire.int32(10), Wire.cstring("SCRAM-SHA-256")))
                == "backend 'R' Authentication: SASL mechanism list has no terminating NUL")
        #expect(
            failure(Wire.message("R", Wire.int32(10), Array("SCRAM".utf8)))
                == "backend 'R' Authentication: SASL mechanism name has no NUL terminator")
        #expect(failure(Wire.message("R", [0, 0])) == "backend 'R' Authentication: authentication code is missing")
    }

    // MARK: After authentication

    @Test("ParameterStatus and BackendKeyData (3.0 and 3.2 keys)")
    func parameterStatusAndKey() throws {
        #expect(
            try decode(Wire.message("S", Wire.cstring("server_version"), Wire.cstring("15.8 (Debian 15.8-0+deb12u1)")))
                == .parameterStatus(name: "server_version", value: "15.8 (Debian 15.8-0+deb12u1)"))
        #expect(
            try decode(hexBytes("4b 00 00 00 0c 00 00 30 39 5b 2c 11 08"))
                == .backendKeyData(processID: 12345, secretKey: [0x5B, 0x2C, 0x11, 0x08]))
        let key = [UInt8](repeating: 0xA5, count: 32)
        #expect(try decode(Wire.message("K", Wire.int32(99), key)) == .backendKeyData(processID: 99, secretKey: key))
        #expect(
            failure(Wire.message("K", Wire.int32(99), [1, 2]))
                == "backend 'K' BackendKeyData: secret key of 2 bytes is not 4 to 256 bytes")
        #expect(
            failure(Wire.message("S", Wire.cstring("TimeZone")))
                == "backend 'S' ParameterStatus: parameter value has no NUL terminator")
    }

    @Test("ReadyForQuery in each transaction status")
    func readyForQuery() throws {
        #expect(try decode(hexBytes("5a 00 00 00 05 49")) == .readyForQuery(.idle))
        #expect(try decode(hexBytes("5a 00 00 00 05 54")) == .readyForQuery(.inTransaction))
        #expect(try decode(hexBytes("5a 00 00 00 05 45")) == .readyForQuery(.failed))
        #expect(
            failure(hexBytes("5a 00 00 00 05 58")) == "backend 'Z' ReadyForQuery: transaction status X is not I, T or E"
        )
        #expect(failure(hexBytes("5a 00 00 00 04")) == "backend 'Z' ReadyForQuery: transaction status is missing")
        #expect(failure(hexBytes("5a 00 00 00 06 49 49")) == "backend 'Z' ReadyForQuery: 1 trailing bytes")
    }

    // MARK: Query results

    @Test("the server's reply to psql's SELECT 1")
    func select1Reply() throws {
        var framer = PostgresFramer(direction: .backend)
        var input = buffer(PostgresFramerTests.select1Reply)
        var messages: [PostgresBackendMessage] = []
        while let frame = try framer.next(&input) {
            guard case .message(let type, let body) = frame.kind else { continue }
            messages.append(try PostgresBackendMessage(type: type, body: body))
        }
        #expect(
            messages == [
                .rowDescription([
                    .init(
                        name: "?column?", tableOID: 0, columnAttributeNumber: 0, dataTypeOID: 23, dataTypeSize: 4,
                        typeModifier: -1, formatCode: 0)
                ]),
                .dataRow(columns: [buffer(Array("1".utf8))]), .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle),
            ])
    }

    @Test("DataRow with NULL and empty values; RowDescription with two columns")
    func rows() throws {
        #expect(
            try decode(Wire.message("D", Wire.int16(3), Wire.value(nil), Wire.value([]), Wire.value([0x41])))
                == .dataRow(columns: [nil, ByteBuffer(), buffer([0x41])]))
        #expect(try decode(Wire.message("D", Wire.int16(0))) == .dataRow(columns: []))
        let description = Wire.message(
            "T", Wire.int16(2), Wire.cstring("aid"), Wire.uint32(16_397), Wire.int16(1), Wire.uint32(23), Wire.int16(4),
            Wire.int32(-1), Wire.int16(0), Wire.cstring("filler"), Wire.uint32(16_397), Wire.int16(4),
            Wire.uint32(1042), Wire.int16(-1), Wire.int32(88), Wire.int16(1))
        guard case .rowDescription(let fields) = try decode(description) else {
            Issue.record("not a RowDescription")
            return
        }
        #expect(fields.map(\.name) == ["aid", "filler"])
        #expect(fields.last?.typeModifier == 88)
        #expect(fields.last?.dataTypeSize == -1)
        #expect(fields.last?.formatCode == 1)
    }

    @Test("malformed rows")
    func malformedRows() {
        #expect(failure(Wire.message("D", Wire.int16(-1))) == "backend 'D' DataRow: column count -1 is negative")
        #expect(
            failure(Wire.message("D", Wire.int16(2), Wire.value([1])))
                == "backend 'D' DataRow: column count 2 needs at least 8 bytes but 5 remain")
        #expect(
            failure(Wire.message("D", Wire.int16(1), Wire.int32(9), [1]))
                == "backend 'D' DataRow: column 1 needs 9 bytes but 1 remain")
        #expect(
            failure(Wire.message("D", Wire.int16(1), Wire.int32(-3)))
                == "backend 'D' DataRow: column 1 length -3 is negative")
        #expect(
            failure(Wire.message("T", Wire.int16(1), Wire.cstring("a"), [0, 0]))
                == "backend 'T' RowDescription: field count 1 needs at least 19 bytes but 4 remain")
        #expect(
            failure(Wire.message("T", Wire.int16(1), Array("abcdefghijklmnopqrstuvwxyz".utf8)))
                == "backend 'T' RowDescription: field name has no NUL terminator")
        #expect(
            failure(Wire.message("C", Array("SELECT 1".utf8)))
                == "backend 'C' CommandComplete: command tag has no NUL terminator")
    }

    @Test("CommandComplete tags, EmptyQueryResponse and the extended-protocol acknowledgements")
    func acknowledgements() throws {
        #expect(try decode(Wire.message("C", Wire.cstring("INSERT 0 5"))) == .commandComplete(tag: "INSERT 0 5"))
        #expect(try decode(Wire.message("I")) == .emptyQueryResponse)
        #expect(try decode(Wire.message("1")) == .parseComplete)
        #expect(try decode(Wire.message("2")) == .bindComplete)
        #expect(try decode(Wire.message("3")) == .closeComplete)
        #expect(try decode(Wire.message("n")) == .noData)
        #expect(try decode(Wire.message("s")) == .portalSuspended)
        #expect(try decode(Wire.message("c")) == .copyDone)
        #expect(failure(Wire.message("1", [0])) == "backend '1' ParseComplete: 1 trailing bytes")
        #expect(
            try decode(Wire.message("t", Wire.int16(2), Wire.uint32(23), Wire.uint32(25)))
                == .parameterDescription(parameterTypes: [23, 25]))
        #expect(
            failure(Wire.message("t", Wire.int16(1)))
                == "backend 't' ParameterDescription: parameter type count 1 needs at least 4 bytes but 0 remain")
    }

    @Test("pgbench -M extended: the server's reply to one P/B/D/E/S batch")
    func pgbenchReply() throws {
        let reply =
            Wire.message("1") + Wire.message("2")
            + Wire.message(
                "T", Wire.int16(1), Wire.cstring("abalance"), Wire.uint32(16_397), Wire.int16(3), Wire.uint32(23),
                Wire.int16(4), Wire.int32(-1), Wire.int16(0))
            + Wire.message("D", Wire.int16(1), Wire.value(Array("-2104".utf8)))
            + Wire.message("C", Wire.cstring("SELECT 1")) + Wire.message("Z", Wire.byte("I"))
        var framer = PostgresFramer(direction: .backend)
        let outcome = frame(reply, with: &framer)
        #expect(outcome.violations.isEmpty)
        let decoded = decodeAll(outcome.frames, direction: .backend)
        #expect(decoded.error == nil)
        #expect(decoded.messages.count == 6)
        #expect(decoded.messages.first == "parseComplete")
    }

    // MARK: Errors and notices

    /// PostgreSQL 15's answer to `SELECT * FROM nosuch`.
    static let undefinedTable: [UInt8] = Wire.message(
        "E", field("S", "ERROR"), field("V", "ERROR"), field("C", "42P01"),
        field("M", "relation \"nosuch\" does not exist"), field("P", "15"), field("F", "parse_relation.c"),
        field("L", "1392"), field("R", "parserOpenTable"), [0])

    @Test("ErrorResponse keeps every field in order")
    func errorResponse() throws {
        guard case .errorResponse(let fields) = try decode(Self.undefinedTable) else {
            Issue.record("not an ErrorResponse")
            return
        }
        #expect(fields.severity == "ERROR")
        #expect(fields.sqlState == "42P01")
        #expect(fields.message == "relation \"nosuch\" does not exist")
        #expect(fields.position == 15)
        #expect(fields.detail == nil)
        #expect(fields.hint == nil)
        #expect(fields["R"] == "parserOpenTable")
        #expect(fields.fields.map { String(UnicodeScalar($0.code)) } == ["S", "V", "C", "M", "P", "F", "L", "R"])
    }

    @Test("NoticeResponse, with a localised S and the unlocalised V")
    func noticeResponse() throws {
        let notice = Wire.message(
            "N", field("S", "HINWEIS"), field("V", "NOTICE"), field("C", "00000"),
            field("M", "table \"nosuch\" does not exist, skipping"), field("F", "tablecmds.c"), [0])
        guard case .noticeResponse(let fields) = try decode(notice) else {
            Issue.record("not a NoticeResponse")
            return
        }
        #expect(fields.severity == "NOTICE")
        #expect(fields["S"] == "HINWEIS")
        #expect(fields.message == "table \"nosuch\" does not exist, skipping")
    }

    @Test("malformed ErrorResponse: no terminator, value without NUL, bytes after the terminator")
    func malformedError() {
        #expect(
            failure(Wire.message("E", field("S", "ERROR")))
                == "backend 'E' ErrorResponse: field code (or the terminating NUL) is missing")
        #expect(
            failure(Wire.message("E", Wire.byte("M"), Array("oops".utf8)))
                == "backend 'E' ErrorResponse: value of field M has no NUL terminator")
        #expect(
            failure(Wire.message("E", field("M", "x"), [0, 0x41])) == "backend 'E' ErrorResponse: 1 trailing bytes")
        #expect(
            failure(Wire.message("N", [0x01]))
                == "backend 'N' NoticeResponse: value of field 0x01 has no NUL terminator")
    }

    // MARK: COPY, notifications, negotiation, fast path

    @Test("CopyIn, CopyOut and CopyBoth responses; CopyData")
    func copy() throws {
        let response = PostgresBackendMessage.CopyResponse(format: 0, columnFormats: [0, 0])
        #expect(
            try decode(Wire.message("G", [0], Wire.int16(2), Wire.int16(0), Wire.int16(0))) == .copyInResponse(response)
        )
        #expect(
            try decode(Wire.message("H", [0], Wire.int16(2), Wire.int16(0), Wire.int16(0)))
                == .copyOutResponse(response))
        #expect(
            try decode(Wire.message("W", [1], Wire.int16(0)))
                == .copyBothResponse(.init(format: 1, columnFormats: [])))
        #expect(try decode(Wire.message("d", Array("1\tone\n".utf8))) == .copyData(buffer(Array("1\tone\n".utf8))))
        #expect(
            failure(Wire.message("H", [0], Wire.int16(-1)))
                == "backend 'H' CopyOutResponse: column format count -1 is negative")
        #expect(failure(Wire.message("G", [0])) == "backend 'G' CopyInResponse: column format count is missing")
    }

    @Test("NotificationResponse")
    func notification() throws {
        #expect(
            try decode(Wire.message("A", Wire.int32(4711), Wire.cstring("orders"), Wire.cstring("{\"id\": 7}")))
                == .notificationResponse(processID: 4711, channel: "orders", payload: "{\"id\": 7}"))
        #expect(
            failure(Wire.message("A", Wire.int32(4711), Wire.cstring("orders")))
                == "backend 'A' NotificationResponse: payload has no NUL terminator")
    }

    @Test("NegotiateProtocolVersion: a 3.0 server answering 3.2 with an unknown _pq_ option")
    func negotiate() throws {
        #expect(
            try decode(Wire.message("v", Wire.int32(0), Wire.int32(1), Wire.cstring("_pq_.test_option")))
                == .negotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: ["_pq_.test_option"]))
        #expect(
            try decode(Wire.message("v", Wire.int32(0), Wire.int32(0)))
                == .negotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: []))
        #expect(
            failure(Wire.message("v", Wire.int32(0), Wire.int32(-1)))
                == "backend 'v' NegotiateProtocolVersion: unrecognized option count -1 is negative")
        #expect(
            failure(Wire.message("v", Wire.int32(0), Wire.int32(999), [0]))
                == "backend 'v' NegotiateProtocolVersion: unrecognized option count 999 needs at least 999 bytes but 1 remain"
        )
    }

    @Test("FunctionCallResponse with a value and with NULL")
    func functionCallResponse() throws {
        #expect(
            try decode(Wire.message("V", Wire.value(Wire.int32(0)))) == .functionCallResponse(buffer(Wire.int32(0))))
        #expect(try decode(Wire.message("V", Wire.value(nil))) == .functionCallResponse(nil))
        #expect(
            failure(Wire.message("V", Wire.int32(5), [1]))
                == "backend 'V' FunctionCallResponse: result needs 5 bytes but 1 remain")
    }

    @Test("stream heads: a DataRow's column count")
    func streamHead() throws {
        #expect(
            try PostgresStreamHead(direction: .backend, type: UInt8(ascii: "D"), head: buffer(Wire.int16(3) + [0]))
                == .dataRow(columnCount: 3))
        #expect(
            reason {
                _ = try PostgresStreamHead(direction: .backend, type: UInt8(ascii: "D"), head: buffer(Wire.int16(-3)))
            }
                == "backend 'D' DataRow (streamed): column count -3 is negative")
        #expect(
            try PostgresStreamHead(direction: .backend, type: UInt8(ascii: "V"), head: buffer([0]))
                == .functionCallResponse)
        #expect(try PostgresStreamHead(direction: .backend, type: UInt8(ascii: "d"), head: buffer([0])) == .copyData)
    }

    @Test("decoding an unknown type letter directly is refused")
    func unknownType() {
        #expect(
            reason { _ = try PostgresBackendMessage(type: UInt8(ascii: "B"), body: ByteBuffer()) }
                == "unknown backend message type 0x42")
    }
}
