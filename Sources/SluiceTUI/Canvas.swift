/// Where views draw: rows and columns of text in roles. `Terminal` is the real one; `TextCanvas` keeps the text
/// in memory for tests.
public protocol Canvas: AnyObject {
    var height: Int { get }
    var width: Int { get }
    /// Draws `text` from (row, column), clipped at the right edge.
    func put(_ row: Int, _ column: Int, _ text: String, _ role: Role)
    /// Paints the whole row in `role` (selection bars, the header).
    func fill(_ row: Int, _ role: Role)
    /// Blanks everything before a frame is drawn.
    func clear()
    /// Shows the frame drawn since `clear()`.
    func present()
}

/// A canvas in memory: what a person would read on the screen, with the role of each row's first cell.
public final class TextCanvas: Canvas {
    public let height: Int
    public let width: Int
    private var cells: [[Character]]
    public private(set) var rowRoles: [Role?]

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
        cells = Array(repeating: Array(repeating: " ", count: width), count: height)
        rowRoles = Array(repeating: nil, count: height)
    }

    public func put(_ row: Int, _ column: Int, _ text: String, _ role: Role) {
        guard row >= 0, row < height, column < width else { return }
        var x = column
        for character in text.visible {
            if x >= width { break }
            if x >= 0 { cells[row][x] = character }
            x += 1
        }
    }

    public func fill(_ row: Int, _ role: Role) {
        guard row >= 0, row < height else { return }
        cells[row] = Array(repeating: " ", count: width)
        rowRoles[row] = role
    }

    public func clear() {
        cells = Array(repeating: Array(repeating: " ", count: width), count: height)
        rowRoles = Array(repeating: nil, count: height)
    }

    public func present() {}

    public var lines: [String] {
        cells.map { String($0).trimmingTrailingSpaces() }
    }

    public var text: String { lines.joined(separator: "\n") }
}

extension String {
    /// Word-wrapped into lines of at most `width` characters, broken at spaces (a word longer than a line is cut);
    /// lines after the first start with `indent`, so a wrapped line reads as one.
    func wrapped(to width: Int, indent: String = "  ") -> [String] {
        guard count > width, width > indent.count else { return [self] }
        var lines: [String] = []
        var line = ""
        var lineHasWord = false
        for piece in split(separator: " ") {
            var word = piece
            while !word.isEmpty {
                let needed = (lineHasWord ? 1 : 0) + word.count
                if line.count + needed <= width {
                    line += (lineHasWord ? " " : "") + word
                    lineHasWord = true
                    break
                }
                if !lineHasWord {
                    let room = width - line.count
                    line += word.prefix(room)
                    word = word.dropFirst(room)
                }
                lines.append(line)
                line = indent
                lineHasWord = false
            }
        }
        if lineHasWord { lines.append(line) }
        return lines
    }

    /// Cut or pad to exactly `width` characters.
    func fitted(to width: Int) -> String {
        guard width > 0 else { return "" }
        if count > width { return String(prefix(max(0, width - 1))) + "…" }
        return self + String(repeating: " ", count: width - count)
    }
}
