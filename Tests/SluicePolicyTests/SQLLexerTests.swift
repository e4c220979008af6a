import Testing

@testable import SluicePolicy

/// The SQL tokenizer on its own: statements, what counts as a keyword, and where a statement's verb is.
@Suite struct SQLLexerTests {
    /// Each statement's words (literals, quoted identifiers and comments leave none) in one dialect.
    private func words(_ text: String, _ dialect: SQLLexer.Dialect = .postgres) -> [[String]] {
        SQLLexer.statements(text, dialect: dialect).map { $0.tokens.filter { $0.kind == .word }.map(\.text) }
    }

    @Test(arguments: [
        ("select 1; Drop  Table t ;", [["SELECT"], ["DROP", "TABLE", "T"]]),
        ("SELECT 'a; DROP' , \"b;c\" FROM t", [["SELECT", "FROM", "T"]]),
        ("SELECT 'it''s; x'", [["SELECT"]]),
        ("SELECT E'a\\'; b'", [["SELECT"]]),
        ("SELECT 'a\\'; DROP", [["SELECT"], ["DROP"]]),
        ("SELECT $$ ; $$, $f$ $$ ; $f$", [["SELECT"]]),
        ("SELECT $1; x", [["SELECT"], ["X"]]),
        ("a -- b; c\n d", [["A", "D"]]),
        ("a /* b /* c */ d */ e", [["A", "E"]]),
        ("a # b\n c", [["A", "B", "C"]]),
        ("SELECT `x;y`", [["SELECT"]]),
        ("", []),
        (" ; ;", []),
    ])
    func postgres(_ text: String, _ expected: [[String]]) {
        #expect(words(text) == expected)
    }

    @Test(arguments: [
        ("SELECT 'a\\'; DROP'", [["SELECT"]]),
        ("SELECT \"a;b\"", [["SELECT"]]),
        ("a # b; c\n d", [["A", "D"]]),
        ("a /* b /* c */ d */ e", [["A", "D", "E"]]),
        ("/*!40101 SET x = 1 */; /* plain */ SELECT 1", [["SET", "X"], ["SELECT"]]),
        ("SELECT $$; x", [["SELECT"], ["X"]]),
    ])
    func mysql(_ text: String, _ expected: [[String]]) {
        #expect(words(text, .mysql) == expected)
    }

    @Test(arguments: [
        ("DELETE FROM t", "DELETE"),
        ("(SELECT 1)", "SELECT"),
        ("WITH a AS (SELECT 1), b AS (SELECT 2) UPDATE t SET x = 1", "UPDATE"),
        ("WITH RECURSIVE a(n) AS (SELECT 1) SELECT * FROM a", "SELECT"),
        ("EXPLAIN ANALYZE DELETE FROM t", "DELETE"),
        ("EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM t", "DELETE"),
        ("EXPLAIN SELECT 1", "SELECT"),
        ("WITH broken", "WITH"),
    ])
    func verb(_ text: String, _ expected: String) throws {
        let statement = try #require(SQLLexer.statements(text, dialect: .postgres).first)
        #expect(statement.tokens[statement.verb].text == expected)
    }

    @Test func unterminatedLiteralsRunToTheEnd() {
        for text in ["SELECT 'abc", "SELECT \"abc", "SELECT /* abc", "SELECT 'a\\", "SELECT `a"] {
            for dialect in SQLLexer.Dialect.allCases {
                #expect(words(text, dialect) == [["SELECT"]], "\(text)")
            }
        }
        #expect(words("SELECT $x$ abc") == [["SELECT"]])
        #expect(words("SELECT E'\\") == [["SELECT"]])
    }
}
