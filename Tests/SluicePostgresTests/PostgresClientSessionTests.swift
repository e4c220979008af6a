import NIOCore
import SluiceCore
import Testing

@testable import SluicePostgres

/// Backend messages written by hand from the protocol chapter, independent of the session under test.
private enum Server {
    static func authentication(_ code: Int32, _ rest: [UInt8]...) -> [UInt8] {
        Wire.message("R", Wire.int32(code), rest.flatMap { $0 })
    }
    static let authenticationOk = authentication(0)
    static let ready = Wire.message("Z", Wire.byte("I"))
    /// What follows AuthenticationOk on a real server, then ReadyForQuery.
    static let loginTail =
        Wire.message("S", Wire.cstring("server_version"), Wire.cstring("17.2"))
        + Wire.message("K", Wire.int32(4242), Wire.int32(-559_038_737)) + ready

    static func error(_ sqlState: String, _ message: String, severity: String = "ERROR") -> [UInt8] {
        Wire.message(
            "E", Wire.byte("S"), Wire.cstring(severity), Wire.byte("V"), Wire.cstring(severity), Wire.byte("C"),
            Wire.cstring(sqlState), Wire.byte("M"), Wire.cstring(message), [0])
    }
    static let notice = Wire.message(
        "N", Wire.byte("S"), Wire.cstring("NOTICE"), Wire.byte("C"), Wire.cstring("00000"), Wire.byte("M"),
        Wire.cstring("hello"), [0])
    static func rowDescription(_ name: String) -> [UInt8] {
        Wire.message(
            "T", Wire.int16(1), Wire.cstring(name), Wire.uint32(0), Wire.int16(0), Wire.uint32(23), Wire.int16(4),
            Wire.int32(-1), Wire.int16(0))
    }
    static func dataRow(_ value: String?) -> [UInt8] {
        Wire.message("D", Wire.int16(1), Wire.value(value.map { Array($0.utf8) }))
    }
    static func commandComplete(_ tag: String) -> [UInt8] { Wire.message("C", Wire.cstring(tag)) }
}

/// RFC 7677 §3's example, with the RFC's nonce as the client nonce.
private enum RFC7677 {
    static let clientNonce = "rOprNGfwEbeRWgbNEkqO"
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let clientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    /// The same exchange with PostgreSQL's empty `n=` user name, as the session sends it; computed with Python's
    /// hashlib.pbkdf2_hmac and hmac, which reproduce the RFC's own values above.
    static let postgresClientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
    static let postgresServerFinal = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="
}

private func session(
    user: String = "user", database: String? = "shop", password: String? = "pencil"
) -> PostgresClientSession {
    PostgresClientSession(
        login: DatabaseLogin(user: user, database: database, password: password), applicationName: "sluice-replay",
        clientNonce: RFC7677.clientNonce)
}

/// A session logged in with trust authentication.
private func readySession() throws -> PostgresClientSession {
    var client = session()
    _ = client.start()
    #expect(try client.receive(buffer(Server.authenticationOk + Server.loginTail)) == [.ready])
    return client
}

private func send(_ bytes: [UInt8]) -> DatabaseClientStep { .send(buffer(bytes)) }

private func bytes(_ buffer: ByteBuffer?) -> [UInt8] { buffer.map { Array($0.readableBytesView) } ?? [] }

/// Runs `body` and returns the message of the DatabaseClientError it throws, or nil if it throws none.
private func failure(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as DatabaseClientError {
        return error.message
    } catch {
        return "not a DatabaseClientError: \(error)"
    }
}

@Suite("PostgresClientSession")
struct PostgresClientSessionTests {
    // MARK: Login

