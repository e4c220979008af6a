/// Columns padded to their widest cell and separated by two spaces, as `sluice flows` prints them; the last
/// column is never padded, so long text runs on instead of widening every line.
struct TextTable {
    let headers: [String]
    /// Columns aligned to the right (numbers).
    var rightAligned: Set<Int> = []

    func render(_ rows: [[String]]) -> String {
        let widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        return ([headers] + rows).map { line(of: $0, widths: widths) }.joined()
    }

    /// One row, padded to `widths`, with its newline.
    func line(of cells: [String], widths: [Int]) -> String {
        cells.enumerated().map { column, cell in
            guard column < cells.count - 1 || rightAligned.contains(column) else { return cell }
            let padding = String(repeating: " ", count: max(widths[column] - cell.count, 0))
            return rightAligned.contains(column) ? padding + cell : cell + padding
        }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
    }
}
