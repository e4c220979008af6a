import NIOCore
import SluicePostgres
import Testing

private func written(_ write: (inout ByteBuffer) -> Void) -> [UInt8] {
    var out = ByteBuffer()
    write(&out)
    return Array(out.readableBytesView)
}

@Suite("PostgresMessageEncoder")
struct PostgresMessageEncoderTests {
    @Test("the policy's ErrorResponse, byte for byte, and it decodes back")
    func errorResponse() throws {
        let bytes = written {
            PostgresMessageEncoder.writeErrorResponse(
                sqlState: "42501", message: "blocked by Sluice policy: no-drop", into: &$0)
        }
        let expected = Wire.message(
            "E", Wire.byte("S"), Wire.cstring("ERROR"), Wire.byte("V"), Wire.cstring("ERROR"), Wire.byte("C"),
            Wire.cstring("42501"), Wire.byte("M"), Wire.cstring("blocked by Sluice policy: no-drop"), [0])
        #expect(bytes == expected)

        let withDetail = written {
            PostgresMessageEncoder.writeErrorResponse(
                sqlState: "57014", message: "hold expired", detail: "nobody answered in 30 s", hint: "ask an operator",
                into: &$0)
        }
        var framer = PostgresFramer(direction: .backend)
        var input = buffer(withDetail)
        guard case .message(let type, let body)? = try framer.next(&input)?.kind,
            case .errorResponse(let fields) = try PostgresBackendMessage(type: type, body: body)
        else {
            Issue.record("did not decode as an ErrorResponse")
            return
        }
        #expect(fields.severity == "ERROR")
        #expect(fields["S"] == "ERROR")
        #expect(fields.sqlState == "57014")
        #expect(fields.message == "hold expired")
        #expect(fields.detail == "nobody answered in 30 s")
        #expect(fields.hint == "ask an operator")
    }

    @Test("rewriting a server error keeps its other fields and order")
    func rewrittenError() throws {
        var framer = PostgresFramer(direction: .backend)
        var input = buffer(PostgresBackendMessageTests.undefinedTable)
        guard case .message(let type, let body)? = try framer.next(&input)?.kind,
            case .errorResponse(var fields) = try PostgresBackendMessage(type: type, body: body)
        else {
            Issue.record("did not decode")
            return
        }
        // Unchanged fields re-encode to the server's exact bytes.
        #expect(
            written { PostgresMessageEncoder.writeErrorResponse(fields, into: &$0) }
                == PostgresBackendMessageTests.undefinedTable)
        fields.fields[2].value = "42501"
        let rewritten = written { PostgresMessageEncoder.writeErrorResponse(fields, into: &$0) }
        var again = PostgresFramer(direction: .backend)
        var rewrittenInput = buffer(rewritten)
        guard case .message(let type2, let body2)? = try again.next(&rewrittenInput)?.kind,
            case .errorResponse(let decoded) = try PostgresBackendMessage(type: type2, body: body2)
        else {
            Issue.record("rewritten error did not decode")
            return
        }
        #expect(decoded.sqlState == "42501")
        #expect(decoded.fields.count == 8)
    }

    @Test("NUL bytes inside strings are dropped, so the message stays well-formed")
    func nulDropped() throws {
        let bytes = written {
            PostgresMessageEncoder.writeErrorResponse(sqlState: "42501", message: "rule\u{0}name", into: &$0)
        }
        var framer = PostgresFramer(direction: .backend)
        var input = buffer(bytes)
        guard case .message(let type, let body)? = try framer.next(&input)?.kind,
            case .errorResponse(let fields) = try PostgresBackendMessage(type: type, body: body)
        else {
            Issue.record("did not decode")
            return
        }
        #expect(fields.message == "rulename")
        #expect(
            written { PostgresMessageEncoder.writeQuery("SELECT\u{0} 1", into: &$0) }
                == Wire.message("Q", Wire.cstring("SELECT 1")))
    }

    @Test("ReadyForQuery, the N refusal and psql's Query")
    func smallMessages() {
        #expect(
            written { PostgresMessageEncoder.writeReadyForQuery(.idle, into: &$0) } == hexBytes("5a 00 00 00 05 49"))
        #expect(
            written { PostgresMessageEncoder.writeReadyForQuery(.inTransaction, into: &$0) }
                == hexBytes("5a 00 00 00 05 54"))
        #expect(
            written { PostgresMessageEncoder.writeReadyForQuery(.failed, into: &$0) } == hexBytes("5a 00 00 00 05 45"))
        #expect(written { PostgresMessageEncoder.writeEncryptionRefused(into: &$0) } == [0x4E])
        #expect(PostgresMessageEncoder.encryptionRefused == 0x4E)
        #expect(
            written { PostgresMessageEncoder.writeQuery("SELECT 1;", into: &$0) } == PostgresFramerTests.psqlSelect1)
    }

    @Test("SCRAM-SHA-256-PLUS is removed from AuthenticationSASL, with the length recomputed")
    func removeChannelBinding() throws {
        let rewritten = try #require(
            try PostgresMessageEncoder.removingChannelBinding(
                fromAuthenticationSASL: buffer(PostgresBackendMessageTests.saslOverTLS)))
        #expect(
            rewritten == buffer(hexBytes("52 00 00 00 17 00 00 00 0a 53 43 52 41 4d 2d 53 48 41 2d 32 35 36 00 00")))
        // Other mechanisms, in any position, are kept in order.
        let mixed = Wire.message(
            "R", Wire.int32(10), Wire.cstring("OTHER"), Wire.cstring("SCRAM-SHA-256-PLUS"),
            Wire.cstring("SCRAM-SHA-256"), [0])
        #expect(
            try PostgresMessageEncoder.removingChannelBinding(fromAuthenticationSASL: buffer(mixed))
                == buffer(Wire.message("R", Wire.int32(10), Wire.cstring("OTHER"), Wire.cstring("SCRAM-SHA-256"), [0])))
    }

    @Test("nothing to remove, or not AuthenticationSASL: nil; malformed: an error")
    func removeChannelBindingNil() throws {
        let plain = Wire.message("R", Wire.int32(10), Wire.cstring("SCRAM-SHA-256"), [0])
        #expect(try PostgresMessageEncoder.removingChannelBinding(fromAuthenticationSASL: buffer(plain)) == nil)
        #expect(
            try PostgresMessageEncoder.removingChannelBinding(
                fromAuthenticationSASL: buffer(Wire.message("R", Wire.int32(0)))) == nil)
        #expect(
            try PostgresMessageEncoder.removingChannelBinding(
                fromAuthenticationSASL: buffer(hexBytes("5a 00 00 00 05 49"))) == nil)
        #expect(
            kind { _ = try PostgresMessageEncoder.removingChannelBinding(fromAuthenticationSASL: buffer([0x52, 0])) }
                == .malformedMessage)
        let unterminated = Wire.message("R", Wire.int32(10), Wire.cstring("SCRAM-SHA-256-PLUS"))
        #expect(
            kind { _ = try PostgresMessageEncoder.removingChannelBinding(fromAuthenticationSASL: buffer(unterminated)) }
                == .malformedMessage)
        let twoMessages = PostgresBackendMessageTests.saslOverTLS + hexBytes("5a 00 00 00 05 49")
        #expect(
            kind { _ = try PostgresMessageEncoder.removingChannelBinding(fromAuthenticationSASL: buffer(twoMessages)) }
                == .malformedMessage)
    }
}
