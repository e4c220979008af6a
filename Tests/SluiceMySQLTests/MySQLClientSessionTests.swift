import NIOCore
import SluiceCore
import SluiceMySQL
import Testing
import _CryptoExtras

/// A scripted server for `MySQLClientSession`: greetings and packets written by hand with `Wire`, independent of the
/// encoders under test. Expected scrambles were computed with Python's hashlib.
enum ScriptedServer {
    /// 0x01 … 0x14.
    static let scramble: [UInt8] = Array(1...20)
    /// Everything but what Sluice's inspector clears.
    static let capabilities = MySQLCapabilities(rawValue: 0xFFFF_FFFF).subtracting(.clearedBySluice)
    /// A server without CLIENT_DEPRECATE_EOF: EOF packets after column definitions and at the end of rows.
    static let classicCapabilities = capabilities.subtracting(.deprecateEOF)

    /// HandshakeV10: version, connection id, scramble part 1, filler, capabilities low, character set, status,
    /// capabilities high, scramble length, 10 reserved bytes, scramble part 2 and its NUL, plugin name.
    static func greeting(
        capabilities: MySQLCapabilities = capabilities, plugin: String = "mysql_native_password",
        scramble: [UInt8] = scramble
    ) -> [UInt8] {
        Wire.packet(
            0, [0x0A], Wire.cstring("8.0.36"), Wire.uint32(42), Array(scramble[0..<8]), [0],
            Wire.uint16(capabilities.low), [0xFF], Wire.uint16(0x0002), Wire.uint16(capabilities.high), [21],
            [UInt8](repeating: 0, count: 10), Array(scramble[8..<20]) + [0], Wire.cstring(plugin))
    }

    static func error(_ sequenceID: UInt8, code: UInt16, state: String, message: String) -> [UInt8] {
        Wire.packet(sequenceID, [0xFF], Wire.uint16(code), Array(("#" + state + message).utf8))
    }
}

/// What a session did with some input: the steps, or the error's message.
private func feed(_ session: inout MySQLClientSession, _ bytes: [UInt8]) -> Result<
    [DatabaseClientStep], DatabaseClientError
> {
    do {
        return .success(try session.receive(ByteBuffer(bytes: bytes)))
    } catch {
        return .failure(error)
    }
}

private func steps(_ session: inout MySQLClientSession, _ bytes: [UInt8]) throws -> [DatabaseClientStep] {
    try session.receive(ByteBuffer(bytes: bytes))
}

private func failure(_ result: Result<[DatabaseClientStep], DatabaseClientError>) -> String? {
    guard case .failure(let error) = result else { return nil }
    return error.message
}

private func send(_ bytes: [UInt8]) -> DatabaseClientStep {
    .send(ByteBuffer(bytes: bytes))
}

private func finished(_ summary: String, error: String? = nil) -> DatabaseClientStep {
    .finished(ReplayOutcome(summary: summary, error: error))
}

private func bytes(_ buffer: ByteBuffer) -> [UInt8] {
    Array(buffer.readableBytesView)
}

private let replayLogin = DatabaseLogin(user: "replay", database: "shop", password: "secret")

/// A session logged in to a server with `capabilities`.
private func loggedIn(
    capabilities: MySQLCapabilities = ScriptedServer.capabilities, login: DatabaseLogin = replayLogin
) throws -> MySQLClientSession {
    var session = MySQLClientSession(login: login)
    #expect(session.start() == nil)
    let answer = try steps(&session, ScriptedServer.greeting(capabilities: capabilities))
    #expect(answer.count == 1)
    #expect(try steps(&session, Wire.ok(2)) == [.ready])
    return session
}

@Suite("MySQL client session (replay)")
struct MySQLClientSessionTests {
    // MARK: Login

