import NIOCore
import SluiceMySQL
import Testing

/// A captured session's effective capabilities, the way an inspector derives them from the greeting and the client's
/// handshake response.
struct Negotiated {
    var capabilities: MySQLCapabilities
    var mariaDB: MariaDBCapabilities

    init(_ session: [CapturedStep]) throws {
        let greeting = try MySQLHandshake(payload: try #require(session[named: "greeting"].serverPayloads.first))
        let payload = try #require(session[named: "handshake response"].clientPayloads.first)
        guard case .response(let response) = try MySQLClientHandshake(payload: payload) else {
            throw MySQLProtocolError(kind: .malformedPacket, reason: "no handshake response")
        }
        capabilities = greeting.capabilities.intersection(response.capabilities)
        mariaDB = (greeting.mariaDBCapabilities ?? []).intersection(response.mariaDBCapabilities ?? [])
    }

    func tracker(for command: MySQLCommand) -> MySQLResponseTracker {
        MySQLResponseTracker(command: command, capabilities: capabilities, mariaDBCapabilities: mariaDB)
    }
}

@Suite("MySQL response packets and tracker")
struct MySQLResponseTrackerTests {
    static let classic: MySQLCapabilities = [.protocol41, .secureConnection, .transactions, .multiResults]
    static let deprecateEOF = classic.union(.deprecateEOF)

    // MARK: Packets

    @Test("captured OK packets: affected rows, insert id, status, and the info as a length-encoded string")
    func okPackets() throws {
        let insert = try #require(MariaDBCaptures.classic[named: "COM_QUERY insert"].serverPayloads.first)
        let ok = try MySQLOKPacket(payload: insert, capabilities: Self.classic)
        #expect(ok.affectedRows == 2)
        #expect(ok.lastInsertID == 1)
        #expect(ok.status == .autocommit)
        #expect(ok.warnings == 0)
        #expect(ok.info == "Records: 2  Duplicates: 0  Warnings: 0")
        #expect(ok.sessionStateChanges == nil)

        // The login OK under CLIENT_SESSION_TRACK: empty info, then the schema change (type 1, "sluice").
        let login = try #require(MariaDBCaptures.deprecateEOF[named: "auth result"].serverPayloads.first)
        let tracked = try MySQLOKPacket(payload: login, capabilities: Self.classic.union(.sessionTrack))
        #expect(tracked.status == [.autocommit, .sessionStateChanged])
        #expect(tracked.info == "")
        #expect(tracked.sessionStateChanges == buffer([0x01, 0x07, 0x06] + Array("sluice".utf8)))

        // An OK whose info is not a length-encoded string is taken whole (MySQL's documented string<EOF>).
        let eofInfo = [0x00, 0x00, 0x00] + Wire.uint16(2) + Wire.uint16(0) + Array("done".utf8)
        #expect(try MySQLOKPacket(payload: buffer(eofInfo), capabilities: Self.classic).info == "done")
    }

