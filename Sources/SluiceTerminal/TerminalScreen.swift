/// A headless terminal: the part of xterm a shell's line editor uses, enough to read back the line a user sees.
///
/// `ShellLineTracker` (SluiceSSH) feeds it the server's output and reads the submitted line off it (Warpgate's
/// `CommandDetector` approach, PROTOCOLS.md §3): editing, history, completion and search come out as the shell drew
/// them. The TUI's recording player (SluiceTUI) feeds it a recording's output to show the screen at a moment; a
/// copy is cheap (its cells are copied on write), so the player keeps copies as seek points. It lives in a target
/// of its own, with no dependencies, because protocol targets are not imported by the TUI. It keeps characters only (no colours, no attributes) and understands printable UTF-8, CR, LF, BS, TAB, the
/// CSI cursor moves, erasing, inserting and deleting characters and lines, scroll regions, the alternate screen,
/// bracketed paste and application cursor key modes, and skips OSC/DCS strings and charset designations.
///
/// The server is not trusted: any byte sequence is safe, the size is clamped (`maxColumns` × `maxRows`), numeric
/// parameters are clamped while they are parsed, strings are skipped without being kept, and the rows that scroll
/// off the top are kept only while `retainsScrollback` is on (while a line is being typed) and only up to
/// `maxScrollbackCells`.
public struct TerminalScreen: Sendable {
    public static let maxColumns = 1000
    public static let maxRows = 1000
    /// Cells of scrolled-off rows kept for a line longer than the screen (1 MiB of cells at most).
    public static let maxScrollbackCells = 1 << 18

    /// A cell that shows nothing (never written, or erased).
    static let blank: UInt32 = 0
    /// The right half of a wide character: read as nothing.
    static let wideTail: UInt32 = 0xFFFF_FFFF

    /// A screen's rows: cells row by row, and whether each row continues on the next (it wrapped there).
    struct Grid: Sendable {
        var cells: [UInt32]
        var wrapped: [Bool]

        init(columns: Int, rows: Int) {
            cells = Array(repeating: TerminalScreen.blank, count: columns * rows)
            wrapped = Array(repeating: false, count: rows)
        }
    }

    /// A row that scrolled off the top of the main screen.
    struct ScrolledRow: Sendable {
        var cells: [UInt32]
        var wrapped: Bool
    }

    struct SavedCursor: Sendable {
        var row = 0
        var column = 0
        var pendingWrap = false
    }

    public private(set) var columns: Int
    public private(set) var rows: Int
    var main: Grid
    var alternate: Grid?
    /// Whether a full-screen program (vim, less, top) has switched to the alternate screen.
    public private(set) var isAlternateScreen = false
    public internal(set) var cursorRow = 0
    public internal(set) var cursorColumn = 0
    /// The cursor is on the last column after printing there; the next character wraps first (xterm's behaviour,
    /// which readline relies on at the right margin).
    var pendingWrap = false
    var savedMain = SavedCursor()
    var savedAlternate = SavedCursor()
    var scrollTop = 0
    var scrollBottom: Int
    var insertMode = false
    var autowrap = true
    /// The shell asked for bracketed paste (`ESC[?2004h`): a paste arrives as `ESC[200~ … ESC[201~`.
    public internal(set) var bracketedPaste = false
    /// Cursor keys send `ESC O A` rather than `ESC [ A` (`ESC[?1h`).
    public internal(set) var applicationCursorKeys = false
    /// Rows that have left the top of the main screen since it started: with it a row has a number that stays put
    /// while the screen scrolls (`cursorLine`).
    public private(set) var scrolledOff = 0
    var scrollback: [ScrolledRow] = []
    /// Keep rows that scroll off the top (for reading a line longer than the screen); off, none are kept.
    public var retainsScrollback = false {
        didSet { if !retainsScrollback { scrollback = [] } }
    }
    var parser = Parser()

    public init(columns: Int, rows: Int) {
        self.columns = Self.clamp(columns, Self.maxColumns)
        self.rows = Self.clamp(rows, Self.maxRows)
        main = Grid(columns: self.columns, rows: self.rows)
        scrollBottom = self.rows - 1
    }

    static func clamp(_ value: Int, _ maximum: Int) -> Int {
        min(max(value, 1), maximum)
    }

    // MARK: Reading

    /// The cursor's row as a line number that does not change when the screen scrolls.
    public var cursorLine: Int { scrolledOff + cursorRow }

    /// The oldest line number still readable (in the kept scrollback or on the screen).
    public var firstLine: Int { scrolledOff - scrollback.count }

    /// The line number of the screen's last row.
    public var lastLine: Int { scrolledOff + rows - 1 }