    @Test("login: HandshakeResponse41 with the negotiated capabilities, user, mysql_native_password scramble, database")
    func handshakeResponse() throws {
        var session = MySQLClientSession(login: replayLogin)
        let answer = try steps(&session, ScriptedServer.greeting())
        // PROTOCOL_41 0x200, SECURE_CONNECTION 0x8000, PLUGIN_AUTH 0x80000, PLUGIN_AUTH_LENENC_CLIENT_DATA 0x200000,
        // LONG_PASSWORD 0x1, LONG_FLAG 0x4, CONNECT_WITH_DB 0x8, TRANSACTIONS 0x2000, MULTI_STATEMENTS 0x10000,
        // MULTI_RESULTS 0x20000, PS_MULTI_RESULTS 0x40000, DEPRECATE_EOF 0x1000000.
        let capabilities = Wire.uint32(0x012F_A20D)
        // python3: SHA1("secret") XOR SHA1(bytes(range(1, 21)) + SHA1(SHA1("secret"))).
        let scramble = hexBytes("b32bb3a583e1340c0a1108d58b1be49781ad8c2f")
        let expected = Wire.packet(
            1, capabilities, Wire.uint32(16 << 20), [45], [UInt8](repeating: 0, count: 23), Wire.cstring("replay"),
            [20], scramble, Wire.cstring("shop"), Wire.cstring("mysql_native_password"))
        #expect(answer == [send(expected)])
        #expect(try steps(&session, Wire.ok(2)) == [.ready])
    }

    @Test(
        "login without a database or password: no CONNECT_WITH_DB, an empty auth response; server lacks DEPRECATE_EOF")
    func handshakeResponseWithoutDatabaseOrPassword() throws {
        var session = MySQLClientSession(login: DatabaseLogin(user: "anon", database: nil, password: nil))
        let answer = try steps(&session, ScriptedServer.greeting(capabilities: ScriptedServer.classicCapabilities))
        let expected = Wire.packet(
            1, Wire.uint32(0x002F_A205), Wire.uint32(16 << 20), [45], [UInt8](repeating: 0, count: 23),
            Wire.cstring("anon"), [0], Wire.cstring("mysql_native_password"))
        #expect(answer == [send(expected)])
    }

