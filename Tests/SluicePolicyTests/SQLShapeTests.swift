import SluiceModel
import Testing

@testable import SluicePolicy

/// Statements that differ only in numbers share a shape; names with digits in them do not.
@Suite struct SQLShapeTests {
    @Test func numbersCollapseAndNamesStay() {
        #expect(SQLShape.of("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;") == "SELECT abalance FROM pgbench_accounts WHERE aid = 0;")
        #expect(SQLShape.of("SELECT 1.25e10, -7, (3)") == "SELECT 0.0e10, -0, (0)")  // the exponent follows a letter
        #expect(SQLShape.of("SELECT * FROM t1 JOIN log_2024 ON $1 = x9") == "SELECT * FROM t1 JOIN log_2024 ON $1 = x9")
        #expect(SQLShape.of("SELECT 'café 42', é2 FROM \"1st\"") == "SELECT 'café 0', é2 FROM \"0st\"")
        #expect(SQLShape.of("SELECT 0") == "SELECT 0")
        #expect(SQLShape.of("") == "")
    }

    /// What makes reusing a judgement by shape sound: for every statement, the built-in rules match it exactly when
    /// they match its shape, with the same risk and rule.
    @Test func aStatementAndItsShapeAreJudgedAlike() throws {
        let policy = Policy.builtIn
        let statements = [
            "DELETE FROM accounts WHERE id = 42", "DELETE FROM accounts", "UPDATE t1 SET n = n + 10", "DROP TABLE t2",
            "SELECT 1; DROP DATABASE shop2", "TRUNCATE log_2024", "GRANT ALL ON t3 TO u4", "SELECT * FROM x WHERE y IN (1, 2, 3)",
            "ALTER TABLE t5 DROP COLUMN c6", "CREATE USER u7 PASSWORD 'p8'", "/* 9 */ SELECT 10 -- 11\n", "SELECT $1::int * 6",
        ]
        for statement in statements {
            let exact = policy.judge(statement, kind: .sql)
            let shaped = policy.judge(SQLShape.of(statement), kind: .sql)
            #expect(exact.risk == shaped.risk && exact.rule == shaped.rule && exact.action == shaped.action, "\(statement)")
        }
    }
}