    @Test("the StartupMessage is protocol 3.0 with user, database, application_name and client_encoding")
    func startup() {
        var client = session(user: "alice")
        #expect(
            bytes(client.start())
                == Wire.startup([
                    ("user", "alice"), ("database", "shop"), ("application_name", "sluice-replay"),
                    ("client_encoding", "UTF8"),
                ]))
        var noDatabase = PostgresClientSession(
            login: DatabaseLogin(user: "bob", database: nil, password: nil), applicationName: "replayer")
        #expect(
            bytes(noDatabase.start())
                == Wire.startup([("user", "bob"), ("application_name", "replayer"), ("client_encoding", "UTF8")]))
    }

    @Test("trust: AuthenticationOk, parameters and the key, then ready once; notices are ignored")
    func trust() throws {
        var client = session()
        _ = client.start()
        #expect(try client.receive(buffer(Server.authenticationOk + Server.notice)) == [])
        #expect(try client.receive(buffer(Server.loginTail)) == [.ready])
        #expect(try client.receive(buffer(Server.notice)) == [])
    }

    @Test("cleartext: the password NUL-terminated")
    func cleartext() throws {
        var client = session(password: "secret")
        _ = client.start()
        #expect(
            try client.receive(buffer(Server.authentication(3))) == [send(Wire.message("p", Wire.cstring("secret")))])
        #expect(try client.receive(buffer(Server.authenticationOk + Server.loginTail)) == [.ready])
    }

    @Test("MD5: md5 of md5(password + user) in hex and the salt")
    func md5() throws {
        // python3: "md5" + md5(md5(b"secret" + b"postgres").hexdigest().encode() + bytes([1, 2, 3, 4])).hexdigest()
        let expected = "md5bb41a296aab6baccb36ff243a562abff"
        #expect(
            PostgresClientSession.md5Password(password: "secret", user: "postgres", salt: [1, 2, 3, 4]) == expected)
        var client = session(user: "postgres", password: "secret")
        _ = client.start()
        #expect(
            try client.receive(buffer(Server.authentication(5, [1, 2, 3, 4])))
                == [send(Wire.message("p", Wire.cstring(expected)))])
        #expect(try client.receive(buffer(Server.authenticationOk + Server.loginTail)) == [.ready])
    }

    @Test("a password method without a password says so")
    func missingPassword() {
        for request in [
            Server.authentication(3), Server.authentication(5, [1, 2, 3, 4]),
            Server.authentication(10, Wire.cstring("SCRAM-SHA-256"), [0]),
        ] {
            var client = session(user: "carol", password: nil)
            _ = client.start()
            #expect(
                failure { _ = try client.receive(buffer(request)) }
                    == "the server asks for a password for user carol; none was given")
        }
    }

    @Test("SCRAM-SHA-256 math against RFC 7677's example")
    func scramVector() throws {
        let final = try PostgresSCRAM.clientFinal(
            password: "pencil", clientNonce: RFC7677.clientNonce, clientFirstBare: "n=user,r=\(RFC7677.clientNonce)",
            serverFirst: RFC7677.serverFirst)
        #expect(final.message == RFC7677.clientFinal)
        try PostgresSCRAM.verify(serverFinal: RFC7677.serverFinal, expected: final.serverSignature)
        #expect(
            failure {
                try PostgresSCRAM.verify(serverFinal: RFC7677.postgresServerFinal, expected: final.serverSignature)
            }
                == "the server's SCRAM signature is wrong: it does not know this password")
    }

    @Test("SCRAM-SHA-256 login: never -PLUS, empty n=, the server's signature checked")
    func scramLogin() throws {
        var client = session()
        _ = client.start()
        let clientFirst = "n,,n=,r=\(RFC7677.clientNonce)"
        #expect(
            try client.receive(
                buffer(
                    Server.authentication(10, Wire.cstring("SCRAM-SHA-256-PLUS"), Wire.cstring("SCRAM-SHA-256"), [0])))
                == [
                    send(
                        Wire.message(
                            "p", Wire.cstring("SCRAM-SHA-256"), Wire.int32(Int32(clientFirst.utf8.count)),
                            Array(clientFirst.utf8)))
                ])
        #expect(
            try client.receive(buffer(Server.authentication(11, Array(RFC7677.serverFirst.utf8))))
                == [send(Wire.message("p", Array(RFC7677.postgresClientFinal.utf8)))])
        #expect(try client.receive(buffer(Server.authentication(12, Array(RFC7677.postgresServerFinal.utf8)))) == [])
        #expect(try client.receive(buffer(Server.authenticationOk + Server.loginTail)) == [.ready])
    }

    /// A session that has sent its SCRAM client-final-message.
    private func scramAwaitingFinal() throws -> PostgresClientSession {
        var client = session()
        _ = client.start()
        _ = try client.receive(buffer(Server.authentication(10, Wire.cstring("SCRAM-SHA-256"), [0])))
        _ = try client.receive(buffer(Server.authentication(11, Array(RFC7677.serverFirst.utf8))))
        return client
    }

    @Test("SCRAM fails on a wrong server signature, an e= error, or Ok without the final message")
    func scramServerProof() throws {
        var wrong = try scramAwaitingFinal()
        #expect(
            failure { _ = try wrong.receive(buffer(Server.authentication(12, Array(RFC7677.serverFinal.utf8)))) }
                == "the server's SCRAM signature is wrong: it does not know this password")
        // The session stays failed.
        #expect(failure { _ = try wrong.receive(buffer(Server.authenticationOk)) } != nil)

        var refused = try scramAwaitingFinal()
        #expect(
            failure { _ = try refused.receive(buffer(Server.authentication(12, Array("e=invalid-proof".utf8)))) }
                == "SCRAM authentication failed: invalid-proof")

        var skipped = try scramAwaitingFinal()
        #expect(
            failure { _ = try skipped.receive(buffer(Server.authenticationOk)) }
                == "the server ended SCRAM authentication without proving it knows the password")
    }

    @Test("SCRAM refuses a nonce that is not ours and a mandatory extension")
    func scramServerFirst() {
        for serverFirst in [
            "r=someoneElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "m=ext,r=\(RFC7677.clientNonce)x,s=AA==,i=1",
            "r=\(RFC7677.clientNonce)x,s=!!,i=4096", "r=\(RFC7677.clientNonce)x,s=AA==,i=0",
            // More rounds than an event loop may spend hashing for one server.
            "r=\(RFC7677.clientNonce)x,s=AA==,i=100001",
        ] {
            var client = session()
            _ = client.start()
            #expect(throws: DatabaseClientError.self) {
                _ = try client.receive(buffer(Server.authentication(10, Wire.cstring("SCRAM-SHA-256"), [0])))
                _ = try client.receive(buffer(Server.authentication(11, Array(serverFirst.utf8))))
            }
        }
    }

    @Test("methods a replay cannot use are named")
    func unsupportedMethods() {
        let cases: [([UInt8], String)] = [
            (Server.authentication(7), "the server asks for GSSAPI authentication, which a replay does not support"),
            (Server.authentication(9), "the server asks for SSPI authentication, which a replay does not support"),
            (
                Server.authentication(2),
                "the server asks for Kerberos V5 authentication, which a replay does not support"
            ),
            (
                Server.authentication(42),
                "the server asks for an unknown authentication method (code 42), which a replay does not support"
            ),
            (
                Server.authentication(10, Wire.cstring("SCRAM-SHA-256-PLUS"), [0]),
                "the server offers SASL SCRAM-SHA-256-PLUS, but a replay speaks only SCRAM-SHA-256 (without channel "
                    + "binding)"
            ),
        ]
        for (request, message) in cases {
            var client = session()
            _ = client.start()
            #expect(failure { _ = try client.receive(buffer(request)) } == message)
        }
    }

    @Test("an ErrorResponse during login is thrown as SQLSTATE: message")
    func loginError() throws {
        var client = session(password: "wrong")
        _ = client.start()
        _ = try client.receive(buffer(Server.authentication(3)))
        #expect(
            failure {
                _ = try client.receive(
                    buffer(Server.error("28P01", "password authentication failed for user \"user\"", severity: "FATAL"))
                )
            } == "28P01: password authentication failed for user \"user\"")
    }

    @Test("ReadyForQuery before AuthenticationOk is a protocol violation")
    func readyTooEarly() {
        var client = session()
        _ = client.start()
        #expect(
            failure { _ = try client.receive(buffer(Server.ready)) }
                == "the server sent an unexpected backend 'Z' ReadyForQuery while logging in")
    }

    // MARK: Statements

    @Test("a simple query: its bytes, rows and tag")
    func simpleQuery() throws {
        var client = try readySession()
        #expect(
            bytes(try client.run(ReplayStatement(text: "SELECT n FROM t")))
                == Wire.message("Q", Wire.cstring("SELECT n FROM t")))
        let reply =
            Server.rowDescription("n") + Server.dataRow("1") + Server.notice + Server.dataRow(nil)
            + Server.commandComplete("SELECT 2")
        #expect(try client.receive(buffer(reply)) == [])
        #expect(try client.receive(buffer(Server.ready)) == [.finished(ReplayOutcome(summary: "SELECT 2"))])
        // Ready again for the next statement.
        _ = try client.run(ReplayStatement(text: "SELECT 1"))
    }

    @Test("several statements in one query: their tags joined; no tag: rows counted; empty query")
    func summaries() throws {
        var client = try readySession()
        _ = try client.run(ReplayStatement(text: "INSERT INTO t VALUES (1); UPDATE t SET n = 2"))
        #expect(
            try client.receive(
                buffer(Server.commandComplete("INSERT 0 1") + Server.commandComplete("UPDATE 2") + Server.ready))
                == [.finished(ReplayOutcome(summary: "INSERT 0 1, UPDATE 2"))])

        _ = try client.run(ReplayStatement(text: "SELECT 1"))
        #expect(
            try client.receive(buffer(Server.dataRow("1") + Server.dataRow("2") + Server.ready))
                == [.finished(ReplayOutcome(summary: "2 rows"))])

        _ = try client.run(ReplayStatement(text: ""))
        #expect(
            try client.receive(buffer(Wire.message("I") + Server.ready))
                == [.finished(ReplayOutcome(summary: "empty query"))])
    }

    @Test("the extended protocol: Parse, Bind with text values and NULL, Describe, Execute, Sync")
    func extendedQuery() throws {
        var client = try readySession()
        let sent = try client.run(ReplayStatement(text: "SELECT $1, $2, $3", parameters: ["42", nil, "é"]))
        let expected =
            Wire.message("P", Wire.cstring(""), Wire.cstring("SELECT $1, $2, $3"), Wire.int16(0))
            + Wire.message(
                "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(3), Wire.value(Array("42".utf8)),
                Wire.value(nil), Wire.value([0xC3, 0xA9]), Wire.int16(0))
            + Wire.message("D", Wire.byte("P"), Wire.cstring(""))
            + Wire.message("E", Wire.cstring(""), Wire.int32(0))
            + Wire.message("S")
        #expect(bytes(sent) == expected)
        let reply =
            Wire.message("1") + Wire.message("2") + Server.rowDescription("a") + Server.dataRow("42")
            + Server.commandComplete("SELECT 1") + Server.ready
        #expect(try client.receive(buffer(reply)) == [.finished(ReplayOutcome(summary: "SELECT 1"))])

        // No parameters but not nil: still the extended protocol.
        #expect(bytes(try client.run(ReplayStatement(text: "SELECT 1", parameters: []))).first == UInt8(ascii: "P"))
    }

    @Test("an ErrorResponse to a statement is its outcome, and the session goes on")
    func statementError() throws {
        var client = try readySession()
        _ = try client.run(ReplayStatement(text: "SELECT * FROM secrets"))
        #expect(
            try client.receive(buffer(Server.error("42501", "permission denied for table secrets") + Server.ready))
                == [.finished(ReplayOutcome(summary: "error", error: "42501: permission denied for table secrets"))])
        _ = try client.run(ReplayStatement(text: "SELECT 1"))
        // A FATAL error ends the session: no ReadyForQuery follows.
        #expect(
            failure {
                _ = try client.receive(
                    buffer(
                        Server.error("57P01", "terminating connection due to administrator command", severity: "FATAL"))
                )
            } == "57P01: terminating connection due to administrator command")
    }

    @Test("a parameter the recorder cut short is refused")
    func cutParameters() throws {
        var client = try readySession()
        let refused: [([String?], String)] = [
            (["1", "abcdef… (300 bytes)"], "parameter 2 was recorded cut short; it cannot be replayed"),
            (["\\x0001… (4096 bytes)"], "parameter 1 was recorded cut short; it cannot be replayed"),
            (
                Array(repeating: "1", count: 100) + ["… 5 more"],
                "parameters from 101 on were recorded cut short (… 5 more); they cannot be replayed"
            ),
            (
                Array(repeating: nil, count: 65_536),
                "the statement has 65536 parameters; PostgreSQL takes at most 65535"
            ),
        ]
        for (parameters, message) in refused {
            #expect(failure { _ = try client.run(ReplayStatement(text: "SELECT", parameters: parameters)) } == message)
        }
        // Look-alikes that are not the recorder's markers.
        _ = try client.run(
            ReplayStatement(
                text: "SELECT", parameters: ["… (bytes)", "(300 bytes)", "… more", "…  5 more", "x… (3a bytes)"]))
    }

    @Test("COPY FROM STDIN is answered with CopyFail, and Sync too in the extended protocol")
    func copyIn() throws {
        let copyIn = Wire.message("G", [0], Wire.int16(1), Wire.int16(0))
        let copyFail = Wire.message("f", Wire.cstring("sluice replay does not send COPY data"))
        let failed = Server.error("57014", "COPY from stdin failed: sluice replay does not send COPY data")
        let outcome = ReplayOutcome(
            summary: "error", error: "57014: COPY from stdin failed: sluice replay does not send COPY data")

        var client = try readySession()
        _ = try client.run(ReplayStatement(text: "COPY t FROM STDIN"))
        #expect(try client.receive(buffer(copyIn)) == [send(copyFail)])
        #expect(try client.receive(buffer(failed + Server.ready)) == [.finished(outcome)])

        _ = try client.run(ReplayStatement(text: "COPY t FROM STDIN", parameters: []))
        #expect(
            try client.receive(buffer(Wire.message("1") + Wire.message("2") + Wire.message("n") + copyIn))
                == [send(copyFail + Wire.message("S"))])
        #expect(try client.receive(buffer(failed + Server.ready)) == [.finished(outcome)])
    }

    @Test("COPY TO STDOUT is read through to its tag; COPY BOTH is refused")
    func copyOut() throws {
        var client = try readySession()
        _ = try client.run(ReplayStatement(text: "COPY t TO STDOUT"))
        let reply =
            Wire.message("H", [0], Wire.int16(1), Wire.int16(0)) + Wire.message("d", Array("1\n".utf8))
            + Wire.message("d", Array("2\n".utf8)) + Wire.message("c") + Server.commandComplete("COPY 2") + Server.ready
        #expect(try client.receive(buffer(reply)) == [.finished(ReplayOutcome(summary: "COPY 2"))])

        _ = try client.run(ReplayStatement(text: "START_REPLICATION"))
        #expect(
            failure { _ = try client.receive(buffer(Wire.message("W", [0], Wire.int16(0)))) }
                == "the server started COPY BOTH (replication), which a replay cannot take part in")
    }

    @Test("a DataRow too large to buffer is streamed and counted")
    func largeRow() throws {
        var client = try readySession()
        _ = try client.run(ReplayStatement(text: "SELECT big"))
        let value = [UInt8](repeating: 0x61, count: PostgresFramer.defaultMaxInspectedMessageBytes + 10)
        let row = Wire.message("D", Wire.int16(1), Wire.value(value))
        #expect(try client.receive(buffer(Array(row.prefix(100)))) == [])
        #expect(
            try client.receive(buffer(Array(row.dropFirst(100)) + Server.ready)) == [
                .finished(ReplayOutcome(summary: "1 row"))
            ])
    }

    @Test("a whole SCRAM login and a query fed one byte at a time give the same steps")
    func byteAtATime() throws {
        let login =
            Server.authentication(10, Wire.cstring("SCRAM-SHA-256"), [0])
            + Server.authentication(11, Array(RFC7677.serverFirst.utf8))
            + Server.authentication(12, Array(RFC7677.postgresServerFinal.utf8)) + Server.authenticationOk
            + Server.loginTail
        let answer =
            Server.rowDescription("n") + Server.dataRow("1") + Server.commandComplete("SELECT 1") + Server.ready

        func steps(chunk: Int) throws -> [DatabaseClientStep] {
            var client = session()
            _ = client.start()
            var steps: [DatabaseClientStep] = []
            for start in stride(from: 0, to: login.count, by: chunk) {
                steps += try client.receive(buffer(Array(login[start..<min(start + chunk, login.count)])))
            }
            _ = try client.run(ReplayStatement(text: "SELECT 1"))
            for start in stride(from: 0, to: answer.count, by: chunk) {
                steps += try client.receive(buffer(Array(answer[start..<min(start + chunk, answer.count)])))
            }
            return steps
        }

        let whole = try steps(chunk: login.count + answer.count)
        #expect(whole.count == 4)
        #expect(whole.last == .finished(ReplayOutcome(summary: "SELECT 1")))
        #expect(try steps(chunk: 1) == whole)
        #expect(try steps(chunk: 7) == whole)
    }

    // MARK: Protocol violations

    @Test("malformed lengths and unknown types throw, and the session stays failed")
    func malformed() throws {
        let cases: [[UInt8]] = [
            [UInt8(ascii: "R")] + Wire.int32(3),
            [UInt8(ascii: "R")] + Wire.int32(-1),
            [UInt8(ascii: "D")] + Wire.int32(Int32.max),
            [UInt8(ascii: "?")] + Wire.int32(4),
            Wire.message("R"),  // no code
            Wire.message("R", Wire.int32(5), [1, 2]),  // short salt
            Wire.message("R", Wire.int32(0), [0]),  // trailing byte
        ]
        for input in cases {
            var client = session()
            _ = client.start()
            #expect(throws: DatabaseClientError.self) { _ = try client.receive(buffer(input)) }
            #expect(throws: DatabaseClientError.self) { _ = try client.receive(buffer(Server.authenticationOk)) }
        }
    }

    @Test("messages out of place are refused")
    func unexpectedMessages() throws {
        var idle = try readySession()
        #expect(
            failure { _ = try idle.receive(buffer(Server.dataRow("1"))) }
                == "the server sent an unexpected backend 'D' DataRow while no statement runs")

        var running = try readySession()
        _ = try running.run(ReplayStatement(text: "SELECT 1"))
        #expect(throws: DatabaseClientError.self) { _ = try running.run(ReplayStatement(text: "SELECT 2")) }
        #expect(
            failure { _ = try running.receive(buffer(Server.authenticationOk)) }
                == "the server sent an unexpected backend 'R' Authentication while a statement runs")

        var loggingIn = session()
        _ = loggingIn.start()
        #expect(throws: DatabaseClientError.self) { _ = try loggingIn.run(ReplayStatement(text: "SELECT 1")) }
        #expect(throws: DatabaseClientError.self) {
            _ = try loggingIn.receive(buffer(Server.authentication(12, Array(RFC7677.serverFinal.utf8))))
        }
    }

    @Test("Terminate")
    func quit() {
        #expect(bytes(session().quit()) == Wire.message("X"))
    }

    @Test("SASLprep: ASCII unchanged, compatibility forms normalised, prohibited characters left raw")
    func saslPrep() {
        #expect(PostgresSCRAM.saslPrep("pencil") == Array("pencil".utf8))
        // Fullwidth A and a no-break space: NFKC and the space mapping.
        #expect(PostgresSCRAM.saslPrep("\u{FF21}\u{00A0}b") == Array("A b".utf8))
        // A soft hyphen is mapped to nothing.
        #expect(PostgresSCRAM.saslPrep("a\u{00AD}é") == Array("aé".utf8))
        // A private-use character is prohibited: the raw bytes.
        #expect(PostgresSCRAM.saslPrep("\u{FF21}\u{E000}") == Array("\u{FF21}\u{E000}".utf8))
    }
}
