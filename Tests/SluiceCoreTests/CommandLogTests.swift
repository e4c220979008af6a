import Foundation
import SluiceModel
import SluicePolicy
import SluiceTestSupport
import Testing

@testable import SluiceCore

@Suite struct CommandLogTests {
    @Test func aCachedJudgementGivesWayToAReloadedPolicy() throws {
        let policy = SharedPolicy(.builtIn)
        let log = CommandLog(
            flowID: FlowID(1), target: Endpoint(host: "db", port: 5432), bus: FlowBus(subscribers: []), policy: policy,
            gate: InterceptGate(bus: FlowBus(subscribers: []))
        )
        #expect(log.judge("SELECT pg_sleep(1)", kind: .sql).action == .allow)
        #expect(log.judge("SELECT pg_sleep(1)", kind: .sql).action == .allow, "the same text again, from the cache")
        let stricter = try Policy.parse(
            yaml: "rules:\n  - name: sleeps\n    risk: high\n    sql:\n      contains: [pg_sleep]\n", source: "test"
        )
        policy.replace(with: stricter)
        let judged = log.judge("SELECT pg_sleep(1)", kind: .sql)
        #expect(judged.action == .hold && judged.rule == "sleeps")
        // The same words as a shell line are judged as one.
        #expect(log.judge("SELECT pg_sleep(1)", kind: .shell).rule == nil)
    }

    /// Statements that differ only in numbers are judged once when no rule matches them; a statement a rule matches
    /// is judged on its own, so its reason quotes its own text.
    @Test func statementsOfOneShapeShareAJudgementThatMatchedNoRule() throws {
        let policy = SharedPolicy(.builtIn)
        let log = CommandLog(
            flowID: FlowID(1), target: Endpoint(host: "db", port: 5432), bus: FlowBus(subscribers: []), policy: policy,
            gate: InterceptGate(bus: FlowBus(subscribers: []))
        )
        #expect(log.judge("SELECT abalance FROM pgbench_accounts WHERE aid = 1", kind: .sql).rule == nil)
        #expect(log.judge("SELECT abalance FROM pgbench_accounts WHERE aid = 2", kind: .sql).rule == nil)
        let first = log.judge("UPDATE accounts SET balance = 5", kind: .sql)
        let second = log.judge("UPDATE accounts SET balance = 6", kind: .sql)
        #expect(first.rule == "update-without-where" && second.rule == "update-without-where")
        #expect(first.reason.contains("balance = 5") && second.reason.contains("balance = 6"), "\(first.reason) / \(second.reason)")
        // A policy that names a number-free word still sees every statement of a cached shape.
        let stricter = try Policy.parse(
            yaml: "rules:\n  - name: accounts\n    risk: high\n    sql:\n      contains: [pgbench_accounts]\n", source: "test"
        )
        policy.replace(with: stricter)
        #expect(log.judge("SELECT abalance FROM pgbench_accounts WHERE aid = 3", kind: .sql).rule == "accounts")
    }
}
