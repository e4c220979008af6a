import Foundation
import GRDB
import GRDBSQLite
import SluiceModel

/// One of the store writer's INSERT or UPDATE statements, prepared once and run with SQLite's C API.
///
/// The writer runs a handful of statements per recorded exchange, tens of thousands a second under load. GRDB's
/// `execute(arguments:)` builds an array of existential values and hashes the SQL to find its cached statement on
/// every call, and binding text as `SQLITE_TRANSIENT` makes SQLite allocate a copy of each value; together that
/// cost more than SQLite's own work. Here text and blobs are copied into one reused buffer and bound in place
/// (`SQLITE_STATIC`) for the length of the run. Reads stay with GRDB.
final class RowStatement {
    private let statement: Statement
    /// Kept between runs so that binding allocates nothing once they have grown.
    private var arena: [UInt8] = []
    private var inArena: [Bindings.ArenaValue] = []

    init(_ sql: String, in db: Database) throws {
        statement = try db.makeStatement(sql: sql)
    }

    /// Binds `bind`'s values to the parameters in order, then runs the statement once.
    func run(in db: Database, _ bind: (inout Bindings) -> Void) throws(StoreError) {
        let handle = statement.sqliteStatement
        var bindings = Bindings(handle: handle, arena: arena, inArena: inArena)
        arena = []
        inArena = []
        bind(&bindings)
        var code = bindings.failure ?? bindings.arena.withUnsafeBytes { base in
            for value in bindings.inArena {
                let pointer = base.baseAddress.map { UnsafeRawPointer($0 + value.offset) } ?? Bindings.emptyText
                // No destructor (SQLITE_STATIC): SQLite reads the bytes in place while it runs; `run` clears the
                // bindings before the arena changes.
                let bound =
                    value.isText
                    ? sqlite3_bind_text64(
                        handle, value.index, pointer.assumingMemoryBound(to: CChar.self), UInt64(value.count), nil,
                        UInt8(SQLITE_UTF8))
                    : sqlite3_bind_blob64(handle, value.index, pointer, UInt64(value.count), nil)
                if bound != SQLITE_OK { return bound }
            }
            return sqlite3_step(handle)
        }
        if code == SQLITE_ROW { code = SQLITE_DONE }  // not expected of an INSERT or UPDATE, and harmless
        sqlite3_reset(handle)
        // The values pointed into the arena, which changes from here on.
        sqlite3_clear_bindings(handle)
        // Swapped out, not copied: an array still shared with `bindings` would be reallocated by `removeAll`
        // instead of emptied in place, two allocations per run.
        swap(&arena, &bindings.arena)
        swap(&inArena, &bindings.inArena)
        arena.removeAll(keepingCapacity: arena.capacity <= 4 << 20)
        inArena.removeAll(keepingCapacity: true)
        guard code == SQLITE_DONE else {
            let message = db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(code)"
            throw StoreError("cannot write: \(message)")
        }
    }

    /// Values for the next run's parameters, in order.
    struct Bindings {
        fileprivate struct ArenaValue {
            var index: Int32
            var offset: Int
            var count: Int
            var isText: Bool
        }

        fileprivate let handle: OpaquePointer
        private var index: Int32 = 0
        /// The first failed bind, reported by `run` instead of stepping.
        fileprivate var failure: Int32?
        /// Text and blob bytes, bound once all of them are in (the buffer may move while it grows).
        fileprivate var arena: [UInt8]
        fileprivate var inArena: [ArenaValue]

        fileprivate init(handle: OpaquePointer, arena: [UInt8], inArena: [ArenaValue]) {
            self.handle = handle
            self.arena = arena
            self.inArena = inArena
        }

        mutating func int(_ value: Int64) {
            next { sqlite3_bind_int64($0, $1, value) }
        }

        mutating func int(_ value: Int) {
            int(Int64(value))
        }

        mutating func int(_ value: Int64?) {
            guard let value else { return null() }
            int(value)
        }

        mutating func bool(_ value: Bool) {
            int(Int64(value ? 1 : 0))
        }

        mutating func double(_ value: Double) {
            next { sqlite3_bind_double($0, $1, value) }
        }

        mutating func double(_ value: Double?) {
            guard let value else { return null() }
            double(value)
        }

        /// A `Date` as Unix seconds, the store's time columns.
        mutating func time(_ value: Date) {
            double(value.timeIntervalSince1970)
        }

        mutating func text(_ value: String) {
            index += 1
            let offset = arena.count
            arena.append(contentsOf: value.utf8)
            inArena.append(ArenaValue(index: index, offset: offset, count: arena.count - offset, isText: true))
        }

        mutating func text(_ value: String?) {
            guard let value else { return null() }
            text(value)
        }

        /// An endpoint as text, `host:port`, written straight into the arena.
        mutating func text(_ value: Endpoint) {
            index += 1
            let offset = arena.count
            var text = ByteSink(capacity: value.host.utf8.count + 8)
            value.appendDescription(to: &text)
            text.append(to: &arena)
            inArena.append(ArenaValue(index: index, offset: offset, count: arena.count - offset, isText: true))
        }

        /// UTF-8 text already encoded (a JSON value the JSON Lines log shares).
        mutating func text(utf8 value: [UInt8]) {
            index += 1
            inArena.append(ArenaValue(index: index, offset: arena.count, count: value.count, isText: true))
            arena.append(contentsOf: value)
        }

        /// Bytes; an empty blob stays a blob, not NULL (payload columns are NOT NULL).
        mutating func blob(_ value: Data) {
            index += 1
            inArena.append(ArenaValue(index: index, offset: arena.count, count: value.count, isText: false))
            // Through a typed pointer: appending `Data` itself goes element by element through its iterator.
            value.withUnsafeBytes { bytes in arena.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self)) }
        }

        mutating func null() {
            next { sqlite3_bind_null($0, $1) }
        }

        private mutating func next(_ bind: (OpaquePointer, Int32) -> Int32) {
            index += 1
            let code = bind(handle, index)
            if code != SQLITE_OK && failure == nil { failure = code }
        }

        /// A valid pointer for empty text and blobs, which a nil pointer would turn into NULL.
        fileprivate static var emptyText: UnsafeRawPointer { UnsafeRawPointer(("" as StaticString).utf8Start) }
    }
}
