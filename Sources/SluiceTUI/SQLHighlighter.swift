/// Cuts SQL text into the spans the Commands view colours: keywords, string literals, numbers, comments. For the
/// eye only (the policy reads SQL with its own lexer): a span never changes the text, and an unfinished literal or
/// comment simply runs to the end.
enum SQLHighlighter {
    enum Kind: Equatable {
        case keyword, string, number, comment
    }

    struct Span: Equatable {
        /// Character offsets into the text.
        var range: Range<Int>
        var kind: Kind
    }

    /// Words shown as keywords (compared in upper case): the statements and clauses people scan for.
    static let keywords: Set<String> = [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "INSERT", "INTO", "VALUES", "UPDATE", "SET", "DELETE", "CREATE", "DROP",
        "ALTER", "TABLE", "DATABASE", "SCHEMA", "INDEX", "VIEW", "TRUNCATE", "GRANT", "REVOKE", "JOIN", "LEFT", "RIGHT",
        "INNER", "OUTER", "ON", "AS", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "ALL", "DISTINCT", "NULL",
        "IS", "IN", "LIKE", "BETWEEN", "EXISTS", "CASE", "WHEN", "THEN", "ELSE", "END", "BEGIN", "COMMIT", "ROLLBACK",
        "RETURNING", "WITH", "USE", "SHOW", "EXPLAIN", "ANALYZE", "COPY", "TO", "PREPARE", "EXECUTE", "DEALLOCATE", "CALL",
        "IF", "CASCADE", "PRIMARY", "KEY", "REFERENCES", "DEFAULT", "USER", "ROLE", "TRUE", "FALSE", "DESC", "ASC", "REPLACE",
    ]

    static func spans(_ text: String) -> [Span] {
        let characters = Array(text)
        var spans: [Span] = []
        var index = 0
        func scan(while condition: (Character) -> Bool) {
            while index < characters.count, condition(characters[index]) { index += 1 }
        }
        while index < characters.count {
            let start = index
            let character = characters[index]
            let next: Character? = index + 1 < characters.count ? characters[index + 1] : nil
            if character == "-" && next == "-" {
                scan { $0 != "\n" }
                spans.append(Span(range: start..<index, kind: .comment))
            } else if character == "/" && next == "*" {
                index += 2
                while index < characters.count, !(characters[index] == "*" && index + 1 < characters.count && characters[index + 1] == "/") {
                    index += 1
                }
                index = min(characters.count, index + 2)
                spans.append(Span(range: start..<index, kind: .comment))
            } else if character == "'" {
                index += 1
                while index < characters.count {
                    if characters[index] == "'" {
                        // '' is a quote inside the literal.
                        if index + 1 < characters.count, characters[index + 1] == "'" {
                            index += 2
                            continue
                        }
                        index += 1
                        break
                    }
                    index += 1
                }
                spans.append(Span(range: start..<index, kind: .string))
            } else if character.isNumber && character.isASCII {
                scan { ($0.isNumber && $0.isASCII) || $0 == "." }
                spans.append(Span(range: start..<index, kind: .number))
            } else if character.isLetter || character == "_" {
                scan { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }
                if keywords.contains(String(characters[start..<index]).uppercased()) {
                    spans.append(Span(range: start..<index, kind: .keyword))
                }
            } else if character == "\"" || character == "`" {
                index += 1
                scan { $0 != character }
                index = min(characters.count, index + 1)
            } else {
                index += 1
            }
        }
        return spans
    }
}
