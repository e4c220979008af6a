import NIOCore

/// Follows the server's response to one command, without I/O: fed the server's frames in order, it says when the
/// response is complete and what it amounted to (`summary`).
///
/// A relaying inspector keeps one tracker per command in flight (clients may pipeline): the next seq-0 client packet
/// is a new command only once the tracker of the previous one is complete, and the summary becomes the command's
/// outcome (affected rows, rows, error). Like postgres-nio's state machines it decides and the handler acts: the
/// tracker reads packets and returns a `Step`, nothing else.
///
/// **Shapes** (PROTOCOLS.md §2; MariaDB "Result set packets"). A result is an OK, an ERR, a LOCAL INFILE request, or
/// a result set: column count (with MARIADB_CLIENT_CACHE_METADATA / CLIENT_OPTIONAL_RESULTSET_METADATA a byte saying
/// whether definitions follow), column definitions, an EOF unless CLIENT_DEPRECATE_EOF, rows, then an EOF — or under
/// CLIENT_DEPRECATE_EOF an OK with a 0xFE header. A packet starting with 0xFE ends the rows only when it is shorter
/// than 9 bytes (EOF) or, under CLIENT_DEPRECATE_EOF, than 0xFFFFFF bytes: a text row can start with 0xFE, the
/// length prefix of a value of 16 MiB or more. SERVER_MORE_RESULTS_EXISTS in the closing status means another result
/// follows (multi-statements, CALL); an ERR always ends the response. A COM_STMT_EXECUTE that opens a cursor ends
/// after the column definitions with `cursorExists` in the status; COM_STMT_FETCH answers rows and an EOF/OK.
/// MariaDB's progress reports (ERR code 0xFFFF) may come at any time and are skipped.
///
/// **Streamed payloads.** A payload over the framer's cap arrives as `.streamStart` and `.streamPart`s. Only rows and
/// binary log events can be that large (every status packet is small), so a stream counts as one row or event, its
/// parts are skipped, and a stream anywhere else is an `unexpectedPacket` error.
///
/// **LOCAL INFILE.** After the server's `0xFB` + file name (`Step.localInfileRequested`), the client sends the file's
/// contents in packets and then an empty packet: pass the client's frames to `clientSent(_:)`. The server then
/// answers OK or ERR, which may announce more results.
public struct MySQLResponseTracker: Sendable {
    /// The shape of response a command gets.
    public enum Expectation: Hashable, Sendable {
        /// COM_QUIT, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE: the server sends nothing.
        case noResponse
        /// One OK or ERR (or EOF): COM_PING, COM_INIT_DB, COM_STMT_RESET, COM_SET_OPTION, COM_RESET_CONNECTION …
        case okOrError
        /// OKs, ERR, LOCAL INFILE requests and result sets: COM_QUERY, COM_STMT_EXECUTE, COM_STMT_BULK_EXECUTE.
        case resultSets
        /// COM_STMT_PREPARE: COM_STMT_PREPARE_OK and its definitions, or ERR.
        case preparedStatement
        /// COM_STMT_FETCH: rows and an EOF/OK, or ERR.
        case fetch
        /// COM_FIELD_LIST: column definitions and an EOF/OK, or ERR.
        case fieldList
        /// COM_STATISTICS: one string packet.
        case statistics
        /// The handshake's authentication or COM_CHANGE_USER: AuthSwitchRequest and AuthMoreData (the client answers
        /// in between) until OK or ERR.
        case authentication
        /// COM_BINLOG_DUMP: events until EOF or ERR (possibly never).
        case binlogStream
        /// A command this library does not know: the first packet ends the response (servers answer those with ERR
        /// 1047, or a single OK).
        case singlePacket

        /// The response `command` gets.
        public init(command: MySQLCommand) {
            switch command {
            case .quit, .statementSendLongData, .statementClose:
                self = .noResponse
            case .initDB, .ping, .processKill, .statementReset, .setOption, .resetConnection, .createDB, .dropDB:
                self = .okOrError
            case .query, .processInfo, .statementExecute, .bulkExecute:
                self = .resultSets
            case .statementPrepare:
                self = .preparedStatement
            case .statementFetch:
                self = .fetch
            case .fieldList:
                self = .fieldList
            case .statistics:
                self = .statistics
            case .changeUser:
                self = .authentication
            case .binlogDump, .binlogDumpGTID:
                self = .binlogStream
            case .other:
                self = .singlePacket
            }
        }
    }

