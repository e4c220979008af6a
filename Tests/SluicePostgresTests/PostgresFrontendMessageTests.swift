import NIOCore
import SluicePostgres
import Testing

/// Frames `bytes` (which must be exactly one message or startup packet) and decodes it.
private func decode(_ bytes: [UInt8], startup: Bool = false) throws -> PostgresFrontendMessage {
    var framer = PostgresFramer(direction: .frontend)
    if !startup {
        framer.expectTypedMessages()
    }
    var input = buffer(bytes)
    let frame = try #require(try framer.next(&input))
    #expect(input.readableBytes == 0, "input held more than one message")
    switch frame.kind {
    case .startupPacket(let body):
        return try PostgresFrontendMessage(startupPacket: body)
    case .message(let type, let body):
        return try PostgresFrontendMessage(type: type, body: body)
    default:
        throw PostgresProtocolError(kind: .malformedMessage, reason: "test: streamed \(frame.kind)")
    }
}

/// The reason decoding `bytes` fails with, or nil when it does not fail.
private func failure(_ bytes: [UInt8], startup: Bool = false) -> String? {
    reason { _ = try decode(bytes, startup: startup) }
}

@Suite("PostgresFrontendMessage")
struct PostgresFrontendMessageTests {
    // MARK: Startup phase

