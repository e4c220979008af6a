import SluiceTerminal

/// Finds the command lines a user submits in an interactive shell, so each can be judged before the shell gets
/// its Enter (PROTOCOLS.md §3, "Commands from an interactive shell").
///
/// The wire has no command boundaries: keystrokes go one way, the terminal's output the other. The keystrokes
/// give the boundary (an Enter), the screen gives the text: all output is fed to a headless `TerminalScreen`, the
/// cursor's cell is remembered at the first key of a line (the end of the prompt), and at Enter, once the echo of
/// the keys before it has arrived, the line is read off the screen from that cell. Backspace, Ctrl-U/Ctrl-W,
/// arrows, history, tab completion and Ctrl-R come out as the shell drew them (Warpgate's `CommandDetector`).
///
/// The caller (the SSH session relay) drives it:
/// 1. `serverOutput` with every chunk the server sends the client's terminal;
/// 2. `clientInput` with every chunk of keys: `.forward` — send them on; `.submit(before:enter:rest:)` — send
///    `before`, wait until the server's echo of it has settled (output quiet a few milliseconds, with a bound), call
///    `submittedLine()`, judge it, then send `enter` (allowed) or `blockSequence` (blocked), and give `rest` back to
///    `clientInput`.
///
/// Nothing is judged while a full-screen program has the alternate screen (vim, less, top), nor when nothing was
/// echoed (a password prompt): `submittedLine()` is nil. Inside a bracketed paste (`ESC[200~ … ESC[201~`, honoured
/// only once the shell enabled it with `ESC[?2004h`) newlines do not submit, and the whole paste is judged at the
/// real Enter as one text with its newlines. Lines typed ahead in one chunk after an Enter (a paste without
/// bracketed paste) are read from wherever the cursor was, before the shell printed their prompt, and may come out
/// wrong; bash ≥ 5.1 brackets pastes by default. This is an audit and mistake guard, not a security boundary: a
/// script run with `sh t.sh`, or an alias, hides what runs.
public struct ShellLineTracker: Sendable {
    /// What to do with a chunk of keys.
    public enum InputStep: Equatable, Sendable {
        /// Send all of it: no Enter to judge.
        case forward([UInt8])
        /// A chunk holding an Enter that submits a line: send `before`, let its echo arrive, judge
        /// `submittedLine()`, then send `enter` or block, and feed `rest` to `clientInput`.
        case submit(before: [UInt8], enter: [UInt8], rest: [UInt8])
    }

    /// Where the line being typed starts: the cursor's cell at its first key.
    struct Mark: Sendable, Equatable {
        var line: Int
        var column: Int
        /// The screen's text before the mark on its row (the prompt), to find the line again after the shell
        /// redrew it elsewhere (Ctrl-L clears the screen and redraws prompt and line at the top).
        var prompt: String
    }

    public private(set) var screen: TerminalScreen
    private var mark: Mark?
    /// Inside a client's bracketed paste.
    private var pasting = false
    /// The start of a paste marker cut by the end of the last chunk.
    private var partialMarker: [UInt8] = []

    private static let pasteStart: [UInt8] = [0x1B, 0x5B, 0x32, 0x30, 0x30, 0x7E]  // ESC [ 2 0 0 ~
    private static let pasteEnd: [UInt8] = [0x1B, 0x5B, 0x32, 0x30, 0x31, 0x7E]  // ESC [ 2 0 1 ~
    /// The prompts readline shows instead of the shell's while searching the history (Ctrl-R, Ctrl-S).
    private static let searchPrompts = [
        "(reverse-i-search)`", "(failed reverse-i-search)`", "(i-search)`",
        "(failed i-search)`",
    ]

    public init(columns: Int, rows: Int) {
        screen = TerminalScreen(columns: columns, rows: rows)
    }

    /// The client's terminal changed size (pty-req, window-change).
    public mutating func resize(columns: Int, rows: Int) {
        screen.resize(columns: columns, rows: rows)
        if let mark, mark.column >= screen.columns { self.mark?.column = screen.columns - 1 }
    }

    /// Whether a full-screen program has the alternate screen: nothing is judged then.
    public var isAlternateScreen: Bool { screen.isAlternateScreen }

    /// Bytes the server sent to the client's terminal.
    public mutating func serverOutput(_ bytes: some Collection<UInt8>) {
        screen.feed(bytes)
    }

    /// Keystrokes from the client; see `InputStep`.
    public mutating func clientInput(_ bytes: some Collection<UInt8>) -> InputStep {
        let keys = Array(bytes)
        guard !screen.isAlternateScreen else {
            forgetLine()
            return .forward(keys)
        }
        if mark == nil, !keys.isEmpty { startLine() }
        let honoursPaste = screen.bracketedPaste
        var index = 0
        while index < keys.count {
            let byte = keys[index]
            if honoursPaste, trackPasteMarker(byte) {
                index += 1
                continue
            }
            if !pasting && (byte == 0x0D || byte == 0x0A) {
                var end = index + 1
                if byte == 0x0D, end < keys.count, keys[end] == 0x0A { end += 1 }  // CR LF is one Enter
                return .submit(
                    before: Array(keys[..<index]), enter: Array(keys[index..<end]), rest: Array(keys[end...]))
            }
            if !pasting && (byte == 0x03 || byte == 0x04 && mark.map({ isEmptyLine(from: $0) }) == true) {
                // Ctrl-C abandons the line, Ctrl-D on an empty one ends the shell: the next key starts a new line,
                // at the prompt the shell prints then.
                forgetLine()
                if index + 1 < keys.count { startLine() }
            }
            index += 1
        }
        return .forward(keys)
    }