    /// What a frame meant.
    public enum Step: Equatable, Sendable {
        /// More of the response is to come.
        case inProgress
        /// The server asked for a local file: the client's next packets are its contents (pass them to
        /// `clientSent(_:)`), ended by an empty packet.
        case localInfileRequested(filename: String)
        /// The response is complete; `summary` holds it.
        case complete
    }

    public let expectation: Expectation
    /// The effective capabilities (the client's ∧ the advertised).
    public let capabilities: MySQLCapabilities
    /// The effective MariaDB extended capabilities (empty for MySQL).
    public let mariaDBCapabilities: MariaDBCapabilities
    public private(set) var summary = MySQLResponseSummary()

    /// Where in the prepared statement's definitions the response is.
    private struct PrepareProgress: Sendable {
        var parametersLeft: Int
        var parametersEOF: Bool
        var columnsLeft: Int
        var columnsEOF: Bool
    }

    private enum State: Sendable {
        /// The first packet of a (next) result.
        case awaitingResult
        case columnDefinitions(remaining: Int, columnCount: Int)
        /// The EOF after the column definitions (without CLIENT_DEPRECATE_EOF).
        case columnsEOF(columnCount: Int)
        case rows(columnCount: Int?, rowCount: Int)
        case prepareDefinitions(PrepareProgress)
        /// Column definitions of COM_FIELD_LIST until EOF.
        case fieldDefinitions(count: Int)
        /// The client is sending a local file.
        case localInfileData(filename: String, bytes: Int)
        /// The client sent its empty packet: the server's OK or ERR is due.
        case localInfileResult
        case authenticating
        case binlog(events: Int)
        case complete
    }

    private var state: State
    /// A server payload is being streamed: its parts are skipped until the last.
    private var serverStreaming = false
    /// A client payload (file contents) is being streamed.
    private var clientStreaming = false

    public init(
        expecting expectation: Expectation, capabilities: MySQLCapabilities,
        mariaDBCapabilities: MariaDBCapabilities = []
    ) {
        self.expectation = expectation
        self.capabilities = capabilities
        self.mariaDBCapabilities = mariaDBCapabilities
        switch expectation {
        case .noResponse: state = .complete
        case .fetch: state = .rows(columnCount: nil, rowCount: 0)
        case .fieldList: state = .fieldDefinitions(count: 0)
        case .authentication: state = .authenticating
        case .binlogStream: state = .binlog(events: 0)
        default: state = .awaitingResult
        }
    }

    public init(command: MySQLCommand, capabilities: MySQLCapabilities, mariaDBCapabilities: MariaDBCapabilities = []) {
        self.init(
            expecting: Expectation(command: command), capabilities: capabilities,
            mariaDBCapabilities: mariaDBCapabilities)
    }

    public var isComplete: Bool {
        if case .complete = state { return true }
        return false
    }

    /// True while the client is sending a local file: its packets go to `clientSent(_:)`, not to the command decoder.
    public var awaitsClientData: Bool {
        if case .localInfileData = state { return true }
        return false
    }

    private var deprecateEOF: Bool { capabilities.contains(.deprecateEOF) }

    // MARK: Server frames

    /// Takes the server's next frame. Throws when the frame cannot belong to this response (after the response ended,
    /// a stream where a status packet is due, a malformed status packet); the inspector should then fail the
    /// connection, since it no longer knows where commands begin.
    public mutating func receive(_ frame: MySQLFrame) throws(MySQLProtocolError) -> Step {
        switch frame.kind {
        case .payload(let payload):
            guard !serverStreaming else { throw unexpected("a new payload while a streamed payload was unfinished") }
            return try receive(payload: payload)
        case .streamStart:
            guard !serverStreaming else { throw unexpected("a new payload while a streamed payload was unfinished") }
            switch state {
            case .rows(let columns, let rows):
                state = .rows(columnCount: columns, rowCount: rows + 1)
            case .binlog(let events):
                state = .binlog(events: events + 1)
                summary.results = [.binlogEvents(events + 1)]
            default:
                throw unexpected("a payload over the inspection cap where no row or binary log event can come")
            }
            serverStreaming = true
            return .inProgress
        case .streamPart(_, let isLast):
            guard serverStreaming else { throw unexpected("a stream part without a stream start") }
            serverStreaming = !isLast
            return .inProgress
        }
    }

