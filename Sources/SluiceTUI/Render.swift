import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// Drawing the app's state. Only visible rows are touched, so a list of 100,000 flows costs a screenful.
extension App {
    public func render(on canvas: Canvas, now: Date = Date()) {
        contentHeight = max(1, canvas.height - 2)
        drawTabs(canvas)
        if let editor = intercept.editor {
            drawEditor(canvas, editor.editor, holdID: editor.holdID)
        } else {
            switch view {
            case .flows: drawFlows(canvas)
            case .detail: drawDetail(canvas)
            case .player: drawPlayer(canvas)
            case .connections: drawConnections(canvas)
            case .intercept: drawIntercept(canvas, now: now)
            case .commands: drawCommands(canvas)
            case .alerts: drawAlerts(canvas)
            case .help: drawHelp(canvas)
            }
        }
        drawStatus(canvas)
        dirty = false
    }

    // MARK: Chrome

    private func drawTabs(_ canvas: Canvas) {
        canvas.fill(0, .header)
        var x = 0
        let label = " \(title) "
        canvas.put(0, x, label, .header)
        x += label.count
        let tabs: [(String, ViewKind)] = [
            ("1 Flows", .flows), ("2 Conns", .connections), ("3 Intercept\(held.isEmpty ? "" : "(\(held.count))")", .intercept),
            ("4 Cmds", .commands), ("5 Alerts", .alerts), ("? Help", .help),
        ]
        let offered = Set(Bindings.all.filter { capabilities.disabledReason($0) == nil }.map(\.action))
        for (text, kind) in tabs where offered.contains(.show(kind)) || kind == .help {
            let active = kind == view || ((view == .detail || view == .player) && kind == .flows)
            canvas.put(0, x, " \(text) ", active ? .tabActive : .header)
            x += text.count + 3
        }
        var right: [String] = []
        if let filter = engine?.intercept.filter { right.append("i:\(filter.text)") }
        if let viewFilter { right.append("f:\(viewFilter.text)") }
        if !right.isEmpty {
            let text = right.joined(separator: " ") + " "
            if x + text.count < canvas.width { canvas.put(0, canvas.width - text.count, text, .header) }
        }
    }

    private func drawStatus(_ canvas: Canvas) {
        let row = canvas.height - 1
        canvas.fill(row, .status)
        if let prompt {
            canvas.fill(row, .normal)
            let label = prompt.kind.prefix
            canvas.put(row, 0, label + prompt.shownText + "▏", .prompt)
            if let error = prompt.error {
                let text = "  \(error)"
                let x = min(canvas.width - 1, label.count + prompt.shownText.count + 1)
                canvas.put(row, x, text, .promptError)
            }
            return
        }
        if let status {
            canvas.fill(row, status.isError ? .error : .status)
            canvas.put(row, 0, " " + status.text, status.isError ? .error : .status)
            return
        }
        if let failure = storeProgress?.failure {
            // Until the store writes again, nothing else on this line matters as much.
            canvas.fill(row, .error)
            canvas.put(row, 0, " store: \(failure): recording stopped (store.on_full), retrying", .error)
            return
        }
        var parts = Bindings.statusHints(in: view, capabilities)
        if view == .flows {
            parts.insert(
                "\(flows.count.text) flows" + (flows.window.follow ? " ↓follow" : "") + (historyLoading ? " (loading history…)" : "")
                    + (filtering ? " (filtering…)" : ""),
                at: 0
            )
        }
        if view == .commands { parts.insert("\(log.commands.visible.count)/\(log.commands.rows.count) commands", at: 0) }
        if view == .alerts { parts.insert("\(log.alerts.visible.count)/\(log.alerts.rows.count) alerts", at: 0) }
        if !held.isEmpty { parts.insert("\(held.count) held", at: 0) }
        canvas.put(row, 0, " " + parts.joined(separator: "  │  "), .status)
    }

    func drawEmpty(_ canvas: Canvas, _ headline: String, _ detail: String) {
        let top = max(1, canvas.height / 3)
        canvas.put(top, 2, headline, .normal)
        canvas.put(top + 1, 2, detail, .dim)
    }

