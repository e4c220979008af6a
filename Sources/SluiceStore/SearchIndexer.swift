import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import SluiceModel

/// Fills the `SearchIndex` from the store: reads what the writer committed since it last looked (messages, HTTP
/// heads, commands, errors, each by its row id) and adds their text, a batch per transaction, remembering how far
/// it got in the index itself. It runs behind the recorder on a thread of its own at the lowest priority (`start`), or all
/// at once for `sluice search` (`catchUp`), which is also how a store recorded before the index existed gets one.
///
/// Under a load that records faster than it indexes, it falls behind and catches up when the load eases: the
/// relay never waits for it.
public final class SearchIndexer: @unchecked Sendable {
    // @unchecked: `stopping` and `thread` are guarded by `condition`; the rest is used by the indexing thread only
    // (or by `catchUp`'s caller, when no thread runs).
    private let source: DatabaseQueue
    private let index: SearchIndex
    private let settings: Settings
    private let condition = NSCondition()
    private var stopping = false
    private var thread: Thread?
    /// Hands the core to any other thread every 100 µs of indexing: a batch tokenizes up to megabytes of text, and
    /// a nice value alone lets it finish its time slice before a woken thread of the relay's path runs.
    private var courtesy = CPUYield()

    public struct Settings: Sendable {
        /// The most of one message's payload indexed (`store.search_bytes`); 0 indexes no payloads.
        public var maxPayloadBytes: Int
        /// Rows read from each source per transaction.
        public var batchSize: Int
        /// How long the thread rests once it has caught up.
        public var idleInterval: TimeInterval

        /// Events a second above which the recorder counts as busy and indexing waits.
        public var busyEventsPerSecond: Double

        public init(maxPayloadBytes: Int = 16 * 1024, batchSize: Int = 500, idleInterval: TimeInterval = 0.5, busyEventsPerSecond: Double = 200) {
            self.maxPayloadBytes = maxPayloadBytes
            self.batchSize = batchSize
            self.idleInterval = idleInterval
            self.busyEventsPerSecond = busyEventsPerSecond
        }
    }

    public init(directory: DataDirectory, index: SearchIndex, settings: Settings = Settings()) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: directory.databasePath) else {
            throw StoreError("no store at \(directory.databasePath) (nothing recorded there yet; see --data-dir)")
        }
        source = try Store.open(path: directory.databasePath, readOnly: true)
        self.index = index
        self.settings = settings
    }

    /// Indexes on a thread of its own until `stop`, at the lowest priority (nice 19), and only while the recorder is
    /// quiet: indexing costs CPU (FTS5 tokenizes every piece), which traffic through Sluice pays for in latency even
    /// at nice 19. Under steady traffic the index waits and catches up when the traffic eases; `sluice search` indexes
    /// what is missing itself.
    /// - Parameter recorder: the writer's progress; the recorder is busy while it takes more than
    ///   `Settings.busyEventsPerSecond` events a second. Nil: always index.
    public func start(recorder: (any StoreWriteProgress)? = nil) {
        let busyAt = settings.busyEventsPerSecond
        let thread = Thread { [self] in
            // On Linux the nice value is per thread (`who == 0`: this one); 19 takes only what nothing else wants.
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
            var lastCount = recorder?.eventsReceived ?? 0
            var lastLook = Date()
            while !shouldStop(waiting: 0) {
                if let recorder {
                    let now = Date()
                    let count = recorder.eventsReceived
                    let rate = Double(count - lastCount) / max(now.timeIntervalSince(lastLook), 0.001)
                    (lastCount, lastLook) = (count, now)
                    if rate > busyAt {
                        if shouldStop(waiting: settings.idleInterval) { break }
                        continue
                    }
                }
                let caughtUp = (try? indexBatch()) ?? true
                if caughtUp, shouldStop(waiting: settings.idleInterval) { break }
            }
        }
        thread.name = "sluice-search"
        condition.withLock { self.thread = thread }
        thread.start()
    }

    /// Stops the thread after its current batch (what it indexed is committed).
    public func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
    }

    /// Indexes everything recorded so far, now, on the caller's thread.
    /// - Returns: how many pieces it added.
    @discardableResult
    public func catchUp() throws(StoreError) -> Int {
        var added = 0
        while try !indexBatch(added: &added) {}
        return added
    }

    private func shouldStop(waiting interval: TimeInterval) -> Bool {
        condition.withLock {
            if !stopping, interval > 0 { _ = condition.wait(until: Date().addingTimeInterval(interval)) }
            return stopping
        }
    }

    private func indexBatch() throws(StoreError) -> Bool {
        var added = 0
        return try indexBatch(added: &added)
    }

    /// One batch from every source, in one transaction of the index.
    /// - Returns: whether every source is caught up.
    private func indexBatch(added: inout Int) throws(StoreError) -> Bool {
        let limit = settings.batchSize
        let maxBytes = settings.maxPayloadBytes
        do {
            var result = (caughtUp: true, pieces: 0)
            // One immediate transaction from reading the progress to writing it: a second indexer (a `sluice view`
            // or `sluice search` beside the recorder) waits for this batch instead of indexing the same rows.
            try index.database.inTransaction(.immediate) { db in
                let progress = try Dictionary(
                    uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT source, last_id FROM progress").map { row in
                        (row["source"] as String, row["last_id"] as Int64)
                    }
                )
                let read = try source.read { sourceDB in
                    try SourceBatch(sourceDB, after: progress, limit: limit, maxPayloadBytes: maxBytes)
                }
                // Prepared once per connection: compiling the SQL again for every piece cost as much as FTS5's own
                // tokenizing.
                let insertFlow = try db.cachedStatement(sql: "INSERT INTO piece_flows (flow) VALUES (?)")
                let insertText = try db.cachedStatement(sql: "INSERT INTO pieces (rowid, text) VALUES (?, ?)")
                for piece in read.pieces {
                    courtesy.tick()
                    try insertFlow.execute(arguments: [piece.flow])
                    try insertText.execute(arguments: [db.lastInsertedRowID, piece.text])
                }
                for (name, last) in read.advanced {
                    try db.execute(
                        sql: "INSERT INTO progress (source, last_id) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET last_id = excluded.last_id",
                        arguments: [name, last]
                    )
                }
                result = (read.caughtUp, read.pieces.count)
                return .commit
            }
            added += result.pieces
            return result.caughtUp
        } catch {
            throw StoreError("cannot index \(index.path): \(error)")
        }
    }
}