    @Test("login to a captured MariaDB 10.11 greeting: the same mysql_native_password answer the real client sent")
    func capturedMariaDBGreeting() throws {
        let session = MariaDBCaptures.deprecateEOF
        var client = MySQLClientSession(
            login: DatabaseLogin(user: "sluice_native", database: "sluice", password: "sluice-native-password"))
        let answer = try steps(&client, session[named: "greeting"].serverStream)
        guard case .send(let response)? = answer.first else {
            Issue.record("no handshake response")
            return
        }
        // The captured client's auth response: 20 bytes after the user name's NUL and the length 0x14.
        let captured = session[named: "handshake response"].clientPackets[0]
        let user = Array("sluice_native".utf8) + [0, 0x14]
        let sent = bytes(response)
        let capturedAuth = try #require(authBytes(after: user, in: captured))
        #expect(authBytes(after: user, in: sent) == capturedAuth)
        // MariaDB clears CLIENT_MYSQL (LONG_PASSWORD), so the response does too and sends no extended capabilities.
        #expect(sent[4] & 0x01 == 0)
        #expect(try steps(&client, session[named: "auth result"].serverStream) == [.ready])

        #expect(
            bytes(try client.run(ReplayStatement(text: "select 1")))
                == session[named: "COM_QUERY select 1"].clientStream)
        #expect(try steps(&client, session[named: "COM_QUERY select 1"].serverStream) == [finished("1 row")])
        _ = try client.run(ReplayStatement(text: "select 1; select 2, 'x'; insert into t (name) values ('m')"))
        #expect(
            try steps(&client, session[named: "COM_QUERY multi"].serverStream) == [
                finished("1 row, 1 row, OK, 1 row affected")
            ])
        _ = try client.run(ReplayStatement(text: "select 1; select * from nosuch; select 3"))
        #expect(
            try steps(&client, session[named: "COM_QUERY multi with error"].serverStream) == [
                finished("1 row, error", error: "1146 (42S02): Table 'sluice.nosuch' doesn't exist")
            ])
        _ = try client.run(
            ReplayStatement(text: "select id, name, ts from t where id > ? order by id", parameters: ["1"]))
        let prepared = try steps(&client, session[named: "COM_STMT_PREPARE select"].serverStream)
        #expect(
            prepared == [
                send(Wire.packet(0, [0x17], Wire.uint32(6), [0], Wire.uint32(1), [0, 1, 0xFD, 0], [1, 0x31]))
            ])
        #expect(
            try steps(&client, session[named: "COM_STMT_EXECUTE select again, types not resent"].serverStream) == [
                send(Wire.packet(0, [0x19], Wire.uint32(6))), finished("3 rows"),
            ])
    }

    private func authBytes(after prefix: [UInt8], in packet: [UInt8]) -> [UInt8]? {
        guard
            let start = (0...(packet.count - prefix.count)).first(where: {
                Array(packet[$0..<$0 + prefix.count]) == prefix
            })
        else { return nil }
        let from = start + prefix.count
        guard from + 20 <= packet.count else { return nil }
        return Array(packet[from..<from + 20])
    }

    @Test("caching_sha2_password fast path: SHA256(p) XOR SHA256(SHA256(SHA256(p)) + scramble), then 0x03 and OK")
    func cachingSHA2FastPath() throws {
        var session = MySQLClientSession(login: replayLogin)
        let answer = try steps(&session, ScriptedServer.greeting(plugin: "caching_sha2_password"))
        // python3: the formula above with p = "secret" and the scramble bytes(range(1, 21)).
        let scramble = hexBytes("746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9")
        let expected = Wire.packet(
            1, Wire.uint32(0x012F_A20D), Wire.uint32(16 << 20), [45], [UInt8](repeating: 0, count: 23),
            Wire.cstring("replay"), [32], scramble, Wire.cstring("shop"), Wire.cstring("caching_sha2_password"))
        #expect(answer == [send(expected)])
        #expect(try steps(&session, Wire.packet(2, [0x01, 0x03])) == [])
        #expect(try steps(&session, Wire.ok(3)) == [.ready])
    }

    @Test("caching_sha2_password full authentication: asks for the RSA key, sends (password + NUL) XOR scramble, OAEP")
    func cachingSHA2FullAuthentication() throws {
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        var session = MySQLClientSession(login: replayLogin)
        _ = try steps(&session, ScriptedServer.greeting(plugin: "caching_sha2_password"))
        #expect(try steps(&session, Wire.packet(2, [0x01, 0x04])) == [send(Wire.packet(3, [0x02]))])
        let answer = try steps(&session, Wire.packet(4, [0x01], Array(key.publicKey.pemRepresentation.utf8)))
        guard case .send(let packet)? = answer.first, answer.count == 1 else {
            Issue.record("expected one packet, got \(answer)")
            return
        }
        let sent = bytes(packet)
        #expect(Array(sent.prefix(4)) == Wire.header(length: 256, sequenceID: 5))
        let plain = Array(try key.decrypt(sent.dropFirst(4), padding: .PKCS1_OAEP))
        let expected = (Array("secret".utf8) + [0]).enumerated().map { $1 ^ ScriptedServer.scramble[$0 % 20] }
        #expect(plain == expected)
        #expect(try steps(&session, Wire.ok(6)) == [.ready])
    }

    @Test("caching_sha2_password full authentication with a key that is not one fails in one line")
    func cachingSHA2BadKey() throws {
        var session = MySQLClientSession(login: replayLogin)
        _ = try steps(&session, ScriptedServer.greeting(plugin: "caching_sha2_password"))
        _ = try steps(&session, Wire.packet(2, [0x01, 0x04]))
        let message = failure(feed(&session, Wire.packet(4, [0x01], Array("not a key".utf8))))
        #expect(message?.hasPrefix("caching_sha2_password: the server's RSA public key cannot encrypt") == true)
    }

    @Test("AuthSwitchRequest: answered with the new plugin and scramble, sequence ids continuing; then OK")
    func authSwitch() throws {
        var session = MySQLClientSession(login: replayLogin)
        _ = try steps(&session, ScriptedServer.greeting(plugin: "caching_sha2_password"))
        let newScramble: [UInt8] = Array(0x41...0x54)
        let answer = try steps(
            &session, Wire.packet(2, [0xFE], Wire.cstring("mysql_native_password"), newScramble, [0]))
        // python3: SHA1("secret") XOR SHA1(bytes(range(0x41, 0x55)) + SHA1(SHA1("secret"))).
        #expect(answer == [send(Wire.packet(3, hexBytes("28441590674285e7d03cae7af237504797f70e91")))])
        #expect(try steps(&session, Wire.ok(4)) == [.ready])
    }

    @Test("AuthSwitchRequest to client_ed25519 or an unknown plugin is refused")
    func unsupportedPlugins() throws {
        var session = MySQLClientSession(login: replayLogin)
        _ = try steps(&session, ScriptedServer.greeting())
        let ed25519 = failure(feed(&session, Wire.packet(2, [0xFE], Wire.cstring("client_ed25519"), Array(1...32))))
        #expect(
            ed25519
                == "the server asks for MariaDB's client_ed25519 authentication: the client_ed25519 plugin is not "
                + "supported by replay; use an account with mysql_native_password")

        var other = MySQLClientSession(login: replayLogin)
        _ = try steps(&other, ScriptedServer.greeting())
        let clear = failure(feed(&other, Wire.packet(2, [0xFE], Wire.cstring("mysql_clear_password"))))
        #expect(clear?.contains("mysql_clear_password authentication plugin, which replay does not support") == true)
    }

    @Test("ERR at login throws code (SQLSTATE): message; a greeting ERR has no SQLSTATE")
    func loginError() throws {
        var session = MySQLClientSession(login: replayLogin)
        _ = try steps(&session, ScriptedServer.greeting())
        let denied = ScriptedServer.error(
            2, code: 1045, state: "28000", message: "Access denied for user 'replay'@'localhost' (using password: YES)")
        #expect(
            failure(feed(&session, denied))
                == "1045 (28000): Access denied for user 'replay'@'localhost' (using password: YES)")
        // A failed session reads nothing more.
        #expect(failure(feed(&session, Wire.ok(3)))?.contains("already failed") == true)

        var refused = MySQLClientSession(login: replayLogin)
        let greetingError = Wire.packet(0, [0xFF], Wire.uint16(1130), Array("Host '10.0.0.9' is not allowed".utf8))
        #expect(failure(feed(&refused, greetingError)) == "1130: Host '10.0.0.9' is not allowed")
    }

    @Test("byte at a time: the login and a query's response give the same steps")
    func byteAtATime() throws {
        var session = MySQLClientSession(login: replayLogin)
        var collected: [DatabaseClientStep] = []
        for byte in ScriptedServer.greeting() + Wire.ok(2) {
            collected += try steps(&session, [byte])
        }
        #expect(collected.count == 2)
        #expect(collected.last == .ready)
        _ = try session.run(ReplayStatement(text: "select name from t"))
        let response =
            Wire.packet(1, [1]) + Wire.columnDefinition(2) + Wire.textRow(3, ["a"]) + Wire.textRow(4, [nil])
            + Wire.ok(5, header: 0xFE)
        collected = []
        for byte in response {
            collected += try steps(&session, [byte])
        }
        #expect(collected == [finished("2 rows")])
    }

    // MARK: Queries

    @Test("COM_QUERY: the text at sequence 0; a result set with EOFs (no DEPRECATE_EOF) counts its rows")
    func queryClassicResultSet() throws {
        var session = try loggedIn(capabilities: ScriptedServer.classicCapabilities)
        let query = try session.run(ReplayStatement(text: "select name from t"))
        #expect(bytes(query) == Wire.packet(0, [0x03], Array("select name from t".utf8)))
        let response =
            Wire.packet(1, [1]) + Wire.columnDefinition(2) + Wire.eof(3) + Wire.textRow(4, ["a"])
            + Wire.textRow(5, [nil]) + Wire.eof(6)
        #expect(try steps(&session, response) == [finished("2 rows")])
        // The next statement may run.
        _ = try session.run(ReplayStatement(text: "delete from t"))
        #expect(try steps(&session, Wire.ok(1, affected: 1)) == [finished("OK, 1 row affected")])
    }

    @Test("COM_QUERY under DEPRECATE_EOF: no EOF after the definitions, an OK with 0xFE ends the rows")
    func queryDeprecateEOFResultSet() throws {
        var session = try loggedIn()
        _ = try session.run(ReplayStatement(text: "select name from t"))
        // In pieces: the first half finishes nothing.
        let response =
            Wire.packet(1, [1]) + Wire.columnDefinition(2) + Wire.textRow(3, ["a"]) + Wire.textRow(4, ["b"])
            + Wire.ok(5, header: 0xFE)
        #expect(try steps(&session, Array(response.prefix(30))) == [])
        #expect(try steps(&session, Array(response.dropFirst(30))) == [finished("2 rows")])
    }

    @Test("COM_QUERY with several results (SERVER_MORE_RESULTS_EXISTS) finishes once, joining the summaries")
    func multipleResults() throws {
        var session = try loggedIn()
        _ = try session.run(ReplayStatement(text: "update t set a = 1; select 1"))
        let moreResults: UInt16 = 0x000A
        let first = Wire.ok(1, affected: 3, status: moreResults)
        #expect(try steps(&session, first) == [])
        let second = Wire.packet(2, [1]) + Wire.columnDefinition(3) + Wire.textRow(4, ["1"]) + Wire.ok(5, header: 0xFE)
        #expect(try steps(&session, second) == [finished("OK, 3 rows affected, 1 row")])
    }

    @Test("COM_QUERY answered by ERR finishes with the error")
    func queryError() throws {
        var session = try loggedIn()
        _ = try session.run(ReplayStatement(text: "select * from y"))
        let error = ScriptedServer.error(1, code: 1146, state: "42S02", message: "Table 'x.y' doesn't exist")
        #expect(try steps(&session, error) == [finished("error", error: "1146 (42S02): Table 'x.y' doesn't exist")])
    }

    @Test("LOCAL INFILE request: refused with an empty packet, then the server's answer finishes the statement")
    func localInfileRefused() throws {
        var session = try loggedIn()
        _ = try session.run(ReplayStatement(text: "load data local infile '/etc/passwd' into table t"))
        #expect(try steps(&session, Wire.packet(1, [0xFB], Array("/etc/passwd".utf8))) == [send(Wire.packet(2, []))])
        #expect(
            try steps(&session, Wire.ok(3)) == [finished("local file /etc/passwd not sent, OK, 0 rows affected")])
    }

    // MARK: Prepared statements

    @Test("parameters: COM_STMT_PREPARE, then COM_STMT_EXECUTE with a NULL bitmap and VAR_STRING values, then CLOSE")
    func preparedExecute() throws {
        var session = try loggedIn()
        let prepare = try session.run(ReplayStatement(text: "select ?, ?, ?", parameters: ["a", nil, "ü"]))
        #expect(bytes(prepare) == Wire.packet(0, [0x16], Array("select ?, ?, ?".utf8)))
        // COM_STMT_PREPARE_OK: id 7, 1 column, 3 parameters; definitions without EOFs (DEPRECATE_EOF).
        let prepareOK =
            Wire.packet(1, [0x00], Wire.uint32(7), Wire.uint16(1), Wire.uint16(3), [0], Wire.uint16(0))
            + Wire.columnDefinition(2) + Wire.columnDefinition(3)
        #expect(try steps(&session, prepareOK) == [])
        let execute = Wire.packet(
            0, [0x17], Wire.uint32(7), [0x00], Wire.uint32(1),
            [0b0000_0010],  // NULL bitmap: the second parameter
            [0x01],  // new-params-bound
            [0xFD, 0x00, 0xFD, 0x00, 0xFD, 0x00],
            [0x01, 0x61], [0x02, 0xC3, 0xBC])
        #expect(try steps(&session, Wire.columnDefinition(4) + Wire.columnDefinition(5)) == [send(execute)])
        // A binary result set: column count, definition, one row (header 0x00, NULL bitmap, value), OK with 0xFE.
        let rows =
            Wire.packet(1, [1]) + Wire.columnDefinition(2) + Wire.packet(3, [0x00, 0x00], Wire.lenencString("a"))
            + Wire.ok(4, header: 0xFE)
        #expect(try steps(&session, rows) == [send(Wire.packet(0, [0x19], Wire.uint32(7))), finished("1 row")])
    }

    @Test("parameters without EOF deprecation: the definitions' EOFs are read; an execution's OK counts rows affected")
    func preparedExecuteClassic() throws {
        var session = try loggedIn(capabilities: ScriptedServer.classicCapabilities)
        _ = try session.run(ReplayStatement(text: "delete from t where id = ?", parameters: ["5"]))
        let prepareOK =
            Wire.packet(1, [0x00], Wire.uint32(1), Wire.uint16(0), Wire.uint16(1), [0], Wire.uint16(0))
            + Wire.columnDefinition(2) + Wire.eof(3)
        let execute = Wire.packet(0, [0x17], Wire.uint32(1), [0], Wire.uint32(1), [0], [1], [0xFD, 0], [1, 0x35])
        #expect(try steps(&session, prepareOK) == [send(execute)])
        #expect(
            try steps(&session, Wire.ok(1, affected: 1)) == [
                send(Wire.packet(0, [0x19], Wire.uint32(1))), finished("OK, 1 row affected"),
            ])
    }

    @Test("a prepared statement whose parameter count differs from the record is closed and finishes with an error")
    func parameterCountMismatch() throws {
        var session = try loggedIn()
        _ = try session.run(ReplayStatement(text: "select ?", parameters: ["1", "2"]))
        let prepareOK =
            Wire.packet(1, [0x00], Wire.uint32(9), Wire.uint16(0), Wire.uint16(1), [0], Wire.uint16(0))
            + Wire.columnDefinition(2)
        #expect(
            try steps(&session, prepareOK) == [
                send(Wire.packet(0, [0x19], Wire.uint32(9))),
                finished("error", error: "the statement takes 1 parameter; 2 were recorded"),
            ])
        _ = try session.run(ReplayStatement(text: "select 1"))
    }

    @Test("COM_STMT_PREPARE answered by ERR finishes with the error, nothing to close")
    func prepareError() throws {
        var session = try loggedIn()
        _ = try session.run(ReplayStatement(text: "select * from nosuch where id = ?", parameters: ["1"]))
        let error = ScriptedServer.error(1, code: 1146, state: "42S02", message: "Table 'x.nosuch' doesn't exist")
        #expect(
            try steps(&session, error) == [finished("error", error: "1146 (42S02): Table 'x.nosuch' doesn't exist")])
    }

    @Test("a parameter Sluice's display cut short is refused, and nothing is sent")
    func cutParameterRefused() throws {
        var session = try loggedIn()
        for cut in ["(too large to show)", "<long data>"] {
            #expect(throws: DatabaseClientError("parameter 2 was not recorded whole; it cannot be replayed")) {
                _ = try session.run(ReplayStatement(text: "insert into t values (?, ?)", parameters: ["x", cut]))
            }
        }
        // The session is still idle.
        _ = try session.run(ReplayStatement(text: "select 1"))
    }

    @Test("run before login or while a statement runs throws; quit is COM_QUIT at sequence 0")
    func runOutOfTurnAndQuit() throws {
        var session = MySQLClientSession(login: replayLogin)
        #expect(throws: DatabaseClientError.self) { _ = try session.run(ReplayStatement(text: "select 1")) }
        #expect(bytes(session.quit()) == [0x01, 0x00, 0x00, 0x00, 0x01])
        var ready = try loggedIn()
        _ = try ready.run(ReplayStatement(text: "select 1"))
        #expect(throws: DatabaseClientError.self) { _ = try ready.run(ReplayStatement(text: "select 2")) }
    }

    // MARK: Broken servers

    @Test("garbage, an oversized login packet, a wrong protocol version or sequence id throw one line")
    func brokenServers() throws {
        var http = MySQLClientSession(login: replayLogin)
        let httpMessage = failure(feed(&http, Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8)))
        #expect(httpMessage?.hasPrefix("the server's greeting announces 5526600 bytes") == true)

        var oversized = MySQLClientSession(login: replayLogin)
        _ = try steps(&oversized, ScriptedServer.greeting())
        #expect(
            failure(feed(&oversized, [0xFF, 0xFF, 0xFF, 0x02]))?.contains("authentication packet announces") == true)

        var version9 = MySQLClientSession(login: replayLogin)
        let v9 = Wire.packet(0, [0x09], Wire.cstring("3.20"), [UInt8](repeating: 0, count: 20))
        #expect(failure(feed(&version9, v9))?.hasPrefix("the server broke the MySQL protocol:") == true)

        var outOfOrder = MySQLClientSession(login: replayLogin)
        _ = try steps(&outOfOrder, ScriptedServer.greeting())
        #expect(
            failure(feed(&outOfOrder, Wire.ok(5)))
                == "the server's packet has sequence id 5 where 2 was due (packets out of order)")

        var truncatedGreeting = MySQLClientSession(login: replayLogin)
        #expect(failure(feed(&truncatedGreeting, Wire.packet(0, [0x0A], Wire.cstring("8.0")))) != nil)

        var unsolicited = try loggedIn()
        #expect(failure(feed(&unsolicited, Wire.ok(1))) == "the server sent a packet while no statement was running")
        var disconnected = try loggedIn()
        let inactivity = ScriptedServer.error(
            0, code: 4031, state: "HY000", message: "The client was disconnected by the server because of inactivity.")
        #expect(
            failure(feed(&disconnected, inactivity))
                == "the server ended the session: 4031 (HY000): The client was disconnected by the server because of "
                + "inactivity.")

        var badResponse = try loggedIn()
        _ = try badResponse.run(ReplayStatement(text: "select 1"))
        // A column count of 0 is no result set.
        #expect(failure(feed(&badResponse, Wire.packet(1, [0x00, 0xFF]))) != nil)
        var badCount = try loggedIn()
        _ = try badCount.run(ReplayStatement(text: "select 1"))
        #expect(failure(feed(&badCount, Wire.packet(1, [0xFC, 0x00]))) != nil)
    }

    @Test("a continued packet (0xFFFFFF bytes and a rest) is joined, a larger row streamed; either is one row")
    func continuedPacket() throws {
        let full = MySQLPacketFramer.maxPacketPayloadBytes
        // A text row of one value whose payload fills one packet and `rest` bytes of the next: 1 byte keeps it within
        // the framer's 16 MiB (joined), 10 bytes go over it (streamed).
        for (rest, value) in [(1, full - 3), (10, full + 1)] {
            var session = try loggedIn()
            _ = try session.run(ReplayStatement(text: "select big from t"))
            let payload = Wire.lenenc(UInt64(value)) + [UInt8](repeating: 0x61, count: value)
            #expect(payload.count == full + rest)
            let row =
                Wire.header(length: full, sequenceID: 3) + payload[0..<full] + Wire.header(length: rest, sequenceID: 4)
                + payload[full...]
            let response = Wire.packet(1, [1]) + Wire.columnDefinition(2) + row + Wire.ok(5, header: 0xFE)
            #expect(try steps(&session, response) == [finished("1 row")])
        }
    }
}
