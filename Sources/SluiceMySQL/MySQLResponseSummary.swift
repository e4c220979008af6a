/// What a command's response amounted to, as `MySQLResponseTracker` builds it: one entry per result, in order (a
/// multi-statement COM_QUERY or a stored procedure's CALL has several).
public struct MySQLResponseSummary: Equatable, Sendable {
    public var results: [MySQLResult]
    /// The status flags of the last OK or EOF: the transaction state after the command.
    public var status: MySQLServerStatus?

    public init(results: [MySQLResult] = [], status: MySQLServerStatus? = nil) {
        self.results = results
        self.status = status
    }

    /// The ERR that ended the response, if one did.
    public var error: MySQLErrorPacket? {
        guard case .error(let error)? = results.last else { return nil }
        return error
    }

    /// The affected rows of all OK results (INSERT, UPDATE, DELETE …), summed.
    public var affectedRows: UInt64 {
        results.reduce(0) { total, result in
            guard case .ok(let ok) = result else { return total }
            return total &+ ok.affectedRows
        }
    }

    /// The rows of all result sets, summed.
    public var rowCount: Int {
        results.reduce(0) { total, result in
            guard case .resultSet(let set) = result else { return total }
            return total + set.rowCount
        }
    }
}

/// One result within a command's response.
public enum MySQLResult: Equatable, Sendable {
    /// An OK: a statement without a result set, or a command's success.
    case ok(MySQLOKPacket)
    /// An ERR; it always ends the response.
    case error(MySQLErrorPacket)
    /// An EOF answering a command (COM_SET_OPTION, COM_DEBUG, COM_SHUTDOWN without CLIENT_DEPRECATE_EOF).
    case eof(MySQLEOFPacket)
    /// A result set (rows of a COM_QUERY, COM_STMT_EXECUTE or COM_STMT_FETCH).
    case resultSet(MySQLResultSetSummary)
    /// A COM_STMT_PREPARE's success: keep `statementID → (SQL, parameterCount)` for later executions.
    case prepared(MySQLPrepareOK)
    /// The server asked for a local file (LOAD DATA LOCAL INFILE) and the client sent `bytesSent` bytes of it; the
    /// OK or ERR that answers the data follows as the next result.
    case localInfile(filename: String, bytesSent: Int)
    /// COM_FIELD_LIST's column definitions.
    case fieldList(columnCount: Int)
    /// COM_STATISTICS's answer, e.g. `Uptime: 42  Threads: 1  Questions: 7 …`.
    case statistics(String)
    /// During authentication (the handshake or COM_CHANGE_USER): the server asked the client to use this plugin.
    case authenticationSwitch(pluginName: String)
    /// The binary log events a COM_BINLOG_DUMP has streamed so far.
    case binlogEvents(Int)
    /// A single packet answering a command this library does not know, that is no OK, ERR or EOF.
    case other(byteCount: Int)
}

/// A result set as the tracker counted it; column definitions and rows are relayed, not kept.
public struct MySQLResultSetSummary: Equatable, Sendable {
    /// Nil for a COM_STMT_FETCH, whose rows come without column definitions.
    public var columnCount: Int?
    public var rowCount: Int
    public var warnings: UInt16
    /// The status of the EOF or OK that ended it. With `cursorExists` after a COM_STMT_EXECUTE, a cursor was opened
    /// and the rows come with COM_STMT_FETCH; after a COM_STMT_FETCH, the cursor has more rows (`lastRowSent` when
    /// not).
    public var status: MySQLServerStatus
    /// False when an ERR cut the result set short (the ERR follows as the next result).
    public var isComplete: Bool

    public init(
        columnCount: Int?, rowCount: Int, warnings: UInt16 = 0, status: MySQLServerStatus = [], isComplete: Bool = true
    ) {
        self.columnCount = columnCount
        self.rowCount = rowCount
        self.warnings = warnings
        self.status = status
        self.isComplete = isComplete
    }
}