    /// Takes the server's next whole payload (for callers that frame themselves).
    public mutating func receive(payload: ByteBuffer) throws(MySQLProtocolError) -> Step {
        if case .complete = state {
            throw unexpected("a server packet after the response to this command was complete")
        }
        let header = payload.getInteger(at: payload.readerIndex, as: UInt8.self)
        if header == 0xFF, MySQLErrorPacket.isProgressReport(payload) {
            return .inProgress
        }
        switch state {
        case .awaitingResult:
            return try firstPacket(payload, header: header)
        case .columnDefinitions(let remaining, let columnCount):
            guard header != 0xFF else { return try finish(withError: payload) }
            if remaining > 1 {
                state = .columnDefinitions(remaining: remaining - 1, columnCount: columnCount)
            } else if deprecateEOF {
                state = .rows(columnCount: columnCount, rowCount: 0)
            } else {
                state = .columnsEOF(columnCount: columnCount)
            }
            return .inProgress
        case .columnsEOF(let columnCount):
            guard header != 0xFF else { return try finish(withError: payload) }
            guard MySQLEOFPacket.isEOF(payload) else {
                throw unexpected("the column definitions are not followed by an EOF packet")
            }
            let eof = try MySQLEOFPacket(payload: payload, capabilities: capabilities)
            if eof.status.contains(.cursorExists) {
                // A cursor was opened: the rows come with COM_STMT_FETCH.
                return endResultSet(
                    MySQLResultSetSummary(
                        columnCount: columnCount, rowCount: 0, warnings: eof.warnings, status: eof.status))
            }
            state = .rows(columnCount: columnCount, rowCount: 0)
            return .inProgress
        case .rows(let columnCount, let rowCount):
            if header == 0xFF {
                summary.results.append(
                    .resultSet(MySQLResultSetSummary(columnCount: columnCount, rowCount: rowCount, isComplete: false)))
                return try finish(withError: payload)
            }
            guard isEndOfRows(payload, header: header) else {
                state = .rows(columnCount: columnCount, rowCount: rowCount + 1)
                return .inProgress
            }
            let (warnings, status) = try endOfRows(payload)
            return endResultSet(
                MySQLResultSetSummary(columnCount: columnCount, rowCount: rowCount, warnings: warnings, status: status))
        case .prepareDefinitions(let progress):
            guard header != 0xFF else { return try finish(withError: payload) }
            return try prepareDefinition(payload, progress)
        case .fieldDefinitions(let count):
            guard header != 0xFF else { return try finish(withError: payload) }
            guard isEndOfRows(payload, header: header) else {
                state = .fieldDefinitions(count: count + 1)
                return .inProgress
            }
            let (_, status) = try endOfRows(payload)
            summary.results.append(.fieldList(columnCount: count))
            summary.status = status
            state = .complete
            return .complete
        case .localInfileData:
            // The server reads the whole file before answering; only an error can come early.
            guard header == 0xFF else { throw unexpected("a server packet while the client was sending a local file") }
            return try finish(withError: payload)
        case .localInfileResult:
            switch header {
            case 0x00:
                return try ok(payload)
            case 0xFF:
                return try finish(withError: payload)
            default:
                throw unexpected("the answer to a local file is neither OK nor ERR")
            }
        case .authenticating:
            return try authentication(payload)
        case .binlog(let events):
            if header == 0xFF {
                return try finish(withError: payload)
            }
            if MySQLEOFPacket.isEOF(payload) {
                // COM_BINLOG_DUMP ends with a real EOF even under CLIENT_DEPRECATE_EOF.
                let eof = try MySQLEOFPacket(payload: payload, capabilities: capabilities)
                summary.status = eof.status
                state = .complete
                return .complete
            }
            state = .binlog(events: events + 1)
            summary.results = [.binlogEvents(events + 1)]
            return .inProgress
        case .complete:
            throw unexpected("a server packet after the response to this command was complete")
        }
    }