    /// Whether `line` wrapped onto the next one (it is one logical line with it).
    public func isWrapped(line: Int) -> Bool {
        if isAlternateScreen { return false }
        let row = line - scrolledOff
        if row >= 0 { return row < rows && main.wrapped[row] }
        let index = line - firstLine
        return index >= 0 && scrollback[index].wrapped
    }

    /// The text of `line` (main screen) from `column` to the end of the row, wide characters' right halves and
    /// trailing blanks left out. Empty for a line no longer kept.
    public func text(line: Int, from column: Int = 0, trimTrailing: Bool = true) -> String {
        let row = line - scrolledOff
        if row >= 0 {
            guard row < rows else { return "" }
            let start = row * columns
            return Self.text(main.cells[(start + max(0, min(column, columns)))..<(start + columns)], trim: trimTrailing)
        }
        let index = line - firstLine
        guard index >= 0 else { return "" }
        let cells = scrollback[index].cells
        return Self.text(cells[max(0, min(column, cells.count))...], trim: trimTrailing)
    }

    /// The visible rows of whichever screen is showing, for tests and diagnostics.
    public var visibleText: [String] {
        (0..<rows).map(visibleRow)
    }

    /// Row `row` (0 at the top) of whichever screen is showing, trailing blanks left out: what a player draws.
    public func visibleRow(_ row: Int) -> String {
        guard row >= 0, row < rows else { return "" }
        let start = row * columns
        return Self.text(currentGrid.cells[start..<(start + columns)], trim: true)
    }

    static func text(_ cells: ArraySlice<UInt32>, trim: Bool) -> String {
        var end = cells.endIndex
        if trim {
            while end > cells.startIndex, cells[end - 1] == blank || cells[end - 1] == wideTail { end -= 1 }
        }
        var text = String.UnicodeScalarView()
        for cell in cells[cells.startIndex..<end] {
            if cell == wideTail { continue }
            if cell == blank {
                text.append(" ")
            } else if let scalar = Unicode.Scalar(cell) {
                text.append(scalar)
            }
        }
        return String(text)
    }

    var currentGrid: Grid { isAlternateScreen ? (alternate ?? main) : main }

    // MARK: Size

    /// The client's terminal changed size. Rows are kept from the top; when the cursor would fall off the bottom,
    /// the top rows scroll off first (as xterm does), so the cursor's line keeps its text.
    public mutating func resize(columns newColumns: Int, rows newRows: Int) {
        let newColumns = Self.clamp(newColumns, Self.maxColumns)
        let newRows = Self.clamp(newRows, Self.maxRows)
        guard newColumns != columns || newRows != rows else { return }
        let shift = max(0, cursorRow - (newRows - 1))
        func resized(_ grid: Grid, shift: Int) -> Grid {
            var result = Grid(columns: newColumns, rows: newRows)
            for row in 0..<newRows where row + shift < rows {
                let from = (row + shift) * columns
                let count = min(columns, newColumns)
                for column in 0..<count { result.cells[row * newColumns + column] = grid.cells[from + column] }
                result.wrapped[row] = grid.wrapped[row + shift] && newColumns == columns
            }
            return result
        }
        if shift > 0 && !isAlternateScreen {
            for row in 0..<shift { keepScrolledRow(row) }
            scrolledOff += shift
        }
        main = resized(main, shift: isAlternateScreen ? 0 : shift)
        if let alternate { self.alternate = resized(alternate, shift: isAlternateScreen ? shift : 0) }
        columns = newColumns
        rows = newRows
        cursorRow = min(cursorRow - shift, rows - 1)
        cursorColumn = min(cursorColumn, columns - 1)
        pendingWrap = false
        scrollTop = 0
        scrollBottom = rows - 1
        for index in scrollback.indices where scrollback[index].cells.count > columns {
            scrollback[index].cells.removeLast(scrollback[index].cells.count - columns)
        }
    }

    // MARK: Operations the parser performs

    mutating func withGrid<Result>(_ body: (inout Grid) -> Result) -> Result {
        if isAlternateScreen, var grid = alternate {
            alternate = nil  // moved out and back, so the cells are not copied
            defer { alternate = grid }
            return body(&grid)
        }
        return body(&main)
    }

    mutating func setCell(row: Int, column: Int, _ value: UInt32) {
        let columns = columns
        withGrid { $0.cells[row * columns + column] = value }
    }

    func cell(row: Int, column: Int) -> UInt32 {
        currentGrid.cells[row * columns + column]
    }

