import SluiceModel

/// The newest flows that went live in this session, as their events built them: the list shows a flow the moment it
/// opens, before the store's writer has it (up to a batch behind), and a live row is fresher than its stored copy.
/// Only the newest `capacity` are kept: older ones are in the store by then, and the list reads them from there.
struct LiveFlows {
    static let capacity = 20_000

    /// By id; ids only grow, so a new flow goes at the end.
    private(set) var rows: [FlowRow] = []

    subscript(id: FlowID) -> FlowRow? {
        let index = rows.lowerBound(of: id.rawValue)
        return index < rows.count && rows[index].id == id ? rows[index] : nil
    }

    var newest: FlowID? { rows.last?.id }

    /// Adds a flow; false when it is here already.
    @discardableResult
    mutating func add(_ row: FlowRow) -> Bool {
        let index = rows.lowerBound(of: row.id.rawValue)
        guard index == rows.count || rows[index].id != row.id else { return false }
        rows.insert(row, at: index)
        // Dropped in bunches, so the array moves once per thousands of flows.
        if rows.count > Self.capacity + Self.capacity / 8 { rows.removeFirst(rows.count - Self.capacity) }
        return true
    }

    /// Changes a flow in place; returns its new row, or nil when it is not here.
    @discardableResult
    mutating func update(_ id: FlowID, _ change: (inout FlowRow) -> Void) -> FlowRow? {
        let index = rows.lowerBound(of: id.rawValue)
        guard index < rows.count, rows[index].id == id else { return nil }
        change(&rows[index])
        return rows[index]
    }

    /// The flows with ids in `ids`.
    func rows(in ids: ClosedRange<Int64>) -> ArraySlice<FlowRow> {
        rows[rows.lowerBound(of: ids.lowerBound)..<rows.lowerBound(of: ids.upperBound == .max ? .max : ids.upperBound + 1)]
    }
}

extension Array where Element == FlowRow {
    /// The index of the first row with an id of at least `id` (rows sorted by id).
    func lowerBound(of id: Int64) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle].id.rawValue < id { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
