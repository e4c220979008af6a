import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import SluiceModel

/// Opening a store and reading it back: the queries behind `sluice flows`, `sluice show` and later the TUI.
public final class Store: Sendable {
    let database: DatabaseQueue
    let sourcePath: String

    /// Opens an existing store read-only; a missing one is an error that says where it looked.
    public init(directory: DataDirectory) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: directory.databasePath) else {
            throw StoreError("no store at \(directory.databasePath) (nothing recorded there yet; see --data-dir)")
        }
        self.database = try Self.open(path: directory.databasePath, readOnly: true)
        self.sourcePath = directory.databasePath
    }

    /// Opens a store file directly (what `sluice view FILE` and `w` produce).
    public init(file path: String) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError("no store at \(path)") }
        self.database = try Self.open(path: path, readOnly: true)
        self.sourcePath = path
    }

    static func open(path: String, readOnly: Bool) throws(StoreError) -> DatabaseQueue {
        var configuration = GRDB.Configuration()
        configuration.readonly = readOnly
        configuration.busyMode = .timeout(5)
        configuration.label = "sluice-store"
        // The writer is the store's only writer and inserts a flow's row before its exchange, messages and errors
        // (`FoldedBatch`). SQLite's checks of that cost a tenth of its time, and a violation would fail the batch
        // for good: retried forever while the engine waits. The schema still says which rows belong together.
        configuration.foreignKeysEnabled = false
        if !readOnly {
            // SQLite gives the -wal and -shm files the database file's mode, so making it 0600 covers all three.
            let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw StoreError("cannot open store \(path): \(String(cString: strerror(errno)).lowercased())")
            }
            fchmod(fd, 0o600)
            Glibc.close(fd)
        }
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            if !readOnly {
                try queue.writeWithoutTransaction { db in
                    // A new store's pages are 16 KiB: SQLite writes each page (and in WAL mode each page's frame header)
                    // with a system call of its own, and recording is all appends. An existing store keeps its size.
                    try db.execute(sql: "PRAGMA page_size = 16384")
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    // WAL with NORMAL survives a crash of the process; a power cut may lose the last commits.
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                }
                try Schema.migrator.migrate(queue)
            } else if try queue.read({ db in try !Schema.migrator.hasCompletedMigrations(db) }) {
                throw StoreError("\(path) was written by a newer or older Sluice; open it once with `sluice record` to migrate it")
            }
            return queue
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot open store \(path): \(describe(error))")
        }
    }

    static func describe(_ error: Error) -> String {
        if let databaseError = error as? DatabaseError {
            return databaseError.message ?? "\(databaseError.resultCode)"
        }
        return "\(error)"
    }

    // MARK: Queries

    /// The newest `limit` flows, oldest first (as a terminal table reads).
    /// - Parameter session: only the flows this session's proxies carried.
    public func flows(limit: Int, session: SessionID? = nil) throws(StoreError) -> [StoredFlow] {
        let filter = session == nil ? "" : "WHERE session_id = ?"
        let arguments: [(any DatabaseValueConvertible)?] = (session.map { [$0.rawValue] } ?? []) + [limit]
        return try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT f.*, h.* FROM (SELECT * FROM flows \(filter) ORDER BY id DESC LIMIT ?) f
                    LEFT JOIN http h ON h.flow_id = f.id ORDER BY f.id
                    """,
                arguments: StatementArguments(arguments)
            ).map { row in try StoredFlow(row: row) }
        }
    }

    /// How many flows the store holds of each kind.
    public func flowCountsByKind() throws(StoreError) -> [String: Int] {
        try read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, count(*) AS n FROM flows GROUP BY kind") {
                counts[try row.required("kind", String.self)] = try row.required("n", Int.self)
            }
            return counts
        }
    }

    /// Writes the given flows, their messages, errors, commands and alerts to a new store file at `path` (which
    /// `sluice view` opens).
    public func export(_ ids: [FlowID], to path: String) throws(StoreError) {
        guard !FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path) exists already; choose a new file") }
        let destination = try Self.open(path: path, readOnly: false)
        let list = ids.map { String($0.rawValue) }.joined(separator: ",")
        do {
            try destination.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS source", arguments: [sourcePath])
                try db.inTransaction {
                    try db.execute(sql: "INSERT INTO flows SELECT * FROM source.flows WHERE id IN (\(list))")
                    try db.execute(
                        sql: """
                            INSERT INTO sessions SELECT * FROM source.sessions
                            WHERE id IN (SELECT session_id FROM source.flows WHERE id IN (\(list)))
                            """
                    )
                    try db.execute(
                        sql: """
                            INSERT INTO bodies SELECT * FROM source.bodies WHERE id IN
                              (SELECT body_id FROM source.messages WHERE flow_id IN (\(list)) AND body_id IS NOT NULL)
                            """
                    )
                    try db.execute(sql: "INSERT INTO messages SELECT * FROM source.messages WHERE flow_id IN (\(list))")
                    try db.execute(sql: "INSERT INTO errors SELECT * FROM source.errors WHERE flow_id IN (\(list))")
                    try db.execute(sql: "INSERT INTO http SELECT * FROM source.http WHERE flow_id IN (\(list))")
                    try db.execute(sql: "INSERT INTO commands SELECT * FROM source.commands WHERE flow_id IN (\(list))")
                    try db.execute(sql: "INSERT INTO alerts SELECT * FROM source.alerts WHERE flow_id IN (\(list))")
                    return .commit
                }
                try db.execute(sql: "DETACH DATABASE source")
                try db.checkpoint(.truncate)
            }
        } catch {
            throw StoreError("cannot write \(path): \(Self.describe(error))")
        }
    }

    public func flow(_ id: FlowID) throws(StoreError) -> StoredFlow? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT f.*, h.* FROM flows f LEFT JOIN http h ON h.flow_id = f.id WHERE f.id = ?", arguments: [id.rawValue]
            ).map { row in try StoredFlow(row: row) }
        }
    }

    /// A flow's messages in the order they travelled.
    public func messages(of id: FlowID) throws(StoreError) -> [StoredMessage] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT m.*, b.data AS body_data FROM messages m LEFT JOIN bodies b ON b.id = m.body_id
                    WHERE m.flow_id = ? ORDER BY m.seq
                    """,
                arguments: [id.rawValue]
            )
                .map { row in try StoredMessage(row: row) }
        }
    }

    public func errors(of id: FlowID) throws(StoreError) -> [StoredError] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM errors WHERE flow_id = ? ORDER BY id", arguments: [id.rawValue])
                .map { row in try StoredError(row: row) }
        }
    }

    /// `PRAGMA integrity_check`'s answer: `["ok"]` for a sound file.
    public func integrityCheck() throws(StoreError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try database.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot read the store: \(Self.describe(error))")
        }
    }
}