    /// Writes one character at the cursor and moves past it, wrapping first when the last one filled the row.
    mutating func print(_ value: UInt32) {
        let width = CharacterWidth.of(value)
        guard width > 0 else { return }  // combining marks are not kept: the base character reads the same
        if pendingWrap {
            pendingWrap = false
            if autowrap { wrapToNextRow() }
        }
        if width == 2 && cursorColumn == columns - 1 {
            // A wide character that does not fit goes to the next row, as xterm does.
            guard autowrap, columns > 1 else { return }
            setCell(row: cursorRow, column: cursorColumn, Self.blank)
            wrapToNextRow()
        }
        if insertMode { insertCells(width) }
        clearWideHalves(row: cursorRow, from: cursorColumn, count: width)
        setCell(row: cursorRow, column: cursorColumn, value)
        if width == 2, cursorColumn + 1 < columns { setCell(row: cursorRow, column: cursorColumn + 1, Self.wideTail) }
        if cursorColumn + width >= columns {
            cursorColumn = columns - 1
            pendingWrap = autowrap
        } else {
            cursorColumn += width
        }
    }

    /// Overwriting half of a wide character erases its other half.
    private mutating func clearWideHalves(row: Int, from column: Int, count: Int) {
        if cell(row: row, column: column) == Self.wideTail, column > 0 {
            setCell(row: row, column: column - 1, Self.blank)
        }
        let after = column + count
        if after < columns, cell(row: row, column: after) == Self.wideTail {
            setCell(row: row, column: after, Self.blank)
        }
    }

    private mutating func wrapToNextRow() {
        let row = cursorRow
        withGrid { $0.wrapped[row] = true }
        cursorColumn = 0
        lineFeed()
    }

    /// LF: down a row, scrolling the region when at its bottom.
    mutating func lineFeed() {
        pendingWrap = false
        if cursorRow == scrollBottom {
            scrollUp(1)
        } else if cursorRow < rows - 1 {
            cursorRow += 1
        }
    }

    /// RI: up a row, scrolling the region down when at its top.
    mutating func reverseIndex() {
        pendingWrap = false
        if cursorRow == scrollTop {
            scrollDown(1)
        } else if cursorRow > 0 {
            cursorRow -= 1
        }
    }

    /// Scrolls the region up `count` rows; on the main screen with the region at the top, the rows leave the
    /// screen (and are kept while `retainsScrollback`).
    mutating func scrollUp(_ count: Int) {
        let count = min(count, scrollBottom - scrollTop + 1)
        if !isAlternateScreen && scrollTop == 0 {
            for row in 0..<count { keepScrolledRow(row) }
            scrolledOff += count
        }
        moveRows(from: scrollTop + count, to: scrollTop, count: scrollBottom - scrollTop + 1 - count)
        clearRows(scrollBottom - count + 1...scrollBottom)
    }

    mutating func scrollDown(_ count: Int) {
        let count = min(count, scrollBottom - scrollTop + 1)
        moveRows(from: scrollTop, to: scrollTop + count, count: scrollBottom - scrollTop + 1 - count)
        clearRows(scrollTop...(scrollTop + count - 1))
    }

    private mutating func keepScrolledRow(_ row: Int) {
        guard retainsScrollback else { return }
        let start = row * columns
        scrollback.append(ScrolledRow(cells: Array(main.cells[start..<(start + columns)]), wrapped: main.wrapped[row]))
        let limit = max(1, Self.maxScrollbackCells / columns)
        if scrollback.count > limit { scrollback.removeFirst(scrollback.count - limit) }
    }

    /// Copies `count` rows from `source` to `destination` (overlapping is fine).
    mutating func moveRows(from source: Int, to destination: Int, count: Int) {
        guard count > 0, source != destination else { return }
        let columns = columns
        withGrid { grid in
            let order = source < destination ? Array((0..<count).reversed()) : Array(0..<count)
            for offset in order {
                let from = (source + offset) * columns
                let to = (destination + offset) * columns
                for column in 0..<columns { grid.cells[to + column] = grid.cells[from + column] }
                grid.wrapped[destination + offset] = grid.wrapped[source + offset]
            }
        }
    }

    mutating func clearRows(_ range: ClosedRange<Int>) {
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound < rows else { return }
        let columns = columns
        withGrid { grid in
            for row in range {
                for column in 0..<columns { grid.cells[row * columns + column] = Self.blank }
                grid.wrapped[row] = false
            }
        }
    }

    mutating func clearCells(row: Int, columns range: Range<Int>) {
        let range = max(0, range.lowerBound)..<min(columns, range.upperBound)
        guard !range.isEmpty else { return }
        let columns = columns
        withGrid { grid in
            for column in range { grid.cells[row * columns + column] = Self.blank }
        }
    }

    /// ICH: blanks at the cursor, the rest of the row shifted right (what falls off the end is lost).
    mutating func insertCells(_ count: Int) {
        let count = min(count, columns - cursorColumn)
        guard count > 0 else { return }
        let row = cursorRow
        let start = cursorColumn
        let columns = columns
        withGrid { grid in
            let base = row * columns
            var column = columns - 1
            while column >= start + count {
                grid.cells[base + column] = grid.cells[base + column - count]
                column -= 1
            }
            for column in start..<(start + count) { grid.cells[base + column] = Self.blank }
        }
    }