/// One read of the store's new rows: the text of each, by flow, and how far each source got.
struct SourceBatch {
    struct Piece {
        var flow: Int64
        var text: String
    }

    var pieces: [Piece] = []
    /// Each source's last row read.
    var advanced: [String: Int64] = [:]
    /// No source had a full batch left.
    var caughtUp = true

    init(_ db: Database, after progress: [String: Int64], limit: Int, maxPayloadBytes: Int) throws {
        try readMessages(db, after: progress["messages"] ?? 0, limit: limit, maxBytes: maxPayloadBytes)
        try readExchanges(db, after: progress["http"] ?? 0, limit: limit)
        try readCommands(db, after: progress["commands"] ?? 0, limit: limit)
        try readErrors(db, after: progress["errors"] ?? 0, limit: limit)
        // Heads, statements and errors are text already; none is indexed past the payload limit either (a 16 MiB
        // statement costs the index what a 16 MiB body would).
        let cap = max(maxPayloadBytes, 4096)
        for index in pieces.indices where pieces[index].text.utf8.count > cap {
            pieces[index].text = String(decoding: pieces[index].text.utf8.prefix(cap), as: UTF8.self)
        }
    }

    /// Bodies and WebSocket text of every flow, chunks of raw TCP and SSH (a database's chunks are its statements,
    /// indexed as commands).
    private mutating func readMessages(_ db: Database, after last: Int64, limit: Int, maxBytes: Int) throws {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT m.id, m.flow_id, m.kind, f.kind AS flow_kind, m.payload, b.data AS body
                FROM messages m LEFT JOIN bodies b ON b.id = m.body_id LEFT JOIN flows f ON f.id = m.flow_id
                WHERE m.id > ? ORDER BY m.id LIMIT ?
                """,
            arguments: [last, limit]
        )
        note("messages", rows: rows, limit: limit)
        guard maxBytes > 0 else { return }
        // Columns by position, as selected: a lookup by name lowercases the name every time.
        for row in rows {
            let kind: String = row[2]
            let flowKind: String? = row[3]
            let indexed = kind == "body" || kind == "text" || (kind == "chunk" && (flowKind == "tcp" || flowKind == "ssh"))
            guard indexed else { continue }
            let payload: Data = (row[5] as Data?) ?? (row[4] as Data?) ?? Data()
            if let text = SearchText.of(payload, maxBytes: maxBytes) { pieces.append(Piece(flow: row[1], text: text)) }
        }
    }

    /// The request line and headers, the status and the response's headers. An exchange still waiting for its
    /// response (on a flow still open, for under a minute) stops the read, so its response is indexed with it.
    private mutating func readExchanges(_ db: Database, after last: Int64, limit: Int) throws {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT h.flow_id, h.method, h.url, h.request_headers, h.requested_at, h.status, h.reason, h.response_headers,
                    f.ended_at
                FROM http h LEFT JOIN flows f ON f.id = h.flow_id WHERE h.flow_id > ? ORDER BY h.flow_id LIMIT ?
                """,
            arguments: [last, limit]
        )
        var lastRead: Int64?
        let now = Date().timeIntervalSince1970
        // Columns by position, as selected: a lookup by name lowercases the name every time.
        for row in rows {
            let flow: Int64 = row[0]
            let status: Int? = row[5]
            let ended: Double? = row[8]
            let requested: Double = row[4]
            // Waits for the response a minute at most: a request that hangs must not hold back every later one.
            if status == nil, ended == nil, now - requested < 60 { break }
            // Built as bytes: appending to a `String` piece by piece cost more than parsing the headers.
            var text = ByteSink(capacity: 1024)
            text.append(row[1] as String)
            text.append(UInt8(ascii: " "))
            text.append(row[2] as String)
            text.append(UInt8(ascii: "\n"))
            Self.appendHeaders(row[3], to: &text)
            if let status {
                JSONObject.appendDecimal(Int64(status), to: &text)
                text.append(UInt8(ascii: " "))
                text.append((row[6] as String?) ?? "")
                text.append(UInt8(ascii: "\n"))
            }
            if let headers = row[7] as String? { Self.appendHeaders(headers, to: &text) }
            pieces.append(Piece(flow: flow, text: text.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }))
            lastRead = flow
        }
        if let lastRead { advanced["http"] = lastRead }
        if rows.count == limit, let lastRow = rows.last, lastRead == lastRow[0] as Int64 { caughtUp = false }
    }

    /// `name: value` lines of headers as the `http` table keeps them (nothing for text that is not such a list).
    private static func appendHeaders(_ json: String, to text: inout ByteSink) {
        for field in JSONObject.parseHeaders(json) ?? [] {
            text.append(field.name)
            text.append(": " as StaticString)
            text.append(field.value)
            text.append(UInt8(ascii: "\n"))
        }
    }

    private mutating func readCommands(_ db: Database, after last: Int64, limit: Int) throws {
        let rows = try Row.fetchAll(
            db, sql: "SELECT id, flow_id, text, parameters FROM commands WHERE id > ? ORDER BY id LIMIT ?", arguments: [last, limit]
        )
        note("commands", rows: rows, limit: limit)
        for row in rows {
            var text: String = row[2]
            if let parameters = row[3] as String? { text += "\n" + parameters }
            pieces.append(Piece(flow: row[1], text: text))
        }
    }

    private mutating func readErrors(_ db: Database, after last: Int64, limit: Int) throws {
        let rows = try Row.fetchAll(
            db, sql: "SELECT id, flow_id, message FROM errors WHERE id > ? AND flow_id IS NOT NULL ORDER BY id LIMIT ?",
            arguments: [last, limit]
        )
        note("errors", rows: rows, limit: limit)
        for row in rows { pieces.append(Piece(flow: row[1], text: row[2])) }
    }

    /// Moves a source's progress to its last row read; a full batch means more may wait.
    private mutating func note(_ source: String, rows: [Row], limit: Int) {
        guard let last = rows.last else { return }
        advanced[source] = last[0] as Int64  // every source's query selects its id first
        if rows.count == limit { caughtUp = false }
    }
}

/// A payload as text to index: its first `maxBytes` read as UTF-8, or nil when it does not look like text.
enum SearchText {
    static func of(_ payload: Data, maxBytes: Int) -> String? {
        guard !payload.isEmpty else { return nil }
        // On the bytes in place: `Data`'s iterator and slices cost the indexer more than FTS5's tokenizing did.
        return payload.withUnsafeBytes { bytes -> String? in
            let head = UnsafeRawBufferPointer(rebasing: bytes.prefix(maxBytes))
            // Binary is mostly bytes no text has: controls other than tab, newline, carriage return and escape.
            let sample = head.prefix(1024)
            var odd = 0
            for byte in sample where byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D && byte != 0x1B || byte == 0x7F {
                odd += 1
            }
            guard odd * 10 <= sample.count else { return nil }
            let text = String(decoding: head, as: UTF8.self)
            var scalars = 0
            var replaced = 0
            for scalar in text.unicodeScalars.prefix(1024) {
                scalars += 1
                if scalar == "\u{FFFD}" { replaced += 1 }
            }
            guard replaced * 10 <= scalars else { return nil }
            return text
        }
    }
}