    // MARK: Flows

    private func drawFlows(_ canvas: Canvas) {
        let width = canvas.width
        let listTop = 2
        let listHeight = max(1, canvas.height - 3)
        canvas.put(1, 0, flowColumns(id: "ID", time: "TIME", kind: "KIND", route: "CLIENT → SERVER", summary: "SUMMARY", size: "SIZE", duration: "DUR", state: "STATE", width: width), .dim)
        let rows = flows.window.rows
        guard !rows.isEmpty else {
            let hint =
                historyLoading ? "Loading history…"
                : flows.reading ? "Looking for the flows the filter lists…"
                : (flows.count.total ?? 0) == 0 ? "No flows yet. Connect through a listener and they appear here."
                : "No flow matches the filter (f to change it)."
            canvas.put(listTop + 1, 2, hint, .dim)
            return
        }
        let positions = flows.window.window(height: listHeight)
        let selected = flows.window.selected
        // Open flows show their live byte counts; asked only when one is on screen.
        var live: [FlowID: OpenConnection] = [:]
        if let engine, positions.contains(where: { rows[$0].state == .open }) {
            for connection in engine.openConnections { live[connection.flowID] = connection }
        }
        for (line, position) in positions.enumerated() {
            let row = rows[position]
            let isHeld = held.contains { $0.flowID == row.id }
            var role: Role = .normal
            if row.state == .error { role = .error }
            if isHeld { role = .held }
            if marks.contains(row) { role = .marked }
            if position == selected {
                role = .selection
                canvas.fill(listTop + line, .selection)
            }
            let duration = (row.end ?? (row.state == .open ? nil : row.start)).map { Formatting.duration(seconds: $0.timeIntervalSince(row.start)) } ?? "…"
            let state = isHeld ? "HELD" : row.state.rawValue
            let text = flowColumns(
                id: (marks.contains(row) ? "●" : "") + row.id.description, time: String(Timestamp.timeOfDay(row.start).prefix(8)),
                kind: row.kind.rawValue, route: "\(row.origin) → \(row.server)", summary: row.summary,
                size: Formatting.bytes(live[row.id].map { $0.bytesUp + $0.bytesDown } ?? (row.bytesUp + row.bytesDown)),
                duration: duration, state: state, width: width
            )
            canvas.put(listTop + line, 0, text, role)
        }
    }

    /// The list's columns; the summary takes what the others leave.
    private func flowColumns(
        id: String, time: String, kind: String, route: String, summary: String, size: String, duration: String, state: String, width: Int
    ) -> String {
        let routeWidth = min(40, max(20, width / 3))
        let fixed = 7 + 9 + 6 + routeWidth + 10 + 8 + 7
        let summaryWidth = max(0, width - fixed)
        return String(id.fitted(to: 6)) + " " + time.fitted(to: 8) + " " + kind.fitted(to: 5) + " " + route.fitted(to: routeWidth)
            + " " + summary.fitted(to: summaryWidth) + String(repeating: " ", count: max(0, 9 - size.count)) + size + " "
            + String(repeating: " ", count: max(0, 7 - duration.count)) + duration + " " + state.fitted(to: 6)
    }

    // MARK: Detail

