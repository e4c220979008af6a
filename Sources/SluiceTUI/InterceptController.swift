import Foundation
import SluiceCore
import SluiceModel

/// The intercept queue as the UI works it: what is held (messages, and commands the policy holds), the selection,
/// and the hex editor open on a held message. Verdicts go to the `InterceptQueue` (the engine's gate, or a
/// recorder's through the API when attached); each returns the status line's words.
///
/// A held command is not bytes to edit: forward (`a`) runs it, drop (`d`) blocks it, kill (`x`) blocks it and
/// closes its connection.
struct InterceptController {
    private(set) var held: [HeldMessage] = []
    var selected = 0
    /// The hex editor, open on hold `holdID`; while it is, it takes every key.
    var editor: (editor: HexEditor, holdID: Int64)?

    /// Reads what is held again (a hold or a release arrived, or the screen opened).
    mutating func refresh(from queue: (any InterceptQueue)?) {
        held = queue?.held ?? []
        selected = min(selected, max(0, held.count - 1))
    }

    mutating func move(_ delta: Int) {
        selected = max(0, min(max(0, held.count - 1), selected + delta))
    }

    var selectedHold: HeldMessage? {
        held.indices.contains(selected) ? held[selected] : nil
    }

    /// Whether something of flow `id` waits here.
    func holds(_ id: FlowID) -> Bool {
        held.contains { $0.flowID == id }
    }

    /// The hold of a command, if it waits here.
    func hold(of command: CommandRow.Key) -> HeldMessage? {
        held.first { $0.command.map { CommandRow.Key(flowID: $0.flowID, index: $0.index) } == command }
    }

    mutating func decide(_ message: HeldMessage, _ verdict: Verdict, queue: any InterceptQueue) -> StatusMessage {
        let decided = queue.resolve(message.id, verdict)
        refresh(from: queue)
        guard decided else {
            return .error(message.command == nil ? "that message was already decided" : "that command was already decided")
        }
        if let command = message.command {
            var what = "blocked"
            if case .forward = verdict { what = "allowed" }
            let closed = verdict == .kill ? ", connection closed" : ""
            return StatusMessage("command `\(Self.excerpt(command.text))` of flow \(command.flowID) \(what)\(closed)")
        }
        if verdict == .kill { return StatusMessage("flow \(message.flowID) killed") }
        return StatusMessage("message \(message.sequence) of flow \(message.flowID) \(verdict.disposition)")
    }

    mutating func forwardAll(queue: any InterceptQueue) -> StatusMessage {
        let count = queue.held.count
        queue.resolveAll(.forward(edited: nil))
        refresh(from: queue)
        return StatusMessage("forwarded \(count) held message\(count == 1 ? "" : "s")")
    }

    /// Opens the hex editor on a held message; a held command has nothing to edit, and says so.
    mutating func edit(_ message: HeldMessage) -> StatusMessage? {
        guard message.command == nil else {
            return .error("a held command is not edited: a runs it, d blocks it")
        }
        editor = (HexEditor(Array(message.payload)), message.id)
        return nil
    }

    /// A key while the editor is open. Enter forwards the bytes as edited, Esc leaves them held.
    mutating func editorKey(_ key: Key, queue: (any InterceptQueue)?) -> StatusMessage? {
        guard var current = editor else { return nil }
        switch key {
        case .escape:
            editor = nil
            return StatusMessage("edit abandoned; the message is still held")
        case .enter:
            editor = nil
            guard let queue else { return .error(Capabilities.readOnlyReason) }
            let bytes = current.editor.bytes
            let verdict: Verdict = current.editor.isEdited ? .forward(edited: Data(bytes)) : .forward(edited: nil)
            let decided = queue.resolve(current.holdID, verdict)
            refresh(from: queue)
            guard decided else { return .error("that message was already decided (timed out?)") }
            return StatusMessage(current.editor.isEdited ? "forwarded \(bytes.count) edited bytes" : "forwarded unchanged")
        case .left: current.editor.move(by: -1)
        case .right: current.editor.move(by: 1)
        case .up: current.editor.move(by: -Hexdump.bytesPerLine)
        case .down: current.editor.move(by: Hexdump.bytesPerLine)
        case .home: current.editor.moveTo(0)
        case .end: current.editor.moveTo(current.editor.bytes.count)
        case .tab: current.editor.toggleColumn()
        case .insert: current.editor.toggleInsert()
        case .delete: current.editor.delete()
        case .backspace: current.editor.backspace()
        case .control("z"): current.editor.undo()
        case .control("o"): current.editor.insertLineBreak()
        case .character(let character): current.editor.type(character)
        default: break
        }
        editor = current
        return nil
    }

    /// A command's text for a status line: one line, control characters shown, long ones cut.
    static func excerpt(_ text: String) -> String {
        let visible = text.visible
        return visible.count > 60 ? String(visible.prefix(59)) + "…" : visible
    }
}
