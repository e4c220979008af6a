import SluiceModel
import SluiceStore

/// The flows the operator marked with `m`. The store keeps the marks (its writer writes them while the UI records,
/// so they outlive the session) and each row read from it says whether it was marked (`FlowRow.storedMark`); this
/// holds only the marks made and taken back in this session, which win over what a row says: a read-only
/// `sluice view` has no writer, and a recording one may not have written them yet. So memory holds a keypress's
/// worth per mark, not a set of every marked flow.
struct FlowMarks {
    /// Marked (true) or unmarked (false) in this session.
    private(set) var changes: [FlowID: Bool] = [:]
    let writer: FlowMarking?

    init(writer: FlowMarking?) {
        self.writer = writer
    }

    func contains(_ row: FlowRow) -> Bool { isMarked(row.id, stored: row.storedMark) }

    func isMarked(_ id: FlowID, stored: Bool) -> Bool { changes[id] ?? stored }

    /// Marked in this session.
    var marked: Set<FlowID> { Set(changes.filter(\.value).keys) }
    /// Unmarked in this session.
    var unmarked: Set<FlowID> { Set(changes.filter { !$0.value }.keys) }

    /// Marks or unmarks the flow (`stored`: whether its row says it is marked); returns the status line's words.
    mutating func toggle(_ id: FlowID, stored: Bool) -> String {
        let marked = !isMarked(id, stored: stored)
        changes[id] = marked
        guard let writer else {
            return "flow \(id) \(marked ? "marked" : "unmarked") for this session only: `sluice view` is read-only"
        }
        writer.setMarked(marked, flow: id)
        return "flow \(id) \(marked ? "marked" : "unmarked")"
    }
}
