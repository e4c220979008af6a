import SluiceModel

/// The flow list's model: not every flow, but the listed ones in a range of ids around the selection (a few screens
/// each way), read from the store a page at a time (`FlowSource`) and joined by live flows (`LiveFlows`). So memory
/// holds `capacity` rows whether the store has a thousand flows or ten million.
///
/// Its promise: every listed flow with an id in `low...high` is in `rows`. Moving near either end asks for the next
/// page beyond it (`wantsOlder`, `wantsNewer`); a page that arrives extends the range, and the far end is dropped
/// once there are more than `capacity` rows. `reachesStart` / `reachesEnd` say that nothing is listed beyond an end;
/// at the end new flows join as they open.
struct FlowWindow {
    static let capacity = 2_000
    /// How many rows a page read asks for.
    static let pageSize = 250
    /// A page is asked for when the selection is this close to an end that is not the list's.
    static let margin = 200

    private(set) var rows: [FlowRow] = []
    private(set) var low: Int64 = 0
    private(set) var high: Int64 = 0
    /// An empty window of a list with no history yet: it reaches both ends, and new flows join it.
    private(set) var reachesStart = true
    private(set) var reachesEnd = true
    private(set) var selected = 0
    var scroll = 0
    /// Keep the newest row selected as rows arrive.
    var follow = true
    /// What a move wanted beyond the rows loaded (negative: older): done when they arrive.
    private var pendingMove = 0

    var isEmpty: Bool { rows.isEmpty }
    var selectedRow: FlowRow? { rows.indices.contains(selected) ? rows[selected] : nil }

    subscript(id: FlowID) -> FlowRow? {
        let index = rows.lowerBound(of: id.rawValue)
        return index < rows.count && rows[index].id == id ? rows[index] : nil
    }

    var wantsOlder: Bool { !reachesStart && selected < Self.margin }
    var wantsNewer: Bool { !reachesEnd && rows.count - 1 - selected < Self.margin }

    /// Replaces the rows (a new filter, a jump): `rows` are every listed flow in `low...high`. Selects the row `id`
    /// or the nearest before it (or the first), or with none the newest.
    mutating func replace(
        _ rows: [FlowRow], low: Int64, high: Int64, reachesStart: Bool, reachesEnd: Bool, selecting id: FlowID?
    ) {
        self.rows = rows
        self.low = low
        self.high = high
        self.reachesStart = reachesStart
        self.reachesEnd = reachesEnd
        pendingMove = 0
        if let id {
            let index = rows.lowerBound(of: id.rawValue)
            selected = index < rows.count && rows[index].id == id ? index : max(0, index - 1)
        } else {
            selected = max(0, rows.count - 1)
        }
        trim(keepingEnd: id == nil)
    }

    /// Older rows: every listed flow in `low..<self.low`.
    mutating func prepend(_ older: [FlowRow], low: Int64, reachesStart: Bool) {
        rows.insert(contentsOf: older, at: 0)
        selected += older.count
        self.low = low
        self.reachesStart = reachesStart
        settle()
        trim(keepingEnd: false)
    }

    /// Newer rows: every listed flow in `self.high + 1...high`.
    mutating func append(_ newer: [FlowRow], high: Int64, reachesEnd: Bool) {
        rows.append(contentsOf: newer)
        self.high = high
        self.reachesEnd = reachesEnd
        settle()
        trim(keepingEnd: true)
    }

    /// A flow that just opened: at the end of the list (when the window shows the end), listed if `listed`.
    mutating func arrive(_ row: FlowRow, listed: Bool) {
        guard reachesEnd, row.id.rawValue > high || rows.isEmpty else { return }
        high = max(high, row.id.rawValue)
        guard listed, self[row.id] == nil else { return }
        rows.append(row)
        if follow { selected = rows.count - 1 }
        trim(keepingEnd: true)
    }

    /// Changes a listed row in place; false when it is not in the window.
    @discardableResult
    mutating func update(_ id: FlowID, _ change: (inout FlowRow) -> Void) -> Bool {
        let index = rows.lowerBound(of: id.rawValue)
        guard index < rows.count, rows[index].id == id else { return false }
        change(&rows[index])
        return true
    }

    /// A flow changed in a way the filter may see (a response, its first bytes, a command): listed or unlisted where
    /// it belongs (when its id is in the window's range), the selection staying on its row.
    mutating func recheck(_ row: FlowRow, listed: Bool) {
        guard (low...high).contains(row.id.rawValue) else { return }
        let index = rows.lowerBound(of: row.id.rawValue)
        let present = index < rows.count && rows[index].id == row.id
        switch (present, listed) {
        case (false, true):
            rows.insert(row, at: index)
            if index <= selected, rows.count > 1 { selected += 1 }
        case (true, false):
            rows.remove(at: index)
            if index < selected { selected -= 1 }
        default:
            return
        }
        selected = follow ? max(0, rows.count - 1) : max(0, min(selected, rows.count - 1))
    }

    /// Moves the selection; moving past the last row keeps following, any other move stops it. A move beyond the
    /// rows loaded stops at the last one and goes on when the next page arrives.
    mutating func move(_ delta: Int) {
        guard !rows.isEmpty else { return }
        // Keys pressed while a page is on its way add up.
        let target = selected + (pendingMove.signum() == delta.signum() ? pendingMove : 0) + delta
        selected = max(0, min(rows.count - 1, target))
        pendingMove = (target < 0 && !reachesStart) || (target >= rows.count && !reachesEnd) ? target - selected : 0
        follow = selected == rows.count - 1 && delta > 0 && reachesEnd ? follow : false
    }

    /// Selects the row at `position` (a search's match) and stops following.
    mutating func select(_ position: Int) {
        guard rows.indices.contains(position) else { return }
        selected = position
        pendingMove = 0
        follow = false
    }

    mutating func toggleFollow() {
        follow.toggle()
        if follow, reachesEnd { selected = max(0, rows.count - 1) }
    }

    /// The positions in `rows` a screen of `height` rows shows, scrolled so the selection is on it.
    mutating func window(height: Int) -> Range<Int> {
        if selected < scroll { scroll = selected }
        if selected >= scroll + height { scroll = selected - height + 1 }
        scroll = max(0, min(scroll, max(0, rows.count - height)))
        return scroll..<min(rows.count, scroll + height)
    }

    /// Carries on a move that went beyond the rows loaded, as far as rows have come.
    private mutating func settle() {
        guard pendingMove != 0, !rows.isEmpty else { return }
        let delta = pendingMove
        pendingMove = 0
        let followed = follow
        move(delta)
        follow = followed && selected == rows.count - 1
    }

    /// Keeps at most `capacity` rows, dropping from the end away from the selection; the range shrinks to the rows
    /// kept, so the promise holds.
    private mutating func trim(keepingEnd: Bool) {
        let excess = rows.count - Self.capacity
        guard excess > 0 else { return }
        let fromStart = keepingEnd ? min(excess, selected) : max(0, excess - (rows.count - 1 - selected))
        let fromEnd = excess - fromStart
        if fromStart > 0 {
            rows.removeFirst(fromStart)
            selected -= fromStart
            scroll = max(0, scroll - fromStart)
            low = rows.first.map(\.id.rawValue) ?? low
            reachesStart = false
        }
        if fromEnd > 0 {
            rows.removeLast(fromEnd)
            high = rows.last.map(\.id.rawValue) ?? high
            reachesEnd = false
        }
    }
}
