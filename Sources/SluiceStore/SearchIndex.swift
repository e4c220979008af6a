import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import SluiceModel

/// Full-text search over everything recorded: `<data-dir>/search.sqlite`, an SQLite FTS5 index of the words in
/// HTTP heads, text bodies, WebSocket text, raw TCP and SSH text, commands, SQL and flow errors, each piece naming
/// its flow. It is a file of its own, filled behind the recorder by `SearchIndexer` on a thread of its own, so
/// indexing never takes the store's write lock or time from the writer that the relay waits on.
///
/// The index is contentless (it keeps the words, not a second copy of the text) and uses FTS5's `unicode61`
/// tokenizer: a search word matches whole words and words that start with it, case and accents aside
/// (`passw` finds `Password`); a word with punctuation is a phrase (`example.com` finds `example` next to `com`).
public final class SearchIndex: Sendable {
    let database: DatabaseQueue
    public let path: String

    /// The index beside the store of `directory`; made when `create` and missing.
    public init(directory: DataDirectory, create: Bool) throws(StoreError) {
        path = Self.path(in: directory)
        if !create, !FileManager.default.fileExists(atPath: path) {
            throw StoreError("no search index at \(path) (run `sluice search` once against this data directory to build it)")
        }
        var configuration = GRDB.Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "sluice-search"
        configuration.readonly = !create
        if create {
            // 0600 from its first byte, like the store (SQLite gives its -wal and -shm files the same mode).
            let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw StoreError("cannot open the search index \(path): \(String(cString: strerror(errno)).lowercased())")
            }
            fchmod(descriptor, 0o600)
            Glibc.close(descriptor)
        }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            if create {
                try database.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    // The index can always be built again from the store: a crash may cost its last commits, never
                    // a record.
                    try db.execute(sql: "PRAGMA synchronous = OFF")
                }
                try Self.migrator.migrate(database)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot open the search index \(path): \(error)")
        }
    }

    public static func path(in directory: DataDirectory) -> String {
        (directory.path as NSString).appendingPathComponent("search.sqlite")
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: pieces of text by flow, and how far each source is indexed") { db in
            try db.execute(
                sql: """
                    CREATE VIRTUAL TABLE pieces USING fts5(text, content = '', tokenize = 'unicode61 remove_diacritics 2');
                    CREATE TABLE piece_flows (id INTEGER PRIMARY KEY, flow INTEGER NOT NULL);
                    CREATE TABLE progress (source TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
                    """
            )
        }
        return migrator
    }

    /// The FTS5 query for `words`: each word a quoted string (so nothing the operator types is FTS syntax), with a
    /// prefix star, all of them required.
    /// - Throws: when no word has a letter or digit to search for.
    public static func query(_ words: [String]) throws(StoreError) -> String {
        let kept = words.filter { word in word.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) } }
        guard !kept.isEmpty else { throw StoreError("nothing to search for: give a word with a letter or digit") }
        return kept.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"*" }.joined(separator: " ")
    }

    /// The flows with a piece holding every word, newest first, at most `limit`.
    public func flows(matching words: [String], limit: Int) throws(StoreError) -> [FlowID] {
        let match = try Self.query(words)
        do {
            return try database.read { db in
                // Pieces are numbered as they are indexed, which follows the flows' order: newest pieces first, and
                // a flow counted once, until `limit` flows are found.
                let cursor = try Int64.fetchCursor(
                    db, sql: "SELECT f.flow FROM pieces JOIN piece_flows f ON f.id = pieces.rowid WHERE pieces MATCH ? ORDER BY pieces.rowid DESC",
                    arguments: [match]
                )
                var seen: Set<Int64> = []
                var found: [FlowID] = []
                while found.count < limit, let flow = try cursor.next() {
                    if seen.insert(flow).inserted { found.append(FlowID(flow)) }
                }
                return found.sorted { $0.rawValue > $1.rawValue }
            }
        } catch {
            throw StoreError("cannot search \(path): \(error)")
        }
    }
}