public struct StoredFlow: Sendable, Equatable {
    public var id: FlowID
    public var kind: String
    public var listener: String
    public var client: String
    public var server: String
    public var startedAt: Date
    public var endedAt: Date?
    public var bytesUp: Int64
    public var bytesDown: Int64
    public var state: String
    public var error: String?
    public var payloadTruncated: Bool
    /// Of the totals, the bytes of HTTP heads.
    public var headBytesUp: Int64
    public var headBytesDown: Int64
    /// The operator marked it (`m` in the TUI).
    public var marked: Bool
    /// First bytes of the first message each way, when the query asked for them.
    public var previewUp: Data?
    public var previewDown: Data?
    /// The request and response of an HTTP or WebSocket flow.
    public var http: StoredHTTP?
    /// The flow this one replayed, when Sluice sent it again.
    public var replayOf: FlowID?
    /// The session whose proxy carried it.
    public var session: SessionID?
    /// Its commands' texts and risks, when the query asked for them (`flowPage`).
    public var commands: [CommandNote] = []

    public struct CommandNote: Sendable, Equatable {
        public var text: String
        public var risk: RiskLevel
    }

    init(row: Row) throws(StoreError) {
        id = FlowID(try row.required("id", Int64.self))
        kind = try row.required("kind", String.self)
        listener = try row.required("listener", String.self)
        client = try row.required("client", String.self)
        server = try row.required("server", String.self)
        startedAt = Date(timeIntervalSince1970: try row.required("started_at", Double.self))
        endedAt = row.optional("ended_at", Double.self).map(Date.init(timeIntervalSince1970:))
        bytesUp = row.optional("bytes_up", Int64.self) ?? 0
        bytesDown = row.optional("bytes_down", Int64.self) ?? 0
        state = row.optional("state", String.self) ?? "?"
        error = row.optional("error", String.self)
        payloadTruncated = row.optional("payload_truncated", Bool.self) ?? false
        headBytesUp = row.hasColumn("head_bytes_up") ? row.optional("head_bytes_up", Int64.self) ?? 0 : 0
        headBytesDown = row.hasColumn("head_bytes_down") ? row.optional("head_bytes_down", Int64.self) ?? 0 : 0
        marked = row.hasColumn("marked") ? row.optional("marked", Bool.self) ?? false : false
        previewUp = row.hasColumn("preview_up") ? row.optional("preview_up", Data.self) : nil
        previewDown = row.hasColumn("preview_down") ? row.optional("preview_down", Data.self) : nil
        http = row.hasColumn("method") && row.optional("method", String.self) != nil ? try StoredHTTP(row: row) : nil
        replayOf = row.hasColumn("replay_of_flow") ? row.optional("replay_of_flow", Int64.self).map { FlowID($0) } : nil
        replayOf = replayOf ?? http?.replayOf
        session = row.hasColumn("session_id") ? row.optional("session_id", Int64.self).map { SessionID($0) } : nil
    }

