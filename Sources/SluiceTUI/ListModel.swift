/// A row of a list screen: found again by its key when an event updates it or a refilter moves it.
protocol ListRow: Sendable {
    associatedtype Key: Hashable & Sendable
    var key: Key { get }
}

/// The Commands and Alerts screens' model: every row in order (their history is capped: `History.commandLimit`),
/// which of them the filter lists, the selection and the scroll. What decides visibility is the owner's (`shows`),
/// so the list stays a value that knows nothing of filters, marks or the store. (The flow list, which has no cap,
/// holds a window of its rows instead: `FlowWindow`.)
///
/// New rows are checked as they arrive (`appendVisible`), never the whole list.
struct ListModel<Row: ListRow> {
    private(set) var rows: [Row] = []
    private var positions: [Row.Key: Int] = [:]
    /// Indices into `rows` of the listed ones, in order.
    private(set) var visible: [Int] = []
    /// How many of `rows` have been checked against the filter; new rows start here.
    private var scannedCount = 0
    var selected = 0
    var scroll = 0
    /// Keep the newest row selected as rows arrive.
    var follow = true

    var isEmpty: Bool { rows.isEmpty }

    subscript(key: Row.Key) -> Row? {
        positions[key].map { rows[$0] }
    }

    /// Adds a row at the end (unless its key is listed already; returns whether it was added). It is checked against
    /// the filter at the next `appendVisible`.
    @discardableResult
    mutating func append(_ row: Row) -> Bool {
        guard positions[row.key] == nil else { return false }
        positions[row.key] = rows.count
        rows.append(row)
        return true
    }

    /// Changes a listed row in place; returns false when there is none with that key.
    @discardableResult
    mutating func update(_ key: Row.Key, _ change: (inout Row) -> Void) -> Bool {
        guard let position = positions[key] else { return false }
        change(&rows[position])
        return true
    }

    /// Rows read from the store, merged with those here: a row here is newer or fresher than its stored copy and
    /// stays. The result is in `order`; visibility must be recomputed after.
    mutating func merge(_ history: [Row], by order: (Row, Row) -> Bool) {
        var merged = history.filter { positions[$0.key] == nil }
        merged += rows
        merged.sort(by: order)
        rows = merged
        positions = Dictionary(rows.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Lists exactly the rows `shows` accepts, keeping the selected row selected where it still is listed.
    mutating func refilter(_ shows: (Row) -> Bool) {
        setVisible(rows.indices.filter { shows(rows[$0]) }, scanned: rows.count)
    }

    /// Checks the rows added since the last check.
    mutating func appendVisible(_ shows: (Row) -> Bool) {
        for index in scannedCount..<rows.count where shows(rows[index]) {
            visible.append(index)
        }
        scannedCount = rows.count
        if follow { selected = max(0, visible.count - 1) }
    }

    /// A checked row changed in a way the filter may see (a flow's first command of high risk): lists or unlists it
    /// where it belongs, the selection staying on its row.
    mutating func recheck(_ key: Row.Key, _ shows: (Row) -> Bool) {
        guard let index = positions[key], index < scannedCount else { return }
        var low = 0
        var high = visible.count
        while low < high {
            let middle = (low + high) / 2
            if visible[middle] < index { low = middle + 1 } else { high = middle }
        }
        let listed = low < visible.count && visible[low] == index
        switch (listed, shows(rows[index])) {
        case (false, true):
            visible.insert(index, at: low)
            if !visible.isEmpty, low <= selected, visible.count > 1 { selected += 1 }
        case (true, false):
            visible.remove(at: low)
            if low < selected { selected -= 1 }
        default:
            return
        }
        selected = follow ? max(0, visible.count - 1) : max(0, min(selected, visible.count - 1))
    }

    private mutating func setVisible(_ indices: [Int], scanned: Int) {
        let selectedKey = selectedRow?.key
        visible = indices
        scannedCount = scanned
        if follow || selectedKey == nil {
            selected = max(0, visible.count - 1)
        } else if let selectedKey, let position = visible.firstIndex(where: { rows[$0].key == selectedKey }) {
            selected = position
        } else {
            selected = min(selected, max(0, visible.count - 1))
        }
    }

    var selectedRow: Row? {
        visible.indices.contains(selected) && visible[selected] < rows.count ? rows[visible[selected]] : nil
    }

    /// Moves the selection; moving past the last row keeps following, any other move stops it.
    mutating func move(_ delta: Int) {
        guard !visible.isEmpty else { return }
        selected = max(0, min(visible.count - 1, selected + delta))
        follow = selected == visible.count - 1 && delta > 0 ? follow : false
    }

    /// The positions in `visible` a screen of `height` rows shows, scrolled so the selection is on it.
    mutating func window(height: Int) -> Range<Int> {
        if selected < scroll { scroll = selected }
        if selected >= scroll + height { scroll = selected - height + 1 }
        scroll = max(0, min(scroll, max(0, visible.count - height)))
        return scroll..<min(visible.count, scroll + height)
    }
}