    private func drawDetail(_ canvas: Canvas) {
        guard let detail else { return }
        var lines: [(String, Role)] = []
        // An error's advice comes at its end ("…add the host to tls.passthrough"): wrapped, never cut at the edge.
        func addWrapped(_ text: String, _ role: Role) {
            lines += text.visible.wrapped(to: canvas.width).map { ($0, role) }
        }
        if let row = rowIndexLookup(detail.flowID) {
            lines.append(("flow \(row.id)  \(row.kind.rawValue)  \(row.origin) → \(row.server)  \(row.state.rawValue)", .normal))
            var timing = "started \(Timestamp.iso8601(row.start))"
            if let end = row.end { timing += "  ended \(Timestamp.iso8601(end))  (\(Formatting.duration(seconds: end.timeIntervalSince(row.start))))" }
            lines.append((timing, .dim))
            let live = engine?.openConnections.first { $0.flowID == row.id }
            lines.append(("up \(Formatting.bytes(live?.bytesUp ?? row.bytesUp))  down \(Formatting.bytes(live?.bytesDown ?? row.bytesDown))", .dim))
            if let error = row.error { addWrapped("error: \(error)", .error) }
            if row.kind == .ssh { lines.append(("terminal sessions are recorded: p plays this one", .dim)) }
        } else {
            lines.append(("flow \(detail.flowID)", .normal))
        }
        for error in detail.errors { addWrapped("error \(Timestamp.timeOfDay(error.time)) \(error.phase): \(error.message)", .error) }
        if let loadError = detail.loadError { addWrapped(loadError, .error) }
        if let http = detail.http {
            lines.append(("", .normal))
            lines.append(("\(http.method) \(http.url) \(http.version)", .up))
            lines += http.requestHeaders.map { ("  \($0.name): \($0.value)", .dim) }
            if let original = http.replayOf { lines.append(("  (\(Formatting.replay(of: original)))", .dim)) }
            if let status = http.status {
                let mark = http.synthetic ? "  (answered by Sluice)" : ""
                lines.append(("\(http.responseVersion ?? "HTTP/1.1") \(status) \(http.reason ?? "")\(mark)", .down))
                lines += http.responseHeaders.map { ("  \($0.name): \($0.value)", .dim) }
                let timings = [("connect", http.timings.connect), ("tls", http.timings.tls), ("first byte", http.timings.firstByte)]
                    .compactMap { name, value in value.map { "\(name) \(String(format: "%.1f", $0)) ms" } }
                if !timings.isEmpty { lines.append(("  " + timings.joined(separator: ", "), .dim)) }
            }
        }
        lines.append(("", .normal))
        let commandLines = self.commandLines(of: detail.flowID, width: canvas.width)
        var focusLine: Int?
        if !commandLines.isEmpty {
            lines.append(("commands (\(commandLines.count))", .normal))
            for entry in commandLines {
                if entry.index == detail.focusCommand { focusLine = lines.count }
                lines.append((entry.text, entry.index == detail.focusCommand ? .selection : entry.role))
            }
            lines.append(("", .normal))
        }
        // A held command shows among the commands, not as a message (its sequence is its command index).
        let heldHere = held.filter { $0.flowID == detail.flowID && $0.command == nil }
        let heldSequences = Set(heldHere.map(\.sequence))
        if let messages = detail.messages {
            if messages.isEmpty && heldHere.isEmpty { lines.append(("no messages recorded", .dim)) }
            var offsets: [Direction: Int] = [.up: 0, .down: 0]
            // The screen is built whole on every frame, so what it shows of a flow is bounded (a flow may keep 16 MiB).
            var linesLeft = Self.detailMessageLines
            var notShown = (messages: 0, bytes: 0)
            for message in messages {
                let offset = offsets[message.direction] ?? 0
                offsets[message.direction] = offset + message.size
                let isHeld = heldSequences.contains(message.sequence)
                if linesLeft <= 0 && !isHeld {
                    notShown.messages += 1
                    notShown.bytes += message.payload.count
                    continue
                }
                var header = "\(message.direction.arrow) #\(message.sequence) \(message.direction.rawValue) \(Timestamp.timeOfDay(message.time)) \(message.size) B"
                if message.isTruncated { header += " (\(message.payload.count) stored)" }
                if message.kind != .chunk { header += " \(message.kind.rawValue)" }
                if let original = message.editedFromSequence { header += "  edit of #\(original)" }
                if let disposition = message.disposition, disposition != "held" { header += "  [\(disposition)]" }
                var role: Role = message.direction == .up ? .up : .down
                if message.editedFromSequence != nil { role = .edited }
                if message.disposition == "dropped" || message.disposition == "killed" { role = .blocked }
                if isHeld {
                    header += "  [HELD: a forward, e edit, d drop, x kill]"
                    role = .held
                }
                lines.append((header, role))
                let body = messageBody(message.payload, hex: detail.hex, offset: offset, limit: isHeld ? nil : linesLeft)
                lines += body.lines.map { ($0, .normal) }
                linesLeft -= body.lines.count + 1
                if body.more > 0 { lines.append(("  … \(body.more) more lines of this message", .dim)) }
            }
            if notShown.messages > 0 {
                lines.append(
                    (
                        "… \(notShown.messages) more messages (\(Formatting.bytes(Int64(notShown.bytes)))) not shown here: "
                            + "sluice show \(detail.flowID) --hex prints them all", .dim
                    )
                )
            }
        } else {
            lines.append(("loading messages…", .dim))
        }
        if let decoded = detail.decodedResponse {
            lines.append(("response body, decoded from \(decoded.coding): \(decoded.body.count) B", .down))
            let body = messageBody(decoded.body, hex: detail.hex, offset: 0, limit: Self.detailMessageLines)
            lines += body.lines.map { ($0, .normal) }
            if body.more > 0 { lines.append(("  … \(body.more) more lines of the decoded body", .dim)) }
        }
        // Held messages the store has not committed yet still show.
        for message in heldHere where !(detail.messages ?? []).contains(where: { $0.sequence == message.sequence }) {
            lines.append(("\(message.direction.arrow) #\(message.sequence) \(message.direction.rawValue) \(message.payload.count) B  [HELD: a forward, e edit, d drop, x kill]", .held))
            lines += messageBody(message.payload, hex: detail.hex, offset: 0, limit: nil).lines.map { ($0, .normal) }
        }
        let height = max(1, canvas.height - 2)
        var scroll = detail.scroll
        if let focusLine, !detail.focused {
            // Opened from a command: scrolled to it, a few lines of context above.
            scroll = max(0, focusLine - 3)
            details.change {
                $0.scroll = scroll
                $0.focused = true
            }
        }
        let top = min(scroll, max(0, lines.count - height))
        for (index, line) in lines.dropFirst(top).prefix(height).enumerated() {
            if line.1 == .selection { canvas.fill(1 + index, .selection) }
            canvas.put(1 + index, 0, line.0, line.1)
        }
    }

