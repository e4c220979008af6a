/// Splits SQL text into statements of tokens, so rules see keywords and never the inside of a comment, a string
/// or a quoted identifier: `SELECT 'DROP DATABASE x'` holds no DROP, `DROP/**/DATABASE x` does.
///
/// PostgreSQL and MySQL disagree on comments and strings (`#` comments, nested `/* */`, backslash escapes,
/// `"…"` strings or identifiers, `$tag$` quoting, MySQL's executable `/*! … */`), and text can be written so that
/// one dialect sees a statement the other hides. The policy does not know which server a text goes to, so it reads
/// the text in each dialect where they could differ and keeps the higher risk.
struct SQLLexer {
    enum Dialect: Sendable, CaseIterable {
        case postgres
        case mysql
    }

    private let bytes: [UInt8]
    private let dialect: Dialect
    private var index = 0
    private var inExecutableComment = false

    private init(bytes: [UInt8], dialect: Dialect) {
        self.bytes = bytes
        self.dialect = dialect
    }

    /// The statements of `text`, split on `;` outside literals and comments; empty statements are left out.
    static func statements(_ text: String, dialect: Dialect) -> [SQLStatement] {
        var lexer = SQLLexer(bytes: Array(text.utf8), dialect: dialect)
        return lexer.run()
    }

    /// Whether the dialects could read `text` differently; if not, one reading is enough.
    static func dialectsMayDiffer(_ text: String) -> Bool {
        text.utf8.contains { byte in
            byte == UInt8(ascii: "#") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"")
                || byte == UInt8(ascii: "$") || byte == UInt8(ascii: "/")
        }
    }

    private mutating func run() -> [SQLStatement] {
        var statements: [SQLStatement] = []
        var tokens: [SQLToken] = []
        var start: Int?
        var end = 0
        func finish() {
            if !tokens.isEmpty, let first = start {
                let source = String(decoding: bytes[first..<max(first, end)], as: UTF8.self)
                statements.append(SQLStatement(tokens: tokens, source: source))
            }
            tokens = []
            start = nil
        }
        while let token = next() {
            if token.kind == .symbol && token.text == ";" {
                finish()
                continue
            }
            if start == nil { start = token.start }
            end = index
            tokens.append(token)
        }
        finish()
        return statements
    }

    private func peek(_ offset: Int) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    private static func isWordStart(_ byte: UInt8) -> Bool {
        ShellParser.isNameStart(byte) || byte >= 0x80
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        ShellParser.isNameByte(byte) || byte >= 0x80 || byte == UInt8(ascii: "$")
    }

    private mutating func next() -> SQLToken? {
        while index < bytes.count {
            let byte = bytes[index]
            let start = index
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0c:
                index += 1
            case UInt8(ascii: "-") where peek(1) == UInt8(ascii: "-"):
                skipLine()
            case UInt8(ascii: "#") where dialect == .mysql:
                skipLine()
            case UInt8(ascii: "/") where peek(1) == UInt8(ascii: "*"):
                if dialect == .mysql && peek(2) == UInt8(ascii: "!") {
                    // `/*!50000 DROP DATABASE x */` runs on MySQL: read what is inside as SQL.
                    index += 3
                    while let digit = peek(0), digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") { index += 1 }
                    inExecutableComment = true
                } else {
                    skipBlockComment()
                }
            case UInt8(ascii: "*") where inExecutableComment && peek(1) == UInt8(ascii: "/"):
                index += 2
                inExecutableComment = false
            case UInt8(ascii: "'"):
                index += 1
                skipString(quote: byte, backslashEscapes: dialect == .mysql)
                return SQLToken(kind: .literal, text: "", start: start)
            case UInt8(ascii: "\""):
                index += 1
                skipString(quote: byte, backslashEscapes: dialect == .mysql)
                return SQLToken(kind: dialect == .mysql ? .literal : .quoted, text: "", start: start)
            case UInt8(ascii: "`"):
                index += 1
                skipString(quote: byte, backslashEscapes: false)
                return SQLToken(kind: .quoted, text: "", start: start)
            case UInt8(ascii: "$") where dialect == .postgres:
                if let tagEnd = dollarTagEnd() {
                    let tag = Array(bytes[index...tagEnd])
                    index = tagEnd + 1
                    skipDollarQuoted(tag: tag)
                    return SQLToken(kind: .literal, text: "", start: start)
                }
                index += 1
                return SQLToken(kind: .symbol, text: "$", start: start)
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                while let next = peek(0), Self.isWordByte(next) || next == UInt8(ascii: ".") { index += 1 }
                return SQLToken(kind: .number, text: "", start: start)
            default:
                if Self.isWordStart(byte) {
                    // `E'…'` in PostgreSQL is a string with backslash escapes.
                    if dialect == .postgres, byte == UInt8(ascii: "E") || byte == UInt8(ascii: "e"),
                        peek(1) == UInt8(ascii: "'")
                    {
                        index += 2
                        skipString(quote: UInt8(ascii: "'"), backslashEscapes: true)
                        return SQLToken(kind: .literal, text: "", start: start)
                    }
                    while let next = peek(0), Self.isWordByte(next) { index += 1 }
                    let word = String(decoding: bytes[start..<index], as: UTF8.self).uppercased()
                    return SQLToken(kind: .word, text: word, start: start)
                }
                index += 1
                return SQLToken(kind: .symbol, text: String(decoding: [byte], as: UTF8.self), start: start)
            }
        }
        return nil
    }

    private mutating func skipLine() {
        while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
    }

    /// `/* … */`; PostgreSQL nests them, MySQL ends at the first `*/`. Unterminated: to the end.
    private mutating func skipBlockComment() {
        index += 2
        var open = 1
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") {
                index += 2
                open -= 1
                if open == 0 || dialect == .mysql { return }
            } else if dialect == .postgres && bytes[index] == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                index += 2
                open += 1
            } else {
                index += 1
            }
        }
    }

    /// A quoted string or identifier, the opening quote consumed: a doubled quote stands for itself, and so does
    /// a backslash-escaped character where the dialect says so. Unterminated: to the end.
    private mutating func skipString(quote: UInt8, backslashEscapes: Bool) {
        while index < bytes.count {
            let byte = bytes[index]
            if backslashEscapes && byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            index += 1
            if byte == quote {
                if peek(0) == quote {
                    index += 1
                    continue
                }
                return
            }
        }
        index = bytes.count
    }

    /// At a `$`: the index of the `$` closing a dollar-quote tag (`$$`, `$body$`), or nil if this is no tag.
    private func dollarTagEnd() -> Int? {
        var position = index + 1
        if position < bytes.count, bytes[position] == UInt8(ascii: "$") { return position }
        guard position < bytes.count, ShellParser.isNameStart(bytes[position]) else { return nil }
        while position < bytes.count && ShellParser.isNameByte(bytes[position]) { position += 1 }
        return position < bytes.count && bytes[position] == UInt8(ascii: "$") ? position : nil
    }

    /// Skips to just after the closing `tag` (or the end).
    private mutating func skipDollarQuoted(tag: [UInt8]) {
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "$"), index + tag.count <= bytes.count,
                bytes[index..<(index + tag.count)].elementsEqual(tag)
            {
                index += tag.count
                return
            }
            index += 1
        }
    }
}

/// One lexical unit of SQL. Words carry their text uppercased; literals and quoted identifiers carry none, since
/// no rule may look inside them.
struct SQLToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case word, quoted, literal, number, symbol
    }

    var kind: Kind
    var text: String
    /// Byte offset in the text, for the statement's excerpt.
    var start: Int
}