    /// DCH: the cells at the cursor removed, the rest of the row shifted left, blanks at the end.
    mutating func deleteCells(_ count: Int) {
        let count = min(count, columns - cursorColumn)
        guard count > 0 else { return }
        let row = cursorRow
        let start = cursorColumn
        let columns = columns
        withGrid { grid in
            let base = row * columns
            for column in start..<columns {
                grid.cells[base + column] = column + count < columns ? grid.cells[base + column + count] : Self.blank
            }
        }
    }

    /// IL / DL: rows inserted or deleted at the cursor, within the scroll region.
    mutating func insertLines(_ count: Int) {
        guard cursorRow >= scrollTop, cursorRow <= scrollBottom else { return }
        let count = min(count, scrollBottom - cursorRow + 1)
        moveRows(from: cursorRow, to: cursorRow + count, count: scrollBottom - cursorRow + 1 - count)
        clearRows(cursorRow...(cursorRow + count - 1))
        cursorColumn = 0
    }

    mutating func deleteLines(_ count: Int) {
        guard cursorRow >= scrollTop, cursorRow <= scrollBottom else { return }
        let count = min(count, scrollBottom - cursorRow + 1)
        moveRows(from: cursorRow + count, to: cursorRow, count: scrollBottom - cursorRow + 1 - count)
        clearRows((scrollBottom - count + 1)...scrollBottom)
        cursorColumn = 0
    }

    /// ED: 0 from the cursor to the end, 1 from the start to the cursor, 2 all, 3 the kept scrollback.
    mutating func eraseInDisplay(_ mode: Int) {
        switch mode {
        case 0:
            eraseInLine(0)
            if cursorRow + 1 < rows { clearRows((cursorRow + 1)...(rows - 1)) }
        case 1:
            eraseInLine(1)
            if cursorRow > 0 { clearRows(0...(cursorRow - 1)) }
        case 2:
            clearRows(0...(rows - 1))
        case 3:
            scrollback = []
        default:
            break
        }
    }

    /// EL: 0 from the cursor to the end of the row, 1 from its start to the cursor, 2 the whole row. Erasing the
    /// end of a row also ends its wrap: it no longer runs on into the next.
    mutating func eraseInLine(_ mode: Int) {
        let row = cursorRow
        switch mode {
        case 0:
            clearCells(row: row, columns: cursorColumn..<columns)
            withGrid { $0.wrapped[row] = false }
        case 1:
            clearCells(row: row, columns: 0..<(cursorColumn + 1))
        case 2:
            clearCells(row: row, columns: 0..<columns)
            withGrid { $0.wrapped[row] = false }
        default:
            break
        }
    }

    mutating func saveCursor() {
        let saved = SavedCursor(row: cursorRow, column: cursorColumn, pendingWrap: pendingWrap)
        if isAlternateScreen { savedAlternate = saved } else { savedMain = saved }
    }

    mutating func restoreCursor() {
        let saved = isAlternateScreen ? savedAlternate : savedMain
        cursorRow = min(saved.row, rows - 1)
        cursorColumn = min(saved.column, columns - 1)
        pendingWrap = saved.pendingWrap
    }

    /// Switches to the alternate screen (47, 1047, 1049) or back; 1049 also saves and restores the cursor and
    /// starts with a clear screen.
    mutating func setAlternateScreen(_ on: Bool, mode: Int) {
        guard on != isAlternateScreen else { return }
        if on {
            if mode == 1049 { saveCursor() }
            if alternate == nil || mode != 47 { alternate = Grid(columns: columns, rows: rows) }
            isAlternateScreen = true
            if mode == 1049 { clearRows(0...(rows - 1)) }
        } else {
            if mode == 1047 || mode == 1049 { alternate = nil }
            isAlternateScreen = false
            if mode == 1049 { restoreCursor() }
        }
        pendingWrap = false
        scrollTop = 0
        scrollBottom = rows - 1
    }

    /// RIS (`ESC c`): everything back to the start, but line numbers keep counting.
    mutating func reset() {
        if !isAlternateScreen {
            for row in 0..<rows { keepScrolledRow(row) }
        }
        scrolledOff += rows
        main = Grid(columns: columns, rows: rows)
        alternate = nil
        isAlternateScreen = false
        cursorRow = 0
        cursorColumn = 0
        pendingWrap = false
        savedMain = SavedCursor()
        savedAlternate = SavedCursor()
        scrollTop = 0
        scrollBottom = rows - 1
        insertMode = false
        autowrap = true
        bracketedPaste = false
        applicationCursorKeys = false
    }
}