    /// A flow's commands for its detail: index, time, kind, risk, what became of it, how it ended, the rule, the text.
    func commandLines(of flow: FlowID, width: Int) -> [(index: Int64, text: String, role: Role)] {
        log.commands(of: flow).map { row in
            let command = row.command
            var text = "  #\(command.index) " + String(Timestamp.timeOfDay(command.time).prefix(8)) + " "
                + command.kind.rawValue.fitted(to: 5) + " " + command.risk.rawValue.fitted(to: 8) + " " + row.actionText
            if let outcome = row.outcomeText { text += "  " + outcome }
            if let rule = command.rule { text += "  [\(rule)]" }
            var role = CommandRow.role(command.risk)
            if command.decision == .pending, intercept.hold(of: row.key) != nil {
                text += "  [HELD: a run, d block]"
                role = .held
            }
            return (command.index, text + "  $ " + command.text.visible, role)
        }
    }

    func rowIndexLookup(_ id: FlowID) -> FlowRow? {
        flows[id]
    }

    /// Lines of message bodies a detail shows, in all: about 125 screens, 80 KiB of hexdump. Past it, a
    /// message is cut and the rest of the flow summed up in a line, so a key is answered in a frame however much the
    /// flow kept (mitmproxy's console cuts a body at `content_view_lines_cutoff`, 512 lines, unless `f` asks for all).
    /// Held messages are always shown whole.
    static let detailMessageLines = 5_000

