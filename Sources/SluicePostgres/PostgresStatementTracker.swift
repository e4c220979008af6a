import SluiceModel
import SluicePolicy

/// What a PostgreSQL session has prepared and what the server still owes answers for, so each statement's
/// command gets its outcome (command tag, rows, error) from the replies. Pure: fed the messages in the order they
/// pass, it returns the commands that finished.
///
/// The server answers in order: a Query ends with ReadyForQuery; in the extended protocol each Execute ends with
/// CommandComplete, EmptyQueryResponse or PortalSuspended, and each Sync with ReadyForQuery. After an error the
/// server skips everything up to the next Sync (PROTOCOLS.md §1), so the Executes queued before it never run.
/// Notices, notifications and parameter changes come between replies and answer nothing.
struct PostgresStatementTracker {
    /// A prepared statement as Parse named it: its SQL, and what the policy (or an operator's hold) said.
    struct Statement {
        var sql: String
        var judgement: Judgement
        /// The parameter type OIDs Parse gave, to show binary parameters.
        var parameterTypes: [UInt32] = []
        /// How a hold of its Parse was decided; nil when the policy decided alone, or while the hold waits.
        var settled: (decision: CommandDecision, by: Decider)?
        /// The command its Parse was recorded as, when the Parse was held or blocked (an allowed Parse is recorded
        /// through its executions only).
        var heldCommand: Int64?
    }

    /// A statement bound to a portal, with its parameters as text.
    struct Portal {
        var statement: String
        var parameters: [String]
    }

    /// A reply the server still owes.
    enum Awaited: Equatable {
        /// A simple Query, recorded as this command; ends with ReadyForQuery.
        case query(Int64)
        /// An Execute, recorded as this command; ends with its completion (or an error).
        case execute(Int64)
        /// A Sync: ends with ReadyForQuery.
        case sync
    }

    /// A command whose reply came.
    struct Finished: Equatable {
        var index: Int64
        var outcome: CommandOutcome
    }

    private(set) var statements: [String: Statement] = [:]
    private var portals: [String: Portal] = [:]
    private var awaited: [Awaited] = []
    private var awaitedStart = 0
    /// Command tags of the Query being answered (a Query may hold several statements).
    private var queryTags: [String] = []
    private var queryError: String?

    /// Replies still owed, oldest first.
    var pending: ArraySlice<Awaited> { awaited[awaitedStart...] }

    // MARK: Frontend

    /// What one session may make Sluice keep of its prepared statements and portals: far above what applications
    /// prepare, and a bound on what a hostile client can make Sluice hold.
    static let maxStatements = 10_000
    static let maxStatementBytes = 64 << 20
    static let maxPortals = 1_000
    private var statementBytes = 0

    /// Keeps a statement Parse named. Returns false when that would pass the session's limits.
    mutating func parsed(_ name: String, _ statement: Statement) -> Bool {
        let replaced = statements[name]?.sql.utf8.count ?? 0
        let bytes = statementBytes - replaced + statement.sql.utf8.count
        guard bytes <= Self.maxStatementBytes, statements[name] != nil || statements.count < Self.maxStatements else { return false }
        statementBytes = bytes
        statements[name] = statement
        return true
    }

    /// Keeps what Bind put in a portal. Returns false when that would pass the session's limits.
    mutating func bound(portal: String, statement: String, parameters: [String]) -> Bool {
        guard portals[portal] != nil || portals.count < Self.maxPortals else { return false }
        portals[portal] = Portal(statement: statement, parameters: parameters)
        return true
    }

    mutating func closed(statement name: String) {
        statementBytes -= statements.removeValue(forKey: name)?.sql.utf8.count ?? 0
    }

    mutating func closed(portal name: String) {
        portals[name] = nil
    }

    /// What an Execute of `portal` runs: the statement's name and record, and the bound parameters. Nil when the
    /// portal is unknown (its Bind failed, or came before Sluice saw the session).
    func execution(of portal: String) -> (name: String, statement: Statement, parameters: [String])? {
        guard let bound = portals[portal], let statement = statements[bound.statement] else { return nil }
        return (bound.statement, statement, bound.parameters)
    }

    mutating func await(_ reply: Awaited) {
        awaited.append(reply)
    }

    // MARK: Backend

    /// CommandComplete: a statement of the Query, or the oldest Execute, is done.
    mutating func commandComplete(_ tag: String) -> Finished? {
        guard let first = pending.first else { return nil }
        switch first {
        case .query:
            queryTags.append(tag)
            return nil
        case .execute(let index):
            pop()
            return Finished(index: index, outcome: CommandOutcome(result: tag))
        case .sync:
            return nil
        }
    }

    /// EmptyQueryResponse or PortalSuspended: the oldest Execute is done with this result.
    mutating func executeEnded(_ result: String) -> Finished? {
        guard case .execute(let index)? = pending.first else {
            if case .query? = pending.first { queryTags.append(result) }
            return nil
        }
        pop()
        return Finished(index: index, outcome: CommandOutcome(result: result))
    }

    /// ErrorResponse. In a Query it ends the Query's statements (ReadyForQuery follows). In the extended protocol
    /// it fails the oldest Execute (whatever of its batch failed: its Parse, Bind or itself), and the server skips
    /// the batch's later Executes.
    mutating func error(_ message: String) -> [Finished] {
        guard let first = pending.first else { return [] }
        if case .query = first {
            queryError = queryError ?? message
            return []
        }
        var finished: [Finished] = []
        var failedOne = false
        while case .execute(let index)? = pending.first {
            pop()
            finished.append(Finished(index: index, outcome: CommandOutcome(error: failedOne ? "not run: an earlier message of its batch failed" : message)))
            failedOne = true
        }
        return finished
    }

    /// ReadyForQuery: the oldest Query or Sync is answered. Executes still owed before it got no reply of their
    /// own (the server skipped them), and say so.
    mutating func readyForQuery() -> [Finished] {
        var finished: [Finished] = []
        while let first = pending.first {
            pop()
            switch first {
            case .query(let index):
                let result = queryTags.isEmpty ? nil : queryTags.joined(separator: "; ")
                finished.append(Finished(index: index, outcome: CommandOutcome(result: result, error: queryError)))
                queryTags = []
                queryError = nil
                return finished
            case .execute(let index):
                finished.append(Finished(index: index, outcome: CommandOutcome(error: "not run: an earlier message of its batch failed")))
            case .sync:
                return finished
            }
        }
        return finished
    }

    private mutating func pop() {
        awaitedStart += 1
        // Compact now and then, so a long session's list does not grow.
        if awaitedStart > 64 && awaitedStart * 2 > awaited.count {
            awaited.removeFirst(awaitedStart)
            awaitedStart = 0
        }
    }
}
