import SluiceModel
import Testing

@testable import SluicePolicy

/// The built-in policy on SQL: keywords count only outside literals, comments and quoted identifiers, and each
/// statement of a text is judged.
@Suite struct SQLJudgementTests {
    static let cases: [ShellJudgementTests.Case] = [
        // critical
        .init("DROP DATABASE x", .critical, "drop-database"),
        .init("drop database x;", .critical, "drop-database"),
        .init("DrOp DaTaBaSe x", .critical, "drop-database"),
        .init("DROP SCHEMA public CASCADE", .critical, "drop-database"),
        .init("DROP DATABASE IF EXISTS x", .critical, "drop-database"),
        .init("DROP/**/DATABASE x", .critical, "drop-database"),
        .init("DROP /* a /* nested */ comment */ DATABASE x", .critical, "drop-database"),
        .init("-- hi\nDROP DATABASE x", .critical, "drop-database"),
        .init("# hi\nDROP DATABASE x", .critical, "drop-database"),
        .init("DROP\n\tDATABASE\n x", .critical, "drop-database"),
        .init("SELECT 1; DROP DATABASE x", .critical, "drop-database"),
        .init("SELECT 'a;b'; DROP DATABASE x", .critical, "drop-database"),
        .init("SELECT 'it''s'; DROP DATABASE x", .critical, "drop-database"),
        .init("SELECT 'a\\'; DROP DATABASE x; --'", .critical, "drop-database"),
        .init("/*!50000 DROP DATABASE x */", .critical, "drop-database"),
        .init("DROP DATABASE `prod`", .critical, "drop-database"),
        .init("DROP DATABASE \"prod\"", .critical, "drop-database"),
        .init("TRUNCATE users", .critical, "truncate"),
        .init("truncate table users", .critical, "truncate"),
        .init("DELETE FROM users", .critical, "delete-without-where"),
        .init("delete from users;", .critical, "delete-without-where"),
        .init("DELETE FROM users -- WHERE id = 1", .critical, "delete-without-where"),
        .init("DELETE FROM users /* WHERE id = 1 */", .critical, "delete-without-where"),
        .init("DELETE FROM t WHERE", .low, nil),
        .init("DELETE FROM users WHERE id IN (SELECT id FROM x)", .low, nil),
        .init("DELETE FROM users USING x", .critical, "delete-without-where"),
        .init("DELETE FROM t RETURNING (SELECT 1 WHERE true)", .critical, "delete-without-where"),
        .init("DELETE FROM t WHERE note = 'x'; DELETE FROM t", .critical, "delete-without-where"),
        .init("UPDATE users SET admin = true", .critical, "update-without-where"),
        .init("UPDATE users SET name = 'WHERE'", .critical, "update-without-where"),
        .init("UPDATE t SET a = (SELECT b FROM c WHERE c.id = 1)", .critical, "update-without-where"),
        .init("UPDATE \"where\" SET a = 1", .critical, "update-without-where"),
        .init("WITH x AS (SELECT 1 WHERE true) DELETE FROM t", .critical, "delete-without-where"),
        .init("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", .critical, "delete-without-where"),
        .init("EXPLAIN ANALYZE DELETE FROM t", .critical, "delete-without-where"),
        // MySQL has no dollar quoting: read there, this is three statements, and the policy keeps the worse reading.
        .init("SELECT $$; DROP DATABASE x; $$", .critical, "drop-database"),
        .init("SELECT $tag$ $$ ; $tag$; DROP DATABASE x", .critical, "drop-database"),
        .init("SELECT E'\\''; DROP DATABASE x; --'", .critical, "drop-database"),
        // high
        .init("DROP TABLE users", .high, "drop-table"),
        .init("drop table if exists users cascade", .high, "drop-table"),
        .init("SELECT 1; DROP TABLE t", .high, "drop-table"),
        .init("ALTER TABLE users DROP COLUMN email", .high, "alter-drop"),
        .init("alter table t drop constraint c", .high, "alter-drop"),
        // medium
        .init("GRANT ALL ON t TO bob", .medium, "grant"),
        .init("CREATE USER bob WITH PASSWORD 'x'", .medium, "create-user"),
        .init("CREATE ROLE admin", .medium, "create-user"),
        .init("CREATE OR REPLACE USER bob", .medium, "create-user"),
        // low, however alarming they look
        .init("SELECT 'DROP DATABASE x'", .low, nil),
        .init("SELECT \"DROP DATABASE\" FROM t", .low, nil),
        .init("SELECT 1 -- DROP DATABASE x", .low, nil),
        .init("SELECT 1 /* ; DROP DATABASE x */", .low, nil),
        .init("SELECT $$DROP DATABASE x$$", .low, nil),
        .init("DELETE FROM t WHERE id = 1", .low, nil),
        .init("delete from t where id = 1", .low, nil),
        .init("UPDATE t SET a = 1 WHERE b = 2", .low, nil),
        .init("UPDATE t SET a = 1 WHERE b IN (SELECT b FROM c)", .low, nil),
        .init("INSERT INTO t VALUES ('DELETE FROM t')", .low, nil),
        .init("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1", .low, nil),
        .init("SELECT * FROM drop_table", .low, nil),
        .init("ALTER TABLE t ADD COLUMN c int", .low, nil),
        .init("CREATE TABLE t (id int)", .low, nil),
        .init("SELECT truncate FROM t", .low, nil),
        .init("SELECT 1", .low, nil),
        .init("", .low, nil),
        .init(";;;", .low, nil),
        .init("SELECT 'unterminated; DROP DATABASE x", .low, nil),
        .init("SELECT 1 /* unterminated DROP DATABASE x", .low, nil),
    ]

    @Test(arguments: cases)
    func judge(_ example: ShellJudgementTests.Case) {
        let judgement = Policy.builtIn.judge(example.text, kind: .sql)
        #expect(judgement.risk == example.risk, "\(judgement.reason)")
        #expect(judgement.rule == example.rule, "\(judgement.reason)")
    }

    @Test func reasonQuotesTheStatement() {
        let judgement = Policy.builtIn.judge("SELECT 1;\n  DROP   TABLE t;", kind: .sql)
        #expect(judgement.reason == "DROP TABLE t (rule drop-table)")
        #expect(judgement.action == .hold)
    }

    @Test func shellRulesDoNotApplyToSQLNorSQLRulesToShell() {
        #expect(Policy.builtIn.judge("rm -rf /", kind: .sql).risk == .low)
        #expect(Policy.builtIn.judge("DROP DATABASE x", kind: .shell).risk == .low)
    }
}