    /// The submitted line as the screen shows it, once the echo of the keys before Enter has arrived; nil when
    /// there is nothing to judge (alternate screen, nothing typed, nothing echoed). Ends the line: the next key
    /// starts another.
    public mutating func submittedLine() -> String? {
        defer { forgetLine() }
        guard !screen.isAlternateScreen, let mark else { return nil }
        let text: String
        if let searched = historySearchLine(from: mark.line) {
            text = searched
        } else {
            text = read(from: locate(mark))
        }
        let trimmed = Self.trimmingTrailingBlanks(text)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// What blocks a submitted line: to the server, Ctrl-E (to the end of the line) and Ctrl-U (erase it all), then
    /// Enter, which on an empty line just prints a fresh prompt; to the client, a notice on a line of its own.
    ///
    /// Ctrl-U alone erases only what is left of the cursor, and the shell would run the rest: Ctrl-E first. Both
    /// work in readline's emacs mode and in a terminal's canonical mode (dash, `cat`), where Ctrl-E is a character
    /// that Ctrl-U erases with the rest (checked against real bash and dash in the recorded fixtures). Readline's vi
    /// mode does not know Ctrl-E in command mode.
    public func blockSequence(reason: String) -> (toServer: [UInt8], toClient: [UInt8]) {
        let visible = String(
            String.UnicodeScalarView(
                reason.unicodeScalars.prefix(300).map {
                    $0.value < 0x20 || ($0.value >= 0x7F && $0.value < 0xA0) ? " " : $0
                }
            )
        )
        return ([0x05, 0x15, 0x0D], Array("\r\n[sluice] blocked: \(visible)\r\n".utf8))
    }

    // MARK: Lines

    private mutating func startLine() {
        let line = screen.cursorLine
        let column = screen.cursorColumn
        mark = Mark(line: line, column: column, prompt: prefix(of: line, columns: column))
        screen.retainsScrollback = true
    }

    private mutating func forgetLine() {
        mark = nil
        pasting = false
        partialMarker = []
        screen.retainsScrollback = false
    }

    /// The text of `line`'s first `columns` cells, blanks kept.
    private func prefix(of line: Int, columns: Int) -> String {
        let full = screen.text(line: line, trimTrailing: false)
        var result = String.UnicodeScalarView()
        var used = 0
        for scalar in full.unicodeScalars {
            guard used < columns else { break }
            result.append(scalar)
            used += CharacterWidth.of(scalar.value)
        }
        return String(result)
    }

    private func isEmptyLine(from mark: Mark) -> Bool {
        Self.trimmingTrailingBlanks(read(from: mark)).isEmpty
    }

    /// The mark, or where the shell redrew its prompt since: the nearest line at or above the cursor that starts
    /// with the same prompt (after Ctrl-L or a redraw below a background job's message).
    private func locate(_ mark: Mark) -> Mark {
        guard mark.line < screen.firstLine || prefix(of: mark.line, columns: mark.column) != mark.prompt else {
            return mark
        }
        var line = screen.cursorLine
        while line >= screen.firstLine {
            if prefix(of: line, columns: mark.column) == mark.prompt {
                return Mark(line: line, column: mark.column, prompt: mark.prompt)
            }
            line -= 1
        }
        return mark
    }

    /// The text from `mark` to the end of the input: through the cursor's line and the lines the last one wrapped
    /// onto. A line that wrapped joins the next directly; a real newline (a pasted one) stays a newline.
    private func read(from mark: Mark) -> String {
        var end = max(screen.cursorLine, mark.line)
        while screen.isWrapped(line: end) && end < screen.lastLine { end += 1 }
        var text = ""
        var line = max(mark.line, screen.firstLine)
        var column = mark.line >= screen.firstLine ? mark.column : 0
        while line <= end {
            let wrapped = screen.isWrapped(line: line)
            text += screen.text(line: line, from: column, trimTrailing: !wrapped)
            if line < end && !wrapped { text += "\n" }
            line += 1
            column = 0
        }
        return text
    }

    /// While searching the history, readline shows `(reverse-i-search)`term': line` instead of the prompt, and
    /// only puts the prompt back after the Enter: the line is what follows the search prompt.
    private func historySearchLine(from line: Int) -> String? {
        let text = read(from: Mark(line: line, column: 0, prompt: ""))
        guard let prompt = Self.searchPrompts.first(where: { text.hasPrefix($0) }) else { return nil }
        let afterPrompt = text.dropFirst(prompt.count)
        guard let separator = afterPrompt.firstRange(of: "': ") else { return nil }
        return String(afterPrompt[separator.upperBound...])
    }

    /// Whether `byte` is part of a paste marker (and so not a key); updates `pasting` at a whole one.
    private mutating func trackPasteMarker(_ byte: UInt8) -> Bool {
        let candidate = partialMarker + [byte]
        if candidate == Self.pasteStart || candidate == Self.pasteEnd {
            pasting = candidate == Self.pasteStart
            partialMarker = []
            return true
        }
        if Self.pasteStart.starts(with: candidate) || Self.pasteEnd.starts(with: candidate) {
            partialMarker = candidate
            return true
        }
        // Not a marker after all: those bytes were keys (an arrow, Escape), already passed over.
        partialMarker = []
        if byte == 0x1B {
            partialMarker = [byte]
            return true
        }
        return false
    }

    static func trimmingTrailingBlanks(_ text: String) -> String {
        var scalars = text.unicodeScalars[...]
        while let last = scalars.last, last == " " || last == "\n" || last == "\t" { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