    private mutating func firstPacket(_ payload: ByteBuffer, header: UInt8?) throws(MySQLProtocolError) -> Step {
        switch expectation {
        case .okOrError:
            switch header {
            case 0x00:
                return try ok(payload)
            case 0xFF:
                return try finish(withError: payload)
            case 0xFE where isEndOfRows(payload, header: header):
                return try statusEOF(payload)
            default:
                throw unexpected("the answer is neither OK, EOF nor ERR")
            }
        case .statistics:
            if header == 0xFF {
                return try finish(withError: payload)
            }
            summary.results.append(.statistics(MySQLPayloadReader.lenientString(payload.readableBytesView)))
            state = .complete
            return .complete
        case .singlePacket:
            switch header {
            case 0x00:
                if let ok = try? MySQLOKPacket(payload: payload, capabilities: capabilities) {
                    summary.results.append(.ok(ok))
                    summary.status = ok.status
                } else {
                    summary.results.append(.other(byteCount: payload.readableBytes))
                }
            case 0xFF:
                return try finish(withError: payload)
            case 0xFE where MySQLEOFPacket.isEOF(payload):
                return try statusEOF(payload)
            default:
                summary.results.append(.other(byteCount: payload.readableBytes))
            }
            state = .complete
            return .complete
        case .preparedStatement:
            switch header {
            case 0xFF:
                return try finish(withError: payload)
            case 0x00:
                let prepared = try MySQLPrepareOK(payload: payload)
                summary.results.append(.prepared(prepared))
                let progress = PrepareProgress(
                    parametersLeft: prepared.parameterCount,
                    parametersEOF: !deprecateEOF && prepared.parameterCount > 0, columnsLeft: prepared.columnCount,
                    columnsEOF: !deprecateEOF && prepared.columnCount > 0)
                return advancePrepare(progress)
            default:
                throw unexpected("the answer to COM_STMT_PREPARE is neither COM_STMT_PREPARE_OK nor ERR")
            }
        default:
            break
        }
        // Result sets: COM_QUERY, COM_STMT_EXECUTE and the results after SERVER_MORE_RESULTS_EXISTS.
        switch header {
        case 0x00:
            return try ok(payload)
        case 0xFF:
            return try finish(withError: payload)
        case 0xFB:
            let request = try MySQLLocalInfileRequest(payload: payload)
            state = .localInfileData(filename: request.filename, bytes: 0)
            return .localInfileRequested(filename: request.filename)
        default:
            let hasMetadataFlag =
                capabilities.contains(.optionalResultsetMetadata)
                || mariaDBCapabilities.contains(.cacheMetadata)
            let count = try MySQLColumnCount(payload: payload, hasMetadataFlag: hasMetadataFlag)
            if count.metadataFollows {
                state = .columnDefinitions(remaining: count.columnCount, columnCount: count.columnCount)
            } else if deprecateEOF {
                state = .rows(columnCount: count.columnCount, rowCount: 0)
            } else {
                state = .columnsEOF(columnCount: count.columnCount)
            }
            return .inProgress
        }
    }

    private mutating func prepareDefinition(
        _ payload: ByteBuffer, _ progress: PrepareProgress
    ) throws(MySQLProtocolError) -> Step {
        var progress = progress
        if progress.parametersLeft > 0 {
            progress.parametersLeft -= 1
        } else if progress.parametersEOF {
            guard MySQLEOFPacket.isEOF(payload) else {
                throw unexpected("the parameter definitions are not followed by an EOF packet")
            }
            progress.parametersEOF = false
        } else if progress.columnsLeft > 0 {
            progress.columnsLeft -= 1
        } else if progress.columnsEOF {
            guard MySQLEOFPacket.isEOF(payload) else {
                throw unexpected("the column definitions are not followed by an EOF packet")
            }
            progress.columnsEOF = false
        }
        return advancePrepare(progress)
    }

    private mutating func advancePrepare(_ progress: PrepareProgress) -> Step {
        if progress.parametersLeft == 0, !progress.parametersEOF, progress.columnsLeft == 0, !progress.columnsEOF {
            state = .complete
            return .complete
        }
        state = .prepareDefinitions(progress)
        return .inProgress
    }

    private mutating func authentication(_ payload: ByteBuffer) throws(MySQLProtocolError) -> Step {
        switch try MySQLAuthenticationPacket(payload: payload, capabilities: capabilities) {
        case .ok(let ok):
            summary.results.append(.ok(ok))
            summary.status = ok.status
            state = .complete
            return .complete
        case .error(let error):
            summary.results.append(.error(error))
            state = .complete
            return .complete
        case .authSwitchRequest(let plugin, _):
            summary.results.append(.authenticationSwitch(pluginName: plugin))
            return .inProgress
        case .oldAuthSwitchRequest:
            summary.results.append(.authenticationSwitch(pluginName: "mysql_old_password"))
            return .inProgress
        case .authMoreData:
            return .inProgress
        }
    }

    /// An OK as a result: the response goes on when it says more results exist.
    private mutating func ok(_ payload: ByteBuffer) throws(MySQLProtocolError) -> Step {
        let ok = try MySQLOKPacket(payload: payload, capabilities: capabilities)
        summary.results.append(.ok(ok))
        summary.status = ok.status
        return moreResults(ok.status)
    }

