import Foundation
import SluiceModel
import SluiceTerminal

/// Drawing the Player screen: an SSH flow's detail with its recording shown as the terminal was at one moment, the
/// position and the command it is at, and the flow's commands below with that one picked out.
extension App {
    func drawPlayer(_ canvas: Canvas) {
        guard let detail else { return }
        let id = detail.flowID
        if let row = rowIndexLookup(id) {
            canvas.put(1, 0, "flow \(row.id)  \(row.kind.rawValue)  \(row.origin) → \(row.server)  \(row.state.rawValue)", .normal)
        } else {
            canvas.put(1, 0, "flow \(id)", .normal)
        }
        let commands = commandLines(of: id, width: canvas.width)
        let last = canvas.height - 2  // the last row above the status line
        var y = 2
        var current = detail.focusCommand
        switch recording.state {
        case .loading:
            canvas.put(y, 0, "recording: loading…", .dim)
            y += 2
        case .missing(let reason):
            for line in reason.wrapped(to: canvas.width) {
                canvas.put(y, 0, line, .dim)
                y += 1
            }
            y += 1
        case .failed(let reason):
            for line in reason.wrapped(to: canvas.width) {
                canvas.put(y, 0, line, .error)
                y += 1
            }
            y += 1
        case .ready(let player):
            current = commandIndex(at: player, of: id) ?? current
            // The commands get a few rows below the terminal, when the screen has them to spare.
            let reserved = commands.isEmpty ? 0 : min(commands.count + 1, 5)
            let room = last - (y + 3) + 1  // position line and the two rules
            let paneRows = room - reserved >= 3 ? min(player.screen.rows, room - reserved) : max(1, min(player.screen.rows, room))
            y = drawRecording(canvas, player, top: y, paneRows: paneRows)
        }
        guard !commands.isEmpty, y <= last else { return }
        canvas.put(y, 0, "commands (\(commands.count))", .normal)
        y += 1
        let height = last - y + 1
        guard height > 0 else { return }
        let focus = commands.firstIndex { $0.index == current } ?? 0
        let first = max(0, min(focus - height / 2, commands.count - height))
        for (offset, entry) in commands.dropFirst(first).prefix(height).enumerated() {
            let selected = entry.index == current
            if selected { canvas.fill(y + offset, .selection) }
            canvas.put(y + offset, 0, entry.text, selected ? .selection : entry.role)
        }
    }

    /// The position line, the terminal between two rules (clipped to the pane, keeping the cursor's row in sight),
    /// the keys on the lower rule. Returns the row after it.
    private func drawRecording(_ canvas: Canvas, _ player: RecordingPlayer, top: Int, paneRows: Int) -> Int {
        var y = top
        let timeline = player.timeline
        var line = (player.isPlaying ? "▶ playing  " : "❚❚ paused  ") + player.positionText
        if let index = player.currentMarker {
            let marker = timeline.markers[index]
            line += "  command \(index + 1)/\(timeline.markers.count) at \(RecordingPlayer.seconds(marker.time)): \(marker.label.visible)"
        } else if !timeline.markers.isEmpty {
            line += "  before the first of \(timeline.markers.count) commands"
        } else {
            line += "  no commands marked"
        }
        if timeline.torn { line += "  (the recording was cut off)" }
        canvas.put(y, 0, line, .prompt)
        y += 1
        let screen = player.screen
        let width = min(screen.columns, canvas.width)
        let size = "─ \(screen.columns)×\(screen.rows) "
        canvas.put(y, 0, size + String(repeating: "─", count: max(0, width - size.count)), .dim)
        y += 1
        let first = screen.cursorRow >= paneRows ? screen.cursorRow - paneRows + 1 : 0
        for offset in 0..<paneRows {
            let row = first + offset
            guard row < screen.rows else { break }
            let text = screen.visibleRow(row)
            canvas.put(y + offset, 0, text, .normal)
            if row == screen.cursorRow {
                let characters = Array(text)
                let cell = screen.cursorColumn < characters.count ? String(characters[screen.cursorColumn]) : " "
                canvas.put(y + offset, screen.cursorColumn, cell, .hexCursor)
            }
        }
        y += paneRows
        let keys = "─ space play/pause  ← → 5 s  [ ] command  g G start/end  p close "
        canvas.put(y, 0, keys + String(repeating: "─", count: max(0, width - keys.count)), .dim)
        return y + 1
    }

    /// The flow's command at the player's position: the one whose marker is in effect, found by its text and how
    /// many markers of the same text came before it.
    private func commandIndex(at player: RecordingPlayer, of flow: FlowID) -> Int64? {
        guard let index = player.currentMarker else { return nil }
        let markers = player.timeline.markers
        let label = markers[index].label
        let occurrence = markers[..<index].filter { $0.label == label }.count
        let same = log.commands(of: flow).filter { $0.command.kind == .shell && $0.command.text == label }
        return occurrence < same.count ? same[occurrence].command.index : nil
    }
}
