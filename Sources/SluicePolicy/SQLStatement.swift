/// One SQL statement's tokens, with where its main verb is: after a `WITH` list of common table expressions
/// (`WITH x AS (…) DELETE FROM t`), after `EXPLAIN` and its options (`EXPLAIN ANALYZE` runs the statement), and
/// after opening parentheses. Keyword tests look at the statement's top level: the parenthesis depth of the verb,
/// so a `WHERE` in a subquery is not the statement's `WHERE`.
struct SQLStatement: Sendable, Equatable {
    let tokens: [SQLToken]
    /// The text as written (comments included), for the judgement's reason.
    let source: String
    /// Index of the main verb in `tokens`.
    let verb: Int
    /// Where statements begin: the main verb, then each data-modifying statement nested in parentheses
    /// (PostgreSQL's `WITH d AS (DELETE FROM t RETURNING *) SELECT …` deletes as surely as a plain DELETE).
    let starts: [Int]
    /// Parenthesis depth of each token.
    let depths: [Int]

    private static let mainVerbs: Set<String> = ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"]
    private static let explainable: Set<String> = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "DROP", "TRUNCATE", "ALTER", "CREATE", "GRANT", "REPLACE",
        "WITH", "VALUES", "TABLE",
    ]

    init(tokens: [SQLToken], source: String) {
        self.tokens = tokens
        self.source = source
        var depths: [Int] = []
        depths.reserveCapacity(tokens.count)
        var depth = 0
        for token in tokens {
            if token.kind == .symbol && token.text == ")" { depth = max(0, depth - 1) }
            depths.append(depth)
            if token.kind == .symbol && token.text == "(" { depth += 1 }
        }
        self.depths = depths
        let verb = Self.findVerb(tokens, depths)
        self.verb = verb
        var starts = [verb]
        for index in tokens.indices.dropFirst() where index != verb {
            let previous = tokens[index - 1]
            if previous.kind == .symbol, previous.text == "(", tokens[index].kind == .word,
                Self.nestedVerbs.contains(tokens[index].text)
            {
                starts.append(index)
            }
        }
        self.starts = starts
    }

    private static let nestedVerbs: Set<String> = ["INSERT", "UPDATE", "DELETE", "MERGE"]

    private static func findVerb(_ tokens: [SQLToken], _ depths: [Int]) -> Int {
        var index = 0
        while index < tokens.count, tokens[index].kind == .symbol, tokens[index].text == "(" { index += 1 }
        guard index < tokens.count, tokens[index].kind == .word else { return min(index, max(tokens.count - 1, 0)) }
        let base = depths[index]
        if tokens[index].text == "EXPLAIN" || tokens[index].text == "DESCRIBE" || tokens[index].text == "DESC" {
            // The first statement keyword at the same depth after EXPLAIN's options.
            for candidate in (index + 1)..<max(index + 1, tokens.count)
            where depths[candidate] == base && tokens[candidate].kind == .word
                && explainable.contains(tokens[candidate].text)
            {
                return findVerb(Array(tokens[candidate...]), Array(depths[candidate...])) + candidate
            }
            return index
        }
        if tokens[index].text == "WITH" {
            // The statement after the last common table expression: a main verb right after a `)` at this depth.
            var candidate = index + 1
            while candidate < tokens.count {
                if depths[candidate] == base, tokens[candidate].kind == .word,
                    mainVerbs.contains(tokens[candidate].text), candidate > 0,
                    tokens[candidate - 1].kind == .symbol, tokens[candidate - 1].text == ")"
                {
                    return candidate
                }
                candidate += 1
            }
        }
        return index
    }

    /// Words from `start` at its top level, in order, up to the parenthesis that closes it.
    func topLevelWords(from start: Int) -> some Sequence<String> {
        let base = start < depths.count ? depths[start] : 0
        return tokens.indices[start...].lazy
            .prefix { depths[$0] >= base }
            .filter { depths[$0] == base && tokens[$0].kind == .word }
            .map { tokens[$0].text }
    }

    /// The consecutive words from `start` on (stops at the first token that is not a word).
    func leadingWords(from start: Int, limit: Int) -> [String] {
        var words: [String] = []
        var index = start
        while index < tokens.count, tokens[index].kind == .word, words.count < limit {
            words.append(tokens[index].text)
            index += 1
        }
        return words
    }

    /// The statement as a person would read it: whitespace runs collapsed.
    var excerpt: String {
        source.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }
}