    @Test("psql's StartupMessage keeps parameters in order")
    func startup() throws {
        let message = try decode(PostgresFramerTests.psqlStartup, startup: true)
        #expect(
            message
                == .startup(
                    version: .v3_0,
                    parameters: [
                        .init(name: "user", value: "alice"), .init(name: "database", value: "shop"),
                        .init(name: "application_name", value: "psql"), .init(name: "client_encoding", value: "UTF8"),
                    ]))
    }

    @Test("a 3.2 StartupMessage with replication and a _pq_ option")
    func startup32() throws {
        let bytes = Wire.startup(
            [
                ("user", "repl"), ("replication", "database"), ("_pq_.test_option", "on"),
                ("options", "-c work_mem=64MB"),
            ],
            code: 196_610)
        guard case .startup(let version, let parameters) = try decode(bytes, startup: true) else {
            Issue.record("not a startup")
            return
        }
        #expect(version == .v3_2)
        #expect(version.description == "3.2")
        #expect(parameters.map(\.name) == ["user", "replication", "_pq_.test_option", "options"])
        #expect(parameters.last?.value == "-c work_mem=64MB")
    }

    @Test("SSLRequest, GSSENCRequest and CancelRequest (3.0 and 3.2 keys)")
    func specialRequests() throws {
        #expect(try decode(PostgresFramerTests.sslRequest, startup: true) == .sslRequest)
        #expect(try decode(PostgresFramerTests.gssEncRequest, startup: true) == .gssEncRequest)
        let cancel30 = hexBytes("00 00 00 10 04 d2 16 2e 00 00 30 39 de ad be ef")
        #expect(
            try decode(cancel30, startup: true)
                == .cancelRequest(processID: 12345, secretKey: [0xDE, 0xAD, 0xBE, 0xEF]))
        let key = (0..<32).map { UInt8($0) }
        let cancel32 = Wire.startupPacket(code: 80_877_102, Wire.int32(7), key)
        #expect(try decode(cancel32, startup: true) == .cancelRequest(processID: 7, secretKey: key))
    }

    @Test("malformed startup packets")
    func malformedStartup() {
        // No terminator after the last value.
        let unterminated = Wire.startupPacket(code: 196_608, Wire.cstring("user"), Wire.cstring("alice"))
        #expect(failure(unterminated, startup: true) == "startup packet: parameter list has no terminating NUL")
        // Value without its NUL.
        let noValueNUL = Wire.startupPacket(code: 196_608, Wire.cstring("user"), Array("alice".utf8))
        #expect(
            failure(noValueNUL, startup: true) == "startup packet: value of parameter \"user\" has no NUL terminator")
        // Bytes after the terminator: the server wants the terminator last.
        let trailing = Wire.startupPacket(code: 196_608, Wire.cstring("user"), Wire.cstring("a"), [0, 0x41])
        #expect(failure(trailing, startup: true) == "startup packet: 1 trailing bytes")
        // SSLRequest is exactly 8 bytes.
        #expect(
            failure(Wire.startupPacket(code: 80_877_103, [0, 0, 0, 0]), startup: true)
                == "startup packet: 4 trailing bytes")
        // Cancel keys are 4 to 256 bytes.
        let shortKey = Wire.startupPacket(code: 80_877_102, Wire.int32(1), [1, 2, 3])
        #expect(failure(shortKey, startup: true) == "CancelRequest: secret key of 3 bytes is not 4 to 256 bytes")
        let longKey = Wire.startupPacket(code: 80_877_102, Wire.int32(1), [UInt8](repeating: 1, count: 257))
        #expect(failure(longKey, startup: true) == "CancelRequest: secret key of 257 bytes is not 4 to 256 bytes")
    }

    // MARK: Simple query

    @Test("psql's SELECT 1")
    func query() throws {
        #expect(try decode(PostgresFramerTests.psqlSelect1) == .query("SELECT 1;"))
    }

    @Test("several statements in one Query stay one string")
    func multiStatementQuery() throws {
        let sql = "BEGIN; DELETE FROM t WHERE id = 1; COMMIT;"
        #expect(try decode(Wire.message("Q", Wire.cstring(sql))) == .query(sql))
    }

    @Test("text in a non-UTF-8 client_encoding is decoded leniently")
    func lenientText() throws {
        // LATIN1 "café" (0xE9 is not valid UTF-8 on its own).
        let bytes = Wire.message("Q", Array("SELECT 'caf".utf8) + [0xE9] + Array("'".utf8) + [0])
        #expect(try decode(bytes) == .query("SELECT 'caf\u{FFFD}'"))
    }

    @Test("a Query without NUL, or with bytes after it, is malformed")
    func malformedQuery() {
        #expect(
            failure(Wire.message("Q", Array("SELECT 1".utf8)))
                == "frontend 'Q' Query: query string has no NUL terminator")
        #expect(
            failure(Wire.message("Q", Wire.cstring("SELECT 1"), [0x41, 0x42])) == "frontend 'Q' Query: 2 trailing bytes"
        )
        #expect(failure(Wire.message("Q")) == "frontend 'Q' Query: query string has no NUL terminator")
    }

    // MARK: Extended query

    /// What `pgbench -M extended -S` writes for one transaction in one send: Parse (unnamed, no parameter types:
    /// libpq's PQsendQueryParams with paramTypes NULL), Bind (no parameter formats, one text value, one result
    /// format 0), Describe portal, Execute (all rows), Sync.
    static let pgbenchExtended: [UInt8] =
        Wire.message(
            "P", Wire.cstring(""), Wire.cstring("SELECT abalance FROM pgbench_accounts WHERE aid = $1;"), Wire.int16(0))
        + Wire.message(
            "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(1), Wire.value(Array("42817".utf8)),
            Wire.int16(1), Wire.int16(0))
        + Wire.message("D", Wire.byte("P"), Wire.cstring(""))
        + Wire.message("E", Wire.cstring(""), Wire.int32(0))
        + Wire.message("S")

    @Test("pgbench -M extended's P/B/D/E/S batch")
    func pgbenchBatch() throws {
        var framer = PostgresFramer(direction: .frontend)
        framer.expectTypedMessages()
        var input = buffer(Self.pgbenchExtended)
        var messages: [PostgresFrontendMessage] = []
        while let frame = try framer.next(&input) {
            guard case .message(let type, let body) = frame.kind else { continue }
            messages.append(try PostgresFrontendMessage(type: type, body: body))
        }
        #expect(
            messages == [
                .parse(
                    statement: "", query: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", parameterTypes: []),
                .bind(
                    portal: "", statement: "", parameterFormats: [], parameters: [buffer(Array("42817".utf8))],
                    resultFormats: [0]),
                .describe(kind: .portal, name: ""), .execute(portal: "", maxRows: 0), .sync,
            ])
    }

    @Test("a named Parse with parameter types, as pgbench -M prepared sends once per statement")
    func namedParse() throws {
        let bytes = Wire.message(
            "P", Wire.cstring("P_1"),
            Wire.cstring("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"),
            Wire.int16(2), Wire.uint32(23), Wire.uint32(0))
        #expect(
            try decode(bytes)
                == .parse(
                    statement: "P_1", query: "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
                    parameterTypes: [23, 0]))
    }

    @Test("Bind with NULL, an empty value, binary formats and result formats")
    func bind() throws {
        let bytes = Wire.message(
            "B", Wire.cstring("c1"), Wire.cstring("P_1"), Wire.int16(2), Wire.int16(0), Wire.int16(1), Wire.int16(3),
            Wire.value(Array("x".utf8)), Wire.value(nil), Wire.value([0, 0, 0, 7]), Wire.int16(2), Wire.int16(1),
            Wire.int16(0))
        #expect(
            try decode(bytes)
                == .bind(
                    portal: "c1", statement: "P_1", parameterFormats: [0, 1],
                    parameters: [buffer(Array("x".utf8)), nil, buffer([0, 0, 0, 7])], resultFormats: [1, 0]))
        let empty = Wire.message(
            "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(1), Wire.value([]), Wire.int16(0))
        #expect(
            try decode(empty)
                == .bind(portal: "", statement: "", parameterFormats: [], parameters: [ByteBuffer()], resultFormats: [])
        )
    }

    @Test("Describe, Close, Execute with a row limit")
    func describeCloseExecute() throws {
        #expect(
            try decode(Wire.message("D", Wire.byte("S"), Wire.cstring("P_1")))
                == .describe(kind: .statement, name: "P_1"))
        #expect(try decode(Wire.message("C", Wire.byte("P"), Wire.cstring("c1"))) == .close(kind: .portal, name: "c1"))
        #expect(try decode(Wire.message("C", Wire.byte("S"), Wire.cstring(""))) == .close(kind: .statement, name: ""))
        #expect(
            try decode(Wire.message("E", Wire.cstring("c1"), Wire.int32(100))) == .execute(portal: "c1", maxRows: 100))
        #expect(
            failure(Wire.message("D", Wire.byte("X"), Wire.cstring("a")))
                == "frontend 'D' Describe: target kind X is neither 'S' nor 'P'")
        #expect(
            failure(Wire.message("E", Wire.cstring("c1"), [0, 0]))
                == "frontend 'E' Execute: maximum row count is missing")
    }

    @Test("bodiless messages: Sync, Flush, Terminate, CopyDone; a body is trailing garbage")
    func bodiless() throws {
        #expect(try decode(Wire.message("S")) == .sync)
        #expect(try decode(Wire.message("H")) == .flush)
        #expect(try decode(Wire.message("X")) == .terminate)
        #expect(try decode(Wire.message("c")) == .copyDone)
        #expect(failure(Wire.message("S", [0])) == "frontend 'S' Sync: 1 trailing bytes")
        #expect(failure(Wire.message("X", [1, 2])) == "frontend 'X' Terminate: 2 trailing bytes")
    }

    @Test("COPY FROM STDIN: CopyData, CopyFail")
    func copy() throws {
        #expect(try decode(Wire.message("d", Array("1\tone\n".utf8))) == .copyData(buffer(Array("1\tone\n".utf8))))
        #expect(try decode(Wire.message("d")) == .copyData(ByteBuffer()))
        #expect(try decode(Wire.message("f", Wire.cstring("aborted by user"))) == .copyFail(message: "aborted by user"))
    }

    @Test("FunctionCall: libpq's lo_open(oid 16400, INV_READ) by fast path (function OID 952)")
    func functionCall() throws {
        let bytes = Wire.message(
            "F", Wire.uint32(952), Wire.int16(1), Wire.int16(1), Wire.int16(2), Wire.value(Wire.uint32(16400)),
            Wire.value(Wire.int32(0x40000)), Wire.int16(1))
        #expect(try decode(bytes) == .functionCall(oid: 952))
        let noResultFormat = Wire.message("F", Wire.uint32(952), Wire.int16(0), Wire.int16(0))
        #expect(failure(noResultFormat) == "frontend 'F' FunctionCall: result format is missing")
    }

    @Test("'p' stays opaque; the SASL mechanism is readable on request")
    func passwordMessage() throws {
        #expect(try decode(Wire.message("p", Wire.cstring("hunter2"))) == .authenticationResponse)
        let initial = Wire.cstring("SCRAM-SHA-256") + Wire.int32(32) + Array("n,,n=,r=rOprNGfwEbeRWgbNEkqO".utf8)
        #expect(try decode(Wire.message("p", initial)) == .authenticationResponse)
        #expect(try PostgresFrontendMessage.saslMechanism(initialResponse: buffer(initial)) == "SCRAM-SHA-256")
    }

    // MARK: Malformed counts and lengths

    @Test("negative counts and counts the body cannot hold")
    func badCounts() {
        let parseNegative = Wire.message("P", Wire.cstring(""), Wire.cstring("SELECT 1"), Wire.int16(-1))
        #expect(failure(parseNegative) == "frontend 'P' Parse: parameter type count -1 is negative")
        let parseShort = Wire.message("P", Wire.cstring(""), Wire.cstring("SELECT $1"), Wire.int16(3), Wire.uint32(23))
        #expect(
            failure(parseShort) == "frontend 'P' Parse: parameter type count 3 needs at least 12 bytes but 4 remain")
        let bindHuge = Wire.message("B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(32767))
        #expect(
            failure(bindHuge)
                == "frontend 'B' Bind: parameter value count 32767 needs at least 131068 bytes but 0 remain")
        let bindNegativeFormats = Wire.message("B", Wire.cstring(""), Wire.cstring(""), Wire.int16(-2))
        #expect(failure(bindNegativeFormats) == "frontend 'B' Bind: parameter format count -2 is negative")
        let bindNegativeLength = Wire.message(
            "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(1), Wire.int32(-2), Wire.int16(0))
        #expect(failure(bindNegativeLength) == "frontend 'B' Bind: parameter 1 length -2 is negative")
        let bindLongValue = Wire.message(
            "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(1), Wire.int32(100), [1, 2])
        #expect(failure(bindLongValue) == "frontend 'B' Bind: parameter 1 needs 100 bytes but 2 remain")
        let bindNoResultFormats = Wire.message(
            "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(0))
        #expect(failure(bindNoResultFormats) == "frontend 'B' Bind: result format count is missing")
        let parseNoNUL = Wire.message("P", Wire.cstring("s"), Array("SELECT".utf8))
        #expect(failure(parseNoNUL) == "frontend 'P' Parse: query string has no NUL terminator")
    }

    @Test("decoding an unknown type letter directly is refused")
    func unknownType() {
        #expect(
            reason { _ = try PostgresFrontendMessage(type: 0x7A, body: ByteBuffer()) }
                == "unknown frontend message type 0x7a")
    }

    @Test("stream heads: a Bind whose names are not in the head is refused")
    func streamHeads() throws {
        let head = Wire.cstring("portal") + Wire.cstring("stmt") + [0, 0]
        #expect(
            try PostgresStreamHead(direction: .frontend, type: UInt8(ascii: "B"), head: buffer(head))
                == .bind(portal: "portal", statement: "stmt"))
        let cut = Wire.cstring("portal") + Array(String(repeating: "s", count: 1000).utf8)
        #expect(
            reason { _ = try PostgresStreamHead(direction: .frontend, type: UInt8(ascii: "B"), head: buffer(cut)) }
                == "frontend 'B' Bind (streamed): statement name has no NUL terminator")
        #expect(try PostgresStreamHead(direction: .frontend, type: UInt8(ascii: "d"), head: buffer([1])) == .copyData)
        #expect(
            kind { _ = try PostgresStreamHead(direction: .frontend, type: UInt8(ascii: "Q"), head: buffer([1])) }
                == .unknownMessageType)
    }
}
