import GRDB
import SluiceModel

/// The recorded commands and alerts: what `sluice commands`, `sluice alerts` and the TUI's Commands and Alerts views
/// read. Like `flows(limit:)`, each query returns the newest `limit` rows that qualify, oldest first (as a terminal
/// table reads); `before:` pages further back: pass the `id` of the oldest row already shown.
extension Store {
    /// Commands, newest `limit` last.
    /// - Parameters:
    ///   - flow: only this flow's commands (in the order they were submitted).
    ///   - session: only commands of flows this session's proxies carried.
    ///   - minimumRisk: only commands rated at least this (`.high`: high and critical).
    ///   - limit: at most this many; the newest that qualify.
    ///   - before: only commands recorded before the one with this `id`.
    public func commands(
        flow: FlowID? = nil, session: SessionID? = nil, minimumRisk: RiskLevel? = nil, limit: Int, before: Int64? = nil
    ) throws(StoreError) -> [StoredCommand] {
        var conditions: [(String, [(any DatabaseValueConvertible)?])] = []
        if let flow { conditions.append(("flow_id = ?", [flow.rawValue])) }
        if let session { conditions.append(("flow_id IN (SELECT id FROM flows WHERE session_id = ?)", [session.rawValue])) }
        if let minimumRisk {
            let levels = RiskLevel.allCases.filter { $0 >= minimumRisk }
            conditions.append(("risk IN (\(levels.map { _ in "?" }.joined(separator: ", ")))", levels.map(\.rawValue)))
        }
        return try newest("commands", conditions, limit: limit, before: before).map { row throws(StoreError) in try StoredCommand(row: row) }
    }

    /// Command `index` of flow `flow`, or nil when the store has no such command (yet).
    public func command(flow: FlowID, index: Int64) throws(StoreError) -> StoredCommand? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM commands WHERE flow_id = ? AND idx = ?", arguments: [flow.rawValue, index])
                .map { row in try StoredCommand(row: row) }
        }
    }

    /// Alerts, newest `limit` last.
    /// - Parameters:
    ///   - flow: only alerts raised in this flow (the recorder's own alerts belong to no flow).
    ///   - minimumLevel: only alerts of at least this level.
    ///   - acknowledged: only acknowledged alerts (true) or only the others (false).
    ///   - limit: at most this many; the newest.
    ///   - before: only alerts recorded before the one with this `id`.
    public func alerts(
        flow: FlowID? = nil, minimumLevel: RiskLevel? = nil, acknowledged: Bool? = nil, limit: Int, before: Int64? = nil
    ) throws(StoreError) -> [StoredAlert] {
        var conditions: [(String, [(any DatabaseValueConvertible)?])] = flow.map { [("flow_id = ?", [$0.rawValue])] } ?? []
        if let minimumLevel {
            let levels = RiskLevel.allCases.filter { $0 >= minimumLevel }
            conditions.append(("level IN (\(levels.map { _ in "?" }.joined(separator: ", ")))", levels.map(\.rawValue)))
        }
        if let acknowledged { conditions.append((acknowledged ? "acknowledged_at IS NOT NULL" : "acknowledged_at IS NULL", [])) }
        return try newest("alerts", conditions, limit: limit, before: before).map { row throws(StoreError) in try StoredAlert(row: row) }
    }

    /// The newest `limit` rows of `table` that meet every condition (SQL with its arguments), oldest first.
    private func newest(
        _ table: String, _ conditions: [(String, [(any DatabaseValueConvertible)?])], limit: Int, before: Int64?
    ) throws(StoreError) -> [Row] {
        var conditions = conditions
        if let before { conditions.append(("id < ?", [before])) }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.map(\.0).joined(separator: " AND ")
        let arguments = conditions.flatMap(\.1) + [max(limit, 0)]
        return try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM (SELECT * FROM \(table) \(filter) ORDER BY id DESC LIMIT ?) ORDER BY id",
                arguments: StatementArguments(arguments)
            )
        }
    }
}