    public var duration: TimeInterval? { endedAt.map { $0.timeIntervalSince(startedAt) } }

    /// Who sent the request: the client's address, or for a replay the flow it repeats (its recorded client is
    /// the placeholder `replay:0`).
    public var origin: String {
        replayOf.map(Formatting.replay(of:)) ?? client
    }
}

public struct StoredMessage: Sendable, Equatable {
    public var id: Int64
    public var sequence: Int64
    public var direction: Direction
    public var time: Date
    public var size: Int
    public var payload: Data
    /// This message is an operator's edit of message `editedFromSequence`.
    public var editedFromSequence: Int64?
    /// For held messages: held, forwarded, edited, dropped, killed.
    public var disposition: String?
    public var kind: MessageKind

    init(row: Row) throws(StoreError) {
        kind = row.optional("kind", String.self).flatMap(MessageKind.init(rawValue:)) ?? .chunk
        id = try row.required("id", Int64.self)
        sequence = try row.required("seq", Int64.self)
        direction = Direction(rawValue: try row.required("direction", String.self)) ?? .up
        time = Date(timeIntervalSince1970: try row.required("at", Double.self))
        size = try row.required("size", Int.self)
        // A body kept once in `bodies` comes from there (`messages(of:)` joins it in).
        payload = row.optional("body_data", Data.self) ?? row.optional("payload", Data.self) ?? Data()
        editedFromSequence = row.optional("edited_from_seq", Int64.self)
        disposition = row.optional("disposition", String.self)
    }

    public var isTruncated: Bool { payload.count < size }
}

/// An HTTP exchange's heads and timings; bodies are the flow's `body` messages.
public struct StoredHTTP: Sendable, Equatable {
    public var requestedAt: Date
    public var method: String
    public var url: String
    public var version: String
    public var requestHeaders: [HeaderField]
    public var replayOf: FlowID?
    public var respondedAt: Date?
    public var status: Int?
    public var reason: String?
    public var responseVersion: String?
    public var responseHeaders: [HeaderField]
    public var synthetic: Bool
    public var timings: HTTPTimings

    init(row: Row) throws(StoreError) {
        requestedAt = Date(timeIntervalSince1970: try row.required("requested_at", Double.self))
        method = try row.required("method", String.self)
        url = try row.required("url", String.self)
        version = try row.required("version", String.self)
        requestHeaders = JSONObject.parseHeaders(try row.required("request_headers", String.self)) ?? []
        replayOf = row.optional("replay_of", Int64.self).map { FlowID($0) }
        respondedAt = row.optional("responded_at", Double.self).map(Date.init(timeIntervalSince1970:))
        status = row.optional("status", Int.self)
        reason = row.optional("reason", String.self)
        responseVersion = row.optional("response_version", String.self)
        responseHeaders = row.optional("response_headers", String.self).flatMap(JSONObject.parseHeaders) ?? []
        synthetic = row.optional("synthetic", Bool.self) ?? false
        timings = HTTPTimings(
            connect: row.optional("connect_ms", Double.self), tls: row.optional("tls_ms", Double.self),
            firstByte: row.optional("first_byte_ms", Double.self)
        )
    }
}

public struct StoredError: Sendable, Equatable {
    public var time: Date
    public var phase: String
    public var message: String

    init(row: Row) throws(StoreError) {
        time = Date(timeIntervalSince1970: try row.required("at", Double.self))
        phase = try row.required("phase", String.self)
        message = try row.required("message", String.self)
    }
}

/// Column access that cannot crash on a damaged file: GRDB's plain subscript stops the process on a type mismatch.
extension Row {
    func optional<T: DatabaseValueConvertible>(_ column: String, _ type: T.Type) -> T? {
        T.fromDatabaseValue(self[column] as DatabaseValue)
    }

    func required<T: DatabaseValueConvertible>(_ column: String, _ type: T.Type) throws(StoreError) -> T {
        guard let value = optional(column, type) else {
            throw StoreError("damaged store: column \(column) holds \(self[column] as DatabaseValue) where \(T.self) belongs")
        }
        return value
    }
}