    @Test("captured ERR 1146: code, SQLSTATE 42S02 and message")
    func errorPacket() throws {
        let payload = try #require(MariaDBCaptures.classic[named: "COM_QUERY no such table"].serverPayloads.first)
        #expect(
            try MySQLErrorPacket(payload: payload, capabilities: Self.classic)
                == MySQLErrorPacket(code: 1146, sqlState: "42S02", message: "Table 'sluice.nosuch' doesn't exist"))
        let unknown = try #require(MariaDBCaptures.classic[named: "unknown command 0x42"].serverPayloads.first)
        #expect(
            try MySQLErrorPacket(payload: unknown, capabilities: Self.classic)
                == MySQLErrorPacket(code: 1047, sqlState: "08S01", message: "Unknown command"))
        #expect(!MySQLErrorPacket.isProgressReport(payload))
        #expect(kind { _ = try MySQLErrorPacket(payload: buffer([0xFF, 0x01]), capabilities: []) } == .malformedPacket)
        #expect(kind { _ = try MySQLErrorPacket(payload: buffer([0x00, 0, 0]), capabilities: []) } == .malformedPacket)
    }

    @Test("EOF, COM_STMT_PREPARE_OK, LOCAL INFILE request and column count packets")
    func otherPackets() throws {
        #expect(
            try MySQLEOFPacket(payload: buffer([0xFE, 0, 0, 0x42, 0]), capabilities: Self.classic)
                == MySQLEOFPacket(warnings: 0, status: [.autocommit, .cursorExists]))
        #expect(!MySQLEOFPacket.isEOF(buffer([0xFE] + [UInt8](repeating: 0, count: 8))))
        #expect(MySQLEOFPacket.isEOF(buffer([0xFE] + [UInt8](repeating: 0, count: 7))))

        let prepare = try #require(MariaDBCaptures.classic[named: "COM_STMT_PREPARE select"].serverPayloads.first)
        let prepared = try MySQLPrepareOK(payload: prepare)
        #expect(prepared.columnCount == 3)
        #expect(prepared.parameterCount == 1)
        #expect(prepared.warnings == 0)

        let infile = try #require(
            MariaDBCaptures.classic[named: "COM_QUERY load data local infile"].serverPayloads.first)
        #expect(try MySQLLocalInfileRequest(payload: infile).filename == "/tmp/sluice-capture.csv")

        #expect(
            try MySQLColumnCount(payload: buffer([0x03]), hasMetadataFlag: false) == MySQLColumnCount(columnCount: 3))
        #expect(
            try MySQLColumnCount(payload: buffer([0x03, 0x00]), hasMetadataFlag: true)
                == MySQLColumnCount(columnCount: 3, metadataFollows: false))
        #expect(kind { _ = try MySQLColumnCount(payload: buffer([0x00]), hasMetadataFlag: false) } == .malformedPacket)
        #expect(kind { _ = try MySQLColumnCount(payload: buffer([0xFF]), hasMetadataFlag: false) } == .malformedPacket)
        #expect(
            kind { _ = try MySQLColumnCount(payload: buffer([0xFC, 1]), hasMetadataFlag: false) } == .malformedPacket)
        #expect(
            kind { _ = try MySQLColumnCount(payload: buffer([0x01, 0x01]), hasMetadataFlag: false) } == .malformedPacket
        )
    }

    @Test("authentication packets: switch request, more data, the old switch, OK and ERR")
    func authenticationPackets() throws {
        let nonce = [UInt8](repeating: 0x5A, count: 32)
        #expect(
            try MySQLAuthenticationPacket(
                payload: buffer([0xFE] + Wire.cstring("client_ed25519") + nonce), capabilities: Self.classic)
                == .authSwitchRequest(pluginName: "client_ed25519", data: buffer(nonce)))
        #expect(
            try MySQLAuthenticationPacket(payload: buffer([0x01, 0x03]), capabilities: Self.classic)
                == .authMoreData(buffer([0x03])))
        #expect(
            try MySQLAuthenticationPacket(payload: buffer([0xFE]), capabilities: Self.classic) == .oldAuthSwitchRequest)
        let login = try #require(MariaDBCaptures.classic[named: "auth result"].serverPayloads.first)
        #expect(
            try MySQLAuthenticationPacket(payload: login, capabilities: Self.classic)
                == .ok(MySQLOKPacket(status: .autocommit)))
        let denied = [0xFF] + Wire.uint16(1045) + Array("#28000Access denied for user 'x'@'localhost'".utf8)
        #expect(
            try MySQLAuthenticationPacket(payload: buffer(denied), capabilities: Self.classic)
                == .error(
                    MySQLErrorPacket(code: 1045, sqlState: "28000", message: "Access denied for user 'x'@'localhost'")))
        #expect(
            kind { _ = try MySQLAuthenticationPacket(payload: buffer([0x05]), capabilities: []) } == .unexpectedPacket)
    }

    // MARK: The tracker on captured sessions

    /// Runs every command step of a captured session through a tracker: the response must be complete exactly at
    /// its last packet (LOAD DATA LOCAL in between takes the client's file). Returns each command's summary.
    static func summaries(_ session: [CapturedStep]) throws -> [String: MySQLResponseSummary] {
        let negotiated = try Negotiated(session)
        var summaries: [String: MySQLResponseSummary] = [:]
        var pending: (name: String, tracker: MySQLResponseTracker)?
        for step in session where !["greeting", "handshake response", "auth result"].contains(step.name) {
            var tracker: MySQLResponseTracker
            var name = step.name
            let serverFrames = step.serverPackets
            if let (pendingName, pendingTracker) = pending {
                // The client's file, then the server's answer.
                tracker = pendingTracker
                name = pendingName
                var framer = MySQLPacketFramer()
                var input = buffer(step.clientStream)
                while let frame = try framer.next(&input) {
                    #expect(tracker.awaitsClientData)
                    #expect(try tracker.clientSent(frame) == .inProgress)
                }
                pending = nil
            } else {
                let payload = try #require(step.clientPayloads.first)
                tracker = negotiated.tracker(
                    for: try MySQLCommand(payload: payload, capabilities: negotiated.capabilities))
            }
            if serverFrames.isEmpty {
                #expect(tracker.isComplete, "\(name): a command without an answer")
                summaries[name] = tracker.summary
                continue
            }
            let steps = try track(serverFrames, tracker: &tracker)
            if case .localInfileRequested = steps.last {
                pending = (name, tracker)
                continue
            }
            #expect(steps.last == .complete, "\(name): \(steps)")
            #expect(steps.dropLast().allSatisfy { $0 == .inProgress }, "\(name): \(steps)")
            #expect(tracker.isComplete)
            summaries[name] = tracker.summary
        }
        return summaries
    }

    static let sessions: [String: [CapturedStep]] = [
        "classic": MariaDBCaptures.classic, "deprecateEOF": MariaDBCaptures.deprecateEOF,
        "cacheMetadata": MariaDBCaptures.cacheMetadata, "cacheMetadataEOF": MariaDBCaptures.cacheMetadataEOF,
    ]

    @Test(
        "every command of every captured session completes at its last packet",
        arguments: ["classic", "deprecateEOF", "cacheMetadata", "cacheMetadataEOF"])
    func capturedSessions(name: String) throws {
        let session = try #require(Self.sessions[name])
        let summaries = try Self.summaries(session)
        // Every step but the greeting, the handshake, the login and the file sent for LOAD DATA is a command.
        #expect(summaries.count == session.count - 4, "\(name): \(summaries.keys.sorted())")
        let autocommit = MySQLServerStatus.autocommit
        let more: MySQLServerStatus = [.autocommit, .moreResultsExist]

        #expect(
            summaries["COM_QUERY select 1"]?.results
                == [.resultSet(MySQLResultSetSummary(columnCount: 1, rowCount: 1, status: autocommit))])
        #expect(summaries["COM_QUERY insert"]?.affectedRows == 2)
        #expect(summaries["COM_QUERY update"]?.affectedRows == 1)
        #expect(
            summaries["COM_QUERY no such table"]?.error
                == MySQLErrorPacket(code: 1146, sqlState: "42S02", message: "Table 'sluice.nosuch' doesn't exist"))
        let multi = try #require(summaries["COM_QUERY multi"])
        #expect(multi.results.count == 3)
        #expect(multi.results.first == .resultSet(MySQLResultSetSummary(columnCount: 1, rowCount: 1, status: more)))
        #expect(
            multi.results.dropFirst().first
                == .resultSet(MySQLResultSetSummary(columnCount: 2, rowCount: 1, status: more)))
        #expect(multi.affectedRows == 1)
        #expect(multi.status == autocommit)
        let failed = try #require(summaries["COM_QUERY multi with error"])
        #expect(failed.results.count == 2)
        #expect(failed.error?.code == 1146)
        #expect(failed.rowCount == 1)

        guard case .prepared(let insert)? = summaries["COM_STMT_PREPARE insert"]?.results.first else {
            Issue.record("no prepare OK")
            return
        }
        #expect(insert.parameterCount == 3)
        #expect(insert.columnCount == 0)
        guard case .prepared(let select)? = summaries["COM_STMT_PREPARE select"]?.results.first else {
            Issue.record("no prepare OK")
            return
        }
        #expect(select.parameterCount == 1)
        #expect(select.columnCount == 3)
        #expect(summaries["COM_STMT_PREPARE error"]?.error?.code == 1146)
        #expect(summaries["COM_STMT_EXECUTE insert (int, string, NULL)"]?.affectedRows == 1)
        #expect(
            summaries["COM_STMT_EXECUTE select (int)"]?.results
                == [.resultSet(MySQLResultSetSummary(columnCount: 3, rowCount: 4, status: autocommit))])
        #expect(summaries["COM_STMT_EXECUTE select again, types not resent"]?.rowCount == 3)
        #expect(
            summaries["COM_STMT_EXECUTE select with cursor"]?.results
                == [
                    .resultSet(
                        MySQLResultSetSummary(columnCount: 3, rowCount: 0, status: [.autocommit, .cursorExists]))
                ])
        #expect(
            summaries["COM_STMT_FETCH 2 rows"]?.results
                == [
                    .resultSet(
                        MySQLResultSetSummary(columnCount: nil, rowCount: 2, status: [.autocommit, .cursorExists]))
                ])
        #expect(
            summaries["COM_STMT_FETCH 10 rows"]?.results
                == [
                    .resultSet(
                        MySQLResultSetSummary(columnCount: nil, rowCount: 2, status: [.autocommit, .lastRowSent]))
                ])
        #expect(summaries["COM_STMT_EXECUTE dates"]?.rowCount == 1)
        #expect(summaries["COM_STMT_CLOSE (no reply)"]?.results == [])
        #expect(summaries["COM_QUIT"]?.results == [])

        let load = try #require(summaries["COM_QUERY load data local infile"])
        #expect(load.results.first == .localInfile(filename: "/tmp/sluice-capture.csv", bytesSent: 4))
        #expect(load.affectedRows == 2)
        #expect(load.results.count == 2)

        #expect(summaries["COM_PING"]?.results == [.ok(MySQLOKPacket(status: autocommit))])
        #expect(summaries["COM_RESET_CONNECTION"]?.results == [.ok(MySQLOKPacket(status: autocommit))])
        #expect(summaries["COM_INIT_DB"]?.error == nil)
        let setOption = try #require(summaries["COM_SET_OPTION off"]?.results.first)
        if name == "deprecateEOF" || name == "cacheMetadata" {
            #expect(setOption == .ok(MySQLOKPacket(header: 0xFE, status: autocommit)))
        } else {
            #expect(setOption == .eof(MySQLEOFPacket(status: autocommit)))
        }
        guard case .statistics(let statistics)? = summaries["COM_STATISTICS"]?.results.first else {
            Issue.record("no statistics")
            return
        }
        #expect(statistics.hasPrefix("Uptime: "))
        #expect(summaries["COM_FIELD_LIST t"]?.results == [.fieldList(columnCount: 3)])
        #expect(summaries["unknown command 0x42"]?.error?.code == 1047)
        let call = try #require(summaries["COM_QUERY call with results"])
        #expect(call.rowCount == 1)
        #expect(call.results.count == 2)
    }

    @Test("the real mysql client's select 1 and error, tracked with its negotiated capabilities")
    func mysqlClient() throws {
        let greeting = try MySQLHandshake(payload: try #require(MariaDBCaptures.cliSelect1.serverPayloads.first))
        guard
            case .response(let response) = try MySQLClientHandshake(
                payload: try #require(MariaDBCaptures.cliSelect1.clientPayloads.first))
        else {
            Issue.record("no response")
            return
        }
        let capabilities = greeting.capabilities.intersection(response.capabilities)
        let mariaDB = (greeting.mariaDBCapabilities ?? []).intersection(response.mariaDBCapabilities ?? [])
        #expect(mariaDB.contains(.cacheMetadata))
        #expect(!capabilities.contains(.deprecateEOF))

        var login = MySQLResponseTracker(expecting: .authentication, capabilities: capabilities)
        #expect(try track([MariaDBCaptures.cliSelect1.serverPackets[1]], tracker: &login) == [.complete])

        var tracker = MySQLResponseTracker(
            command: .query(sql: "select 1", attributes: []), capabilities: capabilities, mariaDBCapabilities: mariaDB)
        let steps = try track(Array(MariaDBCaptures.cliSelect1.serverPackets.dropFirst(2)), tracker: &tracker)
        #expect(steps == [.inProgress, .inProgress, .inProgress, .inProgress, .complete])
        #expect(tracker.summary.rowCount == 1)

        var error = MySQLResponseTracker(
            command: .query(sql: "select * from nosuch", attributes: []), capabilities: capabilities,
            mariaDBCapabilities: mariaDB)
        #expect(try track(Array(MariaDBCaptures.cliError.serverPackets.dropFirst(2)), tracker: &error) == [.complete])
        #expect(error.summary.error?.sqlState == "42S02")
    }

    // MARK: Hand-written responses

    @Test("select 1 without and with DEPRECATE_EOF, written from the protocol documentation")
    func selectOneHandWritten() throws {
        let classic = [
            Wire.packet(1, [0x01]), Wire.columnDefinition(2, name: "1"), Wire.eof(3), Wire.textRow(4, ["1"]),
            Wire.eof(5),
        ]
        var tracker = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
        #expect(
            try track(classic, tracker: &tracker) == [.inProgress, .inProgress, .inProgress, .inProgress, .complete])
        #expect(tracker.summary.rowCount == 1)

        let deprecated = [
            Wire.packet(1, [0x01]), Wire.columnDefinition(2, name: "1"), Wire.textRow(3, ["1"]),
            Wire.ok(4, header: 0xFE),
        ]
        var modern = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.deprecateEOF)
        #expect(try track(deprecated, tracker: &modern) == [.inProgress, .inProgress, .inProgress, .complete])
        #expect(modern.summary == tracker.summary)
    }

    @Test("multi-statement OKs chain on SERVER_MORE_RESULTS_EXISTS; an ERR ends everything")
    func multipleOKs() throws {
        let packets = [
            Wire.ok(1, affected: 1, insertID: 5, status: 0x000A), Wire.ok(2, affected: 2, insertID: 6, status: 0x000A),
            Wire.ok(3, affected: 3, status: 0x0003),
        ]
        var tracker = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
        #expect(try track(packets, tracker: &tracker) == [.inProgress, .inProgress, .complete])
        #expect(tracker.summary.affectedRows == 6)
        #expect(tracker.summary.status == [.inTransaction, .autocommit])

        let cut = [
            Wire.packet(1, [0x01]), Wire.columnDefinition(2), Wire.eof(3), Wire.textRow(4, ["1"]),
            Wire.textRow(5, [nil]),
            Wire.packet(6, [0xFF], Wire.uint16(1317), Array("#70100Query execution was interrupted".utf8)),
        ]
        var interrupted = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
        #expect(try track(cut, tracker: &interrupted).last == .complete)
        #expect(
            interrupted.summary.results == [
                .resultSet(MySQLResultSetSummary(columnCount: 1, rowCount: 2, isComplete: false)),
                .error(MySQLErrorPacket(code: 1317, sqlState: "70100", message: "Query execution was interrupted")),
            ])
    }

    @Test("a text row starting with 0xFE (a value of 16 MiB or more) is a row, whole or streamed")
    func rowStartingWithFE() throws {
        // A row whose first value claims an 8-byte length: long enough not to be an EOF.
        let row = Wire.packet(4, [0xFE] + Wire.uint64(6000) + [UInt8](repeating: 0x41, count: 6000))
        let packets = [Wire.packet(1, [0x01]), Wire.columnDefinition(2), Wire.eof(3), row, Wire.eof(5)]
        for cap in [MySQLPacketFramer.defaultMaxInspectedPayloadBytes, 4096] {
            var framer = MySQLPacketFramer(maxInspectedPayloadBytes: cap)
            var input = buffer(packets.flatMap { $0 })
            var tracker = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
            var last: MySQLResponseTracker.Step?
            while let frame = try framer.next(&input) {
                last = try tracker.receive(frame)
            }
            #expect(last == .complete)
            #expect(tracker.summary.rowCount == 1)
        }
    }

    @Test("LOCAL INFILE: the client's file, streamed when large, then the empty packet and the server's OK")
    func localInfile() throws {
        var tracker = MySQLResponseTracker(
            command: .query(sql: "load data local infile 'f.csv' into table t", attributes: []),
            capabilities: Self.classic)
        #expect(
            try tracker.receive(payload: buffer([0xFB] + Array("f.csv".utf8)))
                == .localInfileRequested(filename: "f.csv"))
        #expect(tracker.awaitsClientData)
        var framer = MySQLPacketFramer(maxInspectedPayloadBytes: 4096)
        var input = buffer(
            Wire.packet(2, [UInt8](repeating: 0x61, count: 10_000)) + Wire.packet(3, [0x62, 0x0A]) + Wire.packet(4))
        var frames = 0
        while let frame = try framer.next(&input) {
            #expect(try tracker.clientSent(frame) == .inProgress)
            frames += 1
        }
        #expect(frames >= 4)
        #expect(!tracker.awaitsClientData)
        #expect(try tracker.receive(payload: buffer(Array(Wire.ok(5, affected: 2).dropFirst(4)))) == .complete)
        #expect(
            tracker.summary.results == [
                .localInfile(filename: "f.csv", bytesSent: 10_002),
                .ok(MySQLOKPacket(affectedRows: 2, status: .autocommit)),
            ])
    }

    @Test("packets that cannot belong to the response are refused")
    func unexpected() throws {
        var done = MySQLResponseTracker(expecting: .okOrError, capabilities: Self.classic)
        _ = try track([Wire.ok(1)], tracker: &done)
        #expect(kind { _ = try done.receive(payload: buffer([0x00, 0, 0, 2, 0, 0, 0])) } == .unexpectedPacket)

        var none = MySQLResponseTracker(command: .quit, capabilities: Self.classic)
        #expect(none.isComplete)
        #expect(kind { _ = try none.receive(payload: buffer([0x00])) } == .unexpectedPacket)

        // A payload over the cap where an OK or a column count is due.
        var streamed = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
        var framer = MySQLPacketFramer(maxInspectedPayloadBytes: 4096)
        var input = buffer(Wire.packet(1, [UInt8](repeating: 0, count: 5000)))
        let start = try #require(try framer.next(&input))
        #expect(
            reason { _ = try streamed.receive(start) }
                == "response to a result-set command: a payload over the inspection cap where no row or binary log "
                + "event can come")

        var ping = MySQLResponseTracker(command: .ping, capabilities: Self.classic)
        #expect(kind { _ = try ping.receive(payload: buffer([0x01, 0x02])) } == .unexpectedPacket)
        var prepare = MySQLResponseTracker(command: .statementPrepare(sql: "x"), capabilities: Self.classic)
        #expect(kind { _ = try prepare.receive(payload: buffer([0x01])) } == .unexpectedPacket)
        var columns = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
        _ = try track([Wire.packet(1, [0x01]), Wire.columnDefinition(2)], tracker: &columns)
        #expect(kind { _ = try columns.receive(payload: buffer([0x01, 0x31])) } == .unexpectedPacket)
        var client = MySQLResponseTracker(expecting: .resultSets, capabilities: Self.classic)
        let empty = MySQLFrame(kind: .payload(ByteBuffer()), raw: ByteBuffer(), sequenceID: 2, lastSequenceID: 2)
        #expect(kind { _ = try client.clientSent(empty) } == .unexpectedPacket)
    }

    @Test("authentication: a switch to caching_sha2_password, fast-auth success, then OK")
    func authentication() throws {
        let packets = [
            Wire.packet(2, [0xFE], Wire.cstring("caching_sha2_password"), [UInt8](repeating: 0x33, count: 20), [0]),
            Wire.packet(4, [0x01, 0x03]), Wire.ok(5),
        ]
        var tracker = MySQLResponseTracker(
            command: .changeUser(user: "bob", database: nil), capabilities: Self.classic)
        #expect(tracker.expectation == .authentication)
        #expect(try track(packets, tracker: &tracker) == [.inProgress, .inProgress, .complete])
        #expect(
            tracker.summary.results == [
                .authenticationSwitch(pluginName: "caching_sha2_password"), .ok(MySQLOKPacket(status: .autocommit)),
            ])
    }

    @Test("a binary log dump streams events until EOF, even under DEPRECATE_EOF")
    func binlog() throws {
        let packets = [
            Wire.packet(1, [0x00] + [UInt8](repeating: 1, count: 30)), Wire.packet(2, [0x00, 9, 9]), Wire.eof(3),
        ]
        var tracker = MySQLResponseTracker(command: .binlogDump, capabilities: Self.deprecateEOF)
        #expect(try track(packets, tracker: &tracker) == [.inProgress, .inProgress, .complete])
        #expect(tracker.summary.results == [.binlogEvents(2)])
    }

    @Test("expectations follow the command")
    func expectations() {
        typealias Expectation = MySQLResponseTracker.Expectation
        #expect(Expectation(command: .statementSendLongData(statementID: 1, parameter: 0, byteCount: 3)) == .noResponse)
        #expect(Expectation(command: .statementClose(statementID: 1)) == .noResponse)
        #expect(Expectation(command: .setOption(0)) == .okOrError)
        #expect(Expectation(command: .bulkExecute(statementID: 1, flags: 0)) == .resultSets)
        #expect(Expectation(command: .statementFetch(statementID: 1, rowCount: 1)) == .fetch)
        #expect(Expectation(command: .other(0x42)) == .singlePacket)
        #expect(Expectation(command: .binlogDumpGTID) == .binlogStream)
    }
}
