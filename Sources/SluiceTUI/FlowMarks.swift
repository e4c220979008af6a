import SluiceModel
import SluiceStore

/// The flows the operator marked with `m`: in memory for the list, its filter (`~marked`) and `w`, and kept in the
/// store by its writer while the UI records, so they outlive the session. `sluice view` has no writer (it opens a
/// store read-only): there a mark lasts as long as the UI, and the status line says so.
struct FlowMarks {
    private(set) var ids: Set<FlowID> = []
    let writer: FlowMarking?

    init(writer: FlowMarking?) {
        self.writer = writer
    }

    func contains(_ id: FlowID) -> Bool { ids.contains(id) }
    var isEmpty: Bool { ids.isEmpty }

    /// Marks read from the store with flows the list did not have yet (a mark made here since wins).
    mutating func adopt(_ stored: [FlowID]) {
        ids.formUnion(stored)
    }

    /// Marks or unmarks `id`; returns the status line's words.
    mutating func toggle(_ id: FlowID) -> String {
        let marked = ids.remove(id) == nil
        if marked { ids.insert(id) }
        guard let writer else {
            return "flow \(id) \(marked ? "marked" : "unmarked") for this session only: `sluice view` is read-only"
        }
        writer.setMarked(marked, flow: id)
        return "flow \(id) \(marked ? "marked" : "unmarked")"
    }
}
