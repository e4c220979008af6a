/// A statement with its numeric literals collapsed to `0`: `… WHERE aid = 48213` and `… WHERE aid = 7` have one
/// shape. SQL rules match words only (keywords and names, never numbers, strings or comments: `SQLMatcher`), and a
/// digit is never a quote, a comment or a separator, so two statements of one shape match the same rules. What
/// differs is only the excerpt a matching rule quotes: a judgement found by shape is reused only when no rule matched.
///
/// Only a run of digits that starts a token is collapsed: one after a letter, a digit, `_`, `$` or any non-ASCII byte
/// belongs to a name (`t1`, `$1`, `é2`), which a rule may name.
public enum SQLShape {
    /// `text` with each numeric literal's digit runs replaced by one `0`; `text` itself when it has none.
    public static func of(_ text: String) -> String {
        var utf8 = Array(text.utf8)
        var write = 0
        var read = 0
        var changed = false
        var previous: UInt8 = 0x20
        while read < utf8.count {
            let byte = utf8[read]
            if isDigit(byte) && !continuesName(previous) {
                var end = read + 1
                while end < utf8.count && isDigit(utf8[end]) { end += 1 }
                if end - read > 1 || byte != UInt8(ascii: "0") { changed = true }
                utf8[write] = UInt8(ascii: "0")
                write += 1
                read = end
                previous = UInt8(ascii: "0")
                continue
            }
            utf8[write] = byte
            write += 1
            read += 1
            previous = byte
        }
        guard changed else { return text }
        return String(decoding: utf8[..<write], as: UTF8.self)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Whether a digit after `byte` is part of a name rather than the start of a number.
    private static func continuesName(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "$"), 0x80...0xFF:
            return true
        default:
            return false
        }
    }
}
