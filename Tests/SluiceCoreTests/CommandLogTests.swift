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
}
