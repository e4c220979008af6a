import Foundation
import GRDB
import GRDBSQLite

/// One of the store writer's INSERT or UPDATE statements, prepared once and run with SQLite's C API.
///
/// The writer runs a handful of statements per recorded exchange, tens of thousands a second under load. GRDB's
/// `execute(arguments:)` builds an array of existential values and hashes the SQL to find its cached statement on
/// every call, which cost more than SQLite's own work; binding values in place does not. Reads stay with GRDB.
final class RowStatement {
    private let statement: Statement

    init(_ sql: String, in db: Database) throws {
        statement = try db.makeStatement(sql: sql)
    }

    /// Binds `bind`'s values to the parameters in order, then runs the statement once.
    func run(in db: Database, _ bind: (inout Bindings) -> Void) throws(StoreError) {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var bindings = Bindings(handle: handle)
        bind(&bindings)
        var code = bindings.failure ?? sqlite3_step(handle)
        if code == SQLITE_ROW { code = SQLITE_DONE }  // not expected of an INSERT or UPDATE, and harmless
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else {
            let message = db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(code)"
            throw StoreError("cannot write: \(message)")
        }
    }

    /// Values for the next run's parameters, in order.
    struct Bindings {
        fileprivate let handle: OpaquePointer
        private var index: Int32 = 0
        /// The first failed bind, reported by `run` instead of stepping.
        fileprivate var failure: Int32?

        fileprivate init(handle: OpaquePointer) {
            self.handle = handle
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
            var value = value
            next { handle, index in
                value.withUTF8 { utf8 in
                    // A non-nil pointer also for the empty string, which would otherwise bind NULL.
                    withUnsafePointer(to: 0 as UInt8) { empty in
                        sqlite3_bind_text64(
                            handle, index, UnsafeRawPointer(utf8.baseAddress ?? empty).assumingMemoryBound(to: CChar.self),
                            UInt64(utf8.count), Self.transient, UInt8(SQLITE_UTF8)
                        )
                    }
                }
            }
        }

        mutating func text(_ value: String?) {
            guard let value else { return null() }
            text(value)
        }

        /// UTF-8 text already encoded (a JSON value the JSON Lines log shares).
        mutating func text(utf8 value: [UInt8]) {
            next { handle, index in
                value.withUnsafeBufferPointer { utf8 in
                    withUnsafePointer(to: 0 as UInt8) { empty in
                        sqlite3_bind_text64(
                            handle, index, UnsafeRawPointer(utf8.baseAddress ?? empty).assumingMemoryBound(to: CChar.self),
                            UInt64(utf8.count), Self.transient, UInt8(SQLITE_UTF8)
                        )
                    }
                }
            }
        }

        mutating func blob(_ value: Data) {
            next { handle, index in
                value.withUnsafeBytes { bytes in
                    // An empty blob, not NULL (payload columns are NOT NULL).
                    guard let base = bytes.baseAddress, bytes.count > 0 else { return sqlite3_bind_zeroblob(handle, index, 0) }
                    return sqlite3_bind_blob64(handle, index, base, UInt64(bytes.count), Self.transient)
                }
            }
        }

        mutating func null() {
            next { sqlite3_bind_null($0, $1) }
        }

        private mutating func next(_ bind: (OpaquePointer, Int32) -> Int32) {
            index += 1
            let code = bind(handle, index)
            if code != SQLITE_OK && failure == nil { failure = code }
        }

        /// SQLite copies the value before the bind returns (`SQLITE_TRANSIENT`).
        private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    }
}
