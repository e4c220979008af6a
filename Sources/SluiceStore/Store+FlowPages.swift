import Foundation
import GRDB
import SluiceModel

/// The TUI's flow list reads the store a page at a time: the flows of a range of ids that a `FlowQuery` lets through,
/// by the primary key (keyset pagination, never OFFSET), so a page costs the same at the start of ten million flows
/// as at their end.
extension Store {
    /// The lowest and highest flow id stored; nil for an empty store. Both come from the primary key's ends: SQLite
    /// reads `min` or `max` alone from one end of the b-tree, but both in one SELECT from every row.
    public func flowIDRange() throws(StoreError) -> ClosedRange<Int64>? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT (SELECT min(id) FROM flows) AS low, (SELECT max(id) FROM flows) AS high"),
                let low = row.optional("low", Int64.self), let high = row.optional("high", Int64.self)
            else { return nil }
            return low...high
        }
    }

    /// The flows with ids in `ids` that meet `query`'s condition, newest first or oldest first, at most `limit`, each
    /// with the first bytes of its first message each way (`FlowQuery.previewBytes`) and its commands' texts and risks.
    public func flowPage(
        ids: ClosedRange<Int64>, where query: FlowQuery, newestFirst: Bool, limit: Int
    ) throws(StoreError) -> [StoredFlow] {
        var flows = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT f.*, h.*, \(FlowQuery.preview(.up)) AS preview_up, \(FlowQuery.preview(.down)) AS preview_down
                    FROM flows f LEFT JOIN http h ON h.flow_id = f.id
                    WHERE f.id BETWEEN ? AND ? AND (\(query.condition))
                    ORDER BY f.id \(newestFirst ? "DESC" : "ASC") LIMIT ?
                    """,
                arguments: [ids.lowerBound, ids.upperBound, limit]
            ).map { row in try StoredFlow(row: row) }
        }
        guard !flows.isEmpty else { return flows }
        let notes = try commandNotes(of: flows.map(\.id))
        for index in flows.indices { flows[index].commands = notes[flows[index].id] ?? [] }
        return flows
    }

    /// These flows, without previews (the Commands view's filter looks at a command's flow).
    public func flows(_ ids: [FlowID]) throws(StoreError) -> [StoredFlow] {
        guard !ids.isEmpty else { return [] }
        let list = ids.map { String($0.rawValue) }.joined(separator: ", ")
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT f.*, h.* FROM flows f LEFT JOIN http h ON h.flow_id = f.id WHERE f.id IN (\(list)) ORDER BY f.id")
                .map { row in try StoredFlow(row: row) }
        }
    }

    /// How many stored flows with an id up to `through` meet `query`'s condition.
    public func countFlows(where query: FlowQuery, through: Int64) throws(StoreError) -> Int {
        try read { db in
            let join = query.shape == nil ? "" : "LEFT JOIN http h ON h.flow_id = f.id"
            return try Int.fetchOne(
                db, sql: "SELECT count(*) FROM flows f \(join) WHERE f.id <= ? AND (\(query.condition))", arguments: [through]
            ) ?? 0
        }
    }

    /// The commands of these flows, in order: what the list's `~risk` and `~cmd` look at.
    private func commandNotes(of ids: [FlowID]) throws(StoreError) -> [FlowID: [StoredFlow.CommandNote]] {
        try read { db in
            let list = ids.map { String($0.rawValue) }.joined(separator: ", ")
            var notes: [FlowID: [StoredFlow.CommandNote]] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT flow_id, text, risk FROM commands WHERE flow_id IN (\(list)) ORDER BY flow_id, idx")
            while let row = try rows.next() {
                guard let flow = row.optional("flow_id", Int64.self), let text = row.optional("text", String.self),
                    let risk = row.optional("risk", String.self).flatMap(RiskLevel.init(rawValue:))
                else { continue }
                notes[FlowID(flow), default: []].append(StoredFlow.CommandNote(text: text, risk: risk))
            }
            return notes
        }
    }

    /// Stops the statement running on this connection now (it throws): a count no longer wanted.
    public func interrupt() {
        database.interrupt()
    }

    /// Another read-only connection to the same file, for a long read (a count of millions of rows) that must not
    /// hold up this one's pages.
    public func reopened() throws(StoreError) -> Store {
        try Store(file: sourcePath)
    }
}