    /// Text when the bytes read as text (a JSON object or array one member per line, every token as sent), else a
    /// hexdump; at most `limit` lines of it, and how many more there were.
    func messageBody(_ payload: Data, hex: Bool, offset: Int, limit: Int? = nil) -> (lines: [String], more: Int) {
        let limit = limit ?? .max
        func cut(_ all: [String]) -> (lines: [String], more: Int) {
            all.count <= limit ? (all.map { "  " + $0 }, 0) : (all.prefix(limit).map { "  " + $0 }, all.count - limit)
        }
        if !hex, let text = String(data: payload, encoding: .utf8), text.unicodeScalars.allSatisfy({ $0.value >= 0x20 || $0 == "\n" || $0 == "\r" || $0 == "\t" }) {
            if let laidOut = JSONIndenter.lines(payload) {
                return cut(laidOut)
            }
            return cut(text.replacingOccurrences(of: "\r", with: "").split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        }
        // A hexdump's length is known: only the lines shown are made.
        let total = (payload.count + Hexdump.bytesPerLine - 1) / Hexdump.bytesPerLine
        let shown = min(total, limit)
        let lines = Hexdump.lines(payload.prefix(shown * Hexdump.bytesPerLine), startOffset: offset)
        return (lines.map { "  " + $0 }, total - shown)
    }

    // MARK: Connections

    private func drawConnections(_ canvas: Canvas) {
        guard let engine else {
            canvas.put(1, 0, "FLOW    KIND  CLIENT → SERVER                            AGE       UP      DOWN    UP/s  DOWN/s", .dim)
            drawEmpty(canvas, "No engine.", "`sluice view` shows a store; connections exist only while Sluice relays.")
            return
        }
        let listening = engine.listeners.map { "#\($0.id) \($0.spec)" }
        canvas.put(1, 0, "listeners: " + (listening.isEmpty ? "none (:listen SPEC adds one)" : listening.joined(separator: "   ")), .normal)
        canvas.put(2, 0, "FLOW    KIND  CLIENT → SERVER                            AGE       UP      DOWN    UP/s  DOWN/s", .dim)
        let connectionSelected = connections.selected
        guard !connections.rows.isEmpty else {
            canvas.put(4, 2, "No open connections.", .dim)
            return
        }
        let height = max(1, canvas.height - 4)
        let top = max(0, connectionSelected - height + 1)
        for (line, row) in connections.rows.dropFirst(top).prefix(height).enumerated() {
            let c = row.connection
            let position = top + line
            let route = "\(c.client) → \(c.server)".fitted(to: 42)
            let age = Formatting.duration(seconds: Date().timeIntervalSince(c.openedAt))
            let text = c.flowID.description.fitted(to: 7) + " " + c.kind.rawValue.fitted(to: 5) + " " + route + " " + age.fitted(to: 8)
                + Formatting.bytes(c.bytesUp).leftPadded(9) + Formatting.bytes(c.bytesDown).leftPadded(10)
                + Formatting.bytes(Int64(row.upRate)).leftPadded(9) + Formatting.bytes(Int64(row.downRate)).leftPadded(9)
            if position == connectionSelected { canvas.fill(3 + line, .selection) }
            canvas.put(3 + line, 0, text, position == connectionSelected ? .selection : .normal)
        }
    }

    // MARK: Intercept queue

    private func drawIntercept(_ canvas: Canvas, now: Date) {
        let filterText = engine?.intercept.filter?.text
        canvas.put(1, 0, "intercept: " + (filterText ?? "off (press i to set a filter)"), filterText == nil ? .dim : .held)
        guard !held.isEmpty else {
            canvas.put(3, 2, "Nothing held. Messages matching the intercept filter wait here for a verdict,", .dim)
            canvas.put(4, 2, "and so do commands the policy holds.", .dim)
            canvas.put(5, 2, "a forward (run)   A forward all   e edit   d drop (block)   x kill the connection", .dim)
            return
        }
        let heldSelected = intercept.selected
        canvas.put(2, 0, "HOLD  FLOW    DIR    SIZE    AGE   LEFT  PREVIEW", .dim)
        let height = max(1, canvas.height - 4)
        let top = max(0, heldSelected - height + 1)
        for (line, message) in held.dropFirst(top).prefix(height).enumerated() {
            let position = top + line
            let age = Int(now.timeIntervalSince(message.heldAt))
            let left = max(0, Int(message.deadline.timeIntervalSince(now).rounded(.up)))
            let lead = message.id.description.fitted(to: 5) + " " + message.flowID.description.fitted(to: 7) + " "
            if position == heldSelected { canvas.fill(3 + line, .selection) }
            guard let command = message.command else {
                let preview = FlowRow.previewText(message.payload)
                let text = lead + message.direction.rawValue.fitted(to: 4) + Formatting.bytes(Int64(message.payload.count)).leftPadded(8)
                    + "\(age)s".leftPadded(6) + "\(left)s".leftPadded(6) + "  " + preview
                canvas.put(3 + line, 0, text, position == heldSelected ? .selection : .held)
                continue
            }
            // A command the policy holds: its risk where a message's size is, then who runs it where, its text and
            // the rule that held it.
            let user = command.user.isEmpty ? command.target : "\(command.user)@\(command.target)"
            let text = lead + "cmd " + command.risk.rawValue.leftPadded(8) + "\(age)s".leftPadded(6) + "\(left)s".leftPadded(6)
                + "  " + user + " $ " + command.text.visible + (command.rule.map { "  [\($0)]" } ?? "")
            canvas.put(3 + line, 0, text, position == heldSelected ? .selection : .held)
            if position != heldSelected {
                canvas.put(3 + line, lead.count + 4, command.risk.rawValue.leftPadded(8), CommandRow.role(command.risk))
            }
        }
    }

    // MARK: Help

    private func drawHelp(_ canvas: Canvas) {
        let lines = Bindings.helpLines(capabilities)
        let height = max(1, canvas.height - 2)
        let top = min(helpScroll, max(0, lines.count - height))
        for (index, line) in lines.dropFirst(top).prefix(height).enumerated() {
            canvas.put(1 + index, 0, line, index == 0 && top == 0 ? .prompt : .normal)
        }
    }

    // MARK: Hex editor

    private func drawEditor(_ canvas: Canvas, _ editor: HexEditor, holdID: Int64) {
        let message = held.first { $0.id == holdID }
        let title = "edit hold \(holdID)" + (message.map { ", flow \($0.flowID) \($0.direction.rawValue) message \($0.sequence)" } ?? "")
        canvas.put(1, 0, title, .prompt)
        let info = "original \(editor.original.count) B, edited \(editor.bytes.count) B  "
            + (editor.insertMode ? "[INSERT]" : "[OVERWRITE]") + "  column: " + (editor.column == .hex ? "hex" : "ascii")
            + (editor.isEdited ? "  (modified)" : "")
        canvas.put(2, 0, info, editor.isEdited ? .edited : .dim)
        let perLine = Hexdump.bytesPerLine
        let height = max(1, canvas.height - 5)
        let cursorLine = editor.cursor / perLine
        let lineCount = editor.bytes.count / perLine + 1
        let top = max(0, min(cursorLine - height / 2, lineCount - height))
        for line in 0..<height {
            let lineIndex = top + line
            guard lineIndex < lineCount else { break }
            let y = 3 + line
            let start = lineIndex * perLine
            canvas.put(y, 0, Hexdump.paddedHex(start, width: 8), .hexOffset)
            for column in 0..<perLine {
                let index = start + column
                let hexX = 10 + column * 3 + (column >= 8 ? 1 : 0)
                let asciiX = 10 + perLine * 3 + 2 + column
                let isCursor = index == editor.cursor
                if index < editor.bytes.count {
                    let byte = editor.bytes[index]
                    let changed = index >= editor.original.count || editor.original[index] != byte
                    let role: Role = isCursor ? .hexCursor : (changed ? .edited : .normal)
                    canvas.put(y, hexX, Hexdump.hexByte(byte), isCursor && editor.column == .hex ? .hexCursor : (changed ? .edited : .normal))
                    let character = (0x20...0x7e).contains(byte) ? String(UnicodeScalar(byte)) : "."
                    canvas.put(y, asciiX, character, isCursor && editor.column == .ascii ? .hexCursor : role == .hexCursor ? .normal : role)
                } else if isCursor {
                    canvas.put(y, editor.column == .hex ? hexX : asciiX, editor.column == .hex ? "__" : "_", .hexCursor)
                }
            }
        }
        canvas.put(canvas.height - 2, 0, "Enter forward edited  Esc leave (stays held)  Tab hex/ascii  Ins insert  Del/Bksp delete  Ctrl-Z undo", .dim)
    }
}

extension FlowRow {
    static func previewText(_ bytes: Data) -> String {
        var text = ""
        for byte in bytes.prefix(60) {
            switch byte {
            case 0x20...0x7e: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "·"
            }
        }
        return text
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
