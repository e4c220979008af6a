import Foundation
import GRDB
import SluiceModel

/// Where a session is: open while its proxies may carry flows; ended by its front end; interrupted when the
/// recorder stopped before the session was ended (its proxies went with the recorder).
public enum SessionState: String, Sendable, Equatable {
    case open, ended, interrupted
}

/// A session as the store keeps it: one user reaching one resource through proxies the control API opened. Its
/// flows name it (`StoredFlow.session`), so its commands are found after a restart too.
public struct StoredSession: Sendable, Equatable, Identifiable {
    public var id: SessionID
    public var user: String
    public var resource: String
    public var startedAt: Date
    public var endedAt: Date?
    public var state: SessionState

    init(row: Row) throws(StoreError) {
        id = SessionID(try row.required("id", Int64.self))
        user = try row.required("user", String.self)
        resource = try row.required("resource", String.self)
        startedAt = Date(timeIntervalSince1970: try row.required("started_at", Double.self))
        endedAt = row.optional("ended_at", Double.self).map(Date.init(timeIntervalSince1970:))
        state = try row.required("state", as: SessionState.self)
    }
}

extension Store {
    /// The newest `limit` sessions, oldest first.
    public func sessions(limit: Int) throws(StoreError) -> [StoredSession] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM (SELECT * FROM sessions ORDER BY id DESC LIMIT ?) ORDER BY id", arguments: [max(limit, 0)]
            ).map { row in try StoredSession(row: row) }
        }
    }

    public func session(_ id: SessionID) throws(StoreError) -> StoredSession? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id.rawValue]).map { row in
                try StoredSession(row: row)
            }
        }
    }

    /// How many flows a session's proxies carried, and how many commands those flows ran.
    public func activity(of session: SessionID) throws(StoreError) -> (flows: Int, commands: Int) {
        try read { db in
            let flows = try Int.fetchOne(db, sql: "SELECT count(*) FROM flows WHERE session_id = ?", arguments: [session.rawValue]) ?? 0
            let commands = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM commands WHERE flow_id IN (SELECT id FROM flows WHERE session_id = ?)",
                arguments: [session.rawValue]
            ) ?? 0
            return (flows, commands)
        }
    }
}