    /// An EOF (or, under CLIENT_DEPRECATE_EOF, an OK with 0xFE) answering a whole command.
    private mutating func statusEOF(_ payload: ByteBuffer) throws(MySQLProtocolError) -> Step {
        if deprecateEOF, let ok = try? MySQLOKPacket(payload: payload, capabilities: capabilities) {
            summary.results.append(.ok(ok))
            summary.status = ok.status
        } else {
            let eof = try MySQLEOFPacket(payload: payload, capabilities: capabilities)
            summary.results.append(.eof(eof))
            summary.status = eof.status
        }
        state = .complete
        return .complete
    }

    private mutating func finish(withError payload: ByteBuffer) throws(MySQLProtocolError) -> Step {
        summary.results.append(.error(try MySQLErrorPacket(payload: payload, capabilities: capabilities)))
        state = .complete
        return .complete
    }

    private mutating func endResultSet(_ set: MySQLResultSetSummary) -> Step {
        summary.results.append(.resultSet(set))
        summary.status = set.status
        return moreResults(set.status)
    }

    private mutating func moreResults(_ status: MySQLServerStatus) -> Step {
        if status.contains(.moreResultsExist) {
            state = .awaitingResult
            return .inProgress
        }
        state = .complete
        return .complete
    }

    /// Whether a 0xFE packet ends rows (or definitions): shorter than 9 bytes, or under CLIENT_DEPRECATE_EOF shorter
    /// than 0xFFFFFF; a longer one is a text row whose first value is 16 MiB or more.
    private func isEndOfRows(_ payload: ByteBuffer, header: UInt8?) -> Bool {
        guard header == 0xFE else { return false }
        return payload.readableBytes < 9
            || (deprecateEOF && payload.readableBytes < MySQLPacketFramer.maxPacketPayloadBytes)
    }

    /// Warnings and status of the packet that ends rows: an OK with 0xFE under CLIENT_DEPRECATE_EOF, else an EOF. A
    /// 5-byte EOF under CLIENT_DEPRECATE_EOF (too short for that OK) is read as an EOF.
    private func endOfRows(_ payload: ByteBuffer) throws(MySQLProtocolError) -> (UInt16, MySQLServerStatus) {
        if deprecateEOF, let ok = try? MySQLOKPacket(payload: payload, capabilities: capabilities) {
            return (ok.warnings, ok.status)
        }
        let eof = try MySQLEOFPacket(payload: payload, capabilities: capabilities)
        return (eof.warnings, eof.status)
    }

    private func unexpected(_ what: String) -> MySQLProtocolError {
        MySQLProtocolError(kind: .unexpectedPacket, reason: "response to a \(expectation) command: \(what)")
    }

    // MARK: Client frames

    /// Takes a client frame while `awaitsClientData`: a piece of the local file, or the empty packet that ends it.
    public mutating func clientSent(_ frame: MySQLFrame) throws(MySQLProtocolError) -> Step {
        guard case .localInfileData(let filename, let bytes) = state else {
            throw unexpected("client data while no local file was requested")
        }
        switch frame.kind {
        case .payload(let payload):
            guard !clientStreaming else { throw unexpected("a new client payload inside a streamed one") }
            if payload.readableBytes == 0 {
                summary.results.append(.localInfile(filename: filename, bytesSent: bytes))
                state = .localInfileResult
            } else {
                state = .localInfileData(filename: filename, bytes: bytes + payload.readableBytes)
            }
        case .streamStart(let head):
            guard !clientStreaming else { throw unexpected("a new client payload inside a streamed one") }
            clientStreaming = true
            state = .localInfileData(filename: filename, bytes: bytes + head.readableBytes)
        case .streamPart(let part, let isLast):
            guard clientStreaming else { throw unexpected("a client stream part without a stream start") }
            clientStreaming = !isLast
            state = .localInfileData(filename: filename, bytes: bytes + part.readableBytes)
        }
        return .inProgress
    }
}

extension MySQLResponseTracker.Expectation: CustomStringConvertible {
    public var description: String {
        switch self {
        case .noResponse: "no-response"
        case .okOrError: "OK-or-ERR"
        case .resultSets: "result-set"
        case .preparedStatement: "COM_STMT_PREPARE"
        case .fetch: "COM_STMT_FETCH"
        case .fieldList: "COM_FIELD_LIST"
        case .statistics: "COM_STATISTICS"
        case .authentication: "authentication"
        case .binlogStream: "COM_BINLOG_DUMP"
        case .singlePacket: "unknown"
        }
    }
}
