import Foundation
import GRDB
import SluiceModel

/// Keeps the control API's sessions in the store: a session's row is written before its proxies open, so every
/// flow that names it has a session to name.
public protocol SessionRecording: AnyObject, Sendable {
    /// Stores a new open session and returns it with its id.
    func openSession(user: String, resource: String) throws(StoreError) -> StoredSession
    /// Marks session `id` ended now, unless it is over already.
    /// - Returns: the session as stored afterwards; nil when the store has no such session.
    func endSession(_ id: SessionID) throws(StoreError) -> StoredSession?
    /// Marks every session still open interrupted now: the recorder is stopping and its proxies with it.
    func interruptOpenSessions() throws(StoreError)
}

/// Keeps acknowledgements of alerts in the store.
public protocol AlertAcknowledging: AnyObject, Sendable {
    /// Acknowledges alert `id` now, by `by` when given; an alert acknowledged already keeps its first
    /// acknowledgement.
    /// - Returns: the alert as stored afterwards; nil when the store has no such alert.
    func acknowledgeAlert(_ id: Int64, by: String?) throws(StoreError) -> StoredAlert?
}

extension StoreWriter: SessionRecording, AlertAcknowledging {
    public func openSession(user: String, resource: String) throws(StoreError) -> StoredSession {
        let now = Date().timeIntervalSince1970
        return try perform { db in
            try db.execute(
                sql: "INSERT INTO sessions (user, resource, started_at, state) VALUES (?, ?, ?, 'open')", arguments: [user, resource, now]
            )
            let id = db.lastInsertedRowID
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id]) else {
                throw StoreError("session \(id) was not stored")
            }
            return try StoredSession(row: row)
        }
    }

    public func endSession(_ id: SessionID) throws(StoreError) -> StoredSession? {
        let now = Date().timeIntervalSince1970
        return try perform { db in
            try db.execute(
                sql: "UPDATE sessions SET ended_at = ?, state = 'ended' WHERE id = ? AND state = 'open'", arguments: [now, id.rawValue]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id.rawValue]).map { row in
                try StoredSession(row: row)
            }
        }
    }

    public func interruptOpenSessions() throws(StoreError) {
        let now = Date().timeIntervalSince1970
        try perform { db in
            try db.execute(sql: "UPDATE sessions SET ended_at = ?, state = 'interrupted' WHERE state = 'open'", arguments: [now])
        }
    }

    public func acknowledgeAlert(_ id: Int64, by: String?) throws(StoreError) -> StoredAlert? {
        let now = Date().timeIntervalSince1970
        return try perform { db in
            try db.execute(
                sql: "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL",
                arguments: [now, by, id]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM alerts WHERE id = ?", arguments: [id]).map { row in try StoredAlert(row: row) }
        }
    }
}
