/// The shape of an SQL statement a rule matches: every key given must hold. Keywords compare case-insensitively
/// and only ever with keywords: never with the inside of a string, a comment or a quoted identifier. Compiled from
/// a rule's `sql:` mapping; the keys are documented in `samples/policy.yaml`.
struct SQLMatcher: Sendable, Equatable {
    /// One position of `statement`: one of these keywords, or nothing if optional (`OR?`).
    struct Step: Sendable, Equatable {
        var keywords: Set<String>
        var isOptional = false
    }

    /// `statement`: the statement begins with these keywords, in order (after `WITH …` and `EXPLAIN`).
    var statement: [Step] = []
    /// `contains`: each set has a keyword at the statement's top level.
    var contains: [Set<String>] = []
    /// `without`: none of these keywords is at the statement's top level (`DELETE` without `WHERE`).
    var without: Set<String> = []

    func matches(_ statement: SQLStatement) -> Bool {
        statement.starts.contains { matches(statement, from: $0) }
    }

    private func matches(_ statement: SQLStatement, from start: Int) -> Bool {
        if !self.statement.isEmpty {
            let words = statement.leadingWords(from: start, limit: self.statement.count)
            var position = 0
            for step in self.statement {
                if position < words.count, step.keywords.contains(words[position]) {
                    position += 1
                } else if !step.isOptional {
                    return false
                }
            }
        }
        if contains.isEmpty && without.isEmpty { return true }
        var found = Array(repeating: false, count: contains.count)
        for word in statement.topLevelWords(from: start) {
            if without.contains(word) { return false }
            for (index, keywords) in contains.enumerated() where keywords.contains(word) { found[index] = true }
        }
        return !found.contains(false)
    }
}
