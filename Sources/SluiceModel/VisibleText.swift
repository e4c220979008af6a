extension String {
    /// The text with every character that could act on a terminal or a log reader written out instead: C0 and C1
    /// control characters (`ESC[2J`, a newline that starts a forged log line) and the bidirectional overrides that
    /// reorder what is shown (Trojan Source). Peer-controlled text (a proxy user name, an error quoting a peer)
    /// passes through this wherever it meets a terminal: the headless log and the TUI.
    ///
    ///     "a\u{1B}[2J\nb".visible == "a\\e[2J\\nb"
    public var visible: String {
        guard unicodeScalars.contains(where: Self.needsEscape) else { return self }
        var out = ""
        out.reserveCapacity(utf8.count + 8)
        for scalar in unicodeScalars {
            guard Self.needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{1B}": out += "\\e"
            default:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += scalar.value < 0x100 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{" + hex + "}"
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        // Bidirectional embeddings, overrides and isolates (Unicode TR9).
        case 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
