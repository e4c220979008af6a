import Foundation
import GRDB
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

/// Commands and alerts written as events through the real writer and read back with the queries the CLI and the
/// TUI use.
@Suite struct StoreCommandsTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701.5)

    private func temporaryDirectory() -> DataDirectory {
        DataDirectory(path: NSTemporaryDirectory() + "sluice-commands-test-\(UUID().uuidString)")
    }

    private func opened(_ id: Int64) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: .ssh, listener: "ssh://127.0.0.1:2222=>10.0.0.7:22",
                client: Endpoint(host: "127.0.0.1", port: 50000 + Int(id)), server: Endpoint(host: "10.0.0.7", port: 22),
                time: start
            )
        )
    }

    private func command(
        _ flow: Int64, _ index: Int64, _ text: String, _ risk: RiskLevel, _ action: PolicyAction, rule: String? = nil,
        kind: CommandKind = .shell, decision: CommandDecision = .allowed, decidedBy: Decider? = .policy
    ) -> ProxyEvent {
        .command(
            Command(
                flowID: FlowID(flow), index: index, time: start.addingTimeInterval(Double(flow * 10 + index)), kind: kind,
                text: text, user: "alice", target: "10.0.0.7:22", risk: risk, action: action, rule: rule, decision: decision,
                decidedBy: decidedBy
            )
        )
    }

    /// Two SSH sessions' commands, in the order: flow 1 #0, #1, flow 2 #0, flow 1 #2, flow 2 #1.
    private func populatedStore() throws -> (DataDirectory, Store) {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let events: [ProxyEvent] = [
            opened(1), opened(2),
            command(1, 0, "ls -la", .low, .allow),
            command(1, 1, "sudo -u root rm -rf /", .critical, .block, rule: "rm-root", decision: .blocked),
            .alert(
                Alert(
                    flowID: FlowID(1), commandIndex: 1, time: start.addingTimeInterval(11), level: .critical, rule: "rm-root",
                    message: "blocked: rm -rf / (rule rm-root)"
                )
            ),
            command(2, 0, "reboot", .high, .hold, rule: "shutdown", kind: .exec, decision: .pending, decidedBy: nil),
            command(1, 2, "sudo apt update", .medium, .alert, rule: "sudo"),
            .commandDecided(
                CommandDecided(flowID: FlowID(2), index: 0, time: start.addingTimeInterval(25), decision: .allowed, decidedBy: .operator)
            ),
            .commandFinished(
                CommandFinished(
                    flowID: FlowID(2), index: 0, time: start.addingTimeInterval(26), outcome: CommandOutcome(exitStatus: 0)
                )
            ),
            command(2, 1, "echo \u{1B}[2J\"rm -rf /\"", .low, .allow),
            .alert(Alert(flowID: nil, commandIndex: nil, time: start.addingTimeInterval(30), level: .high, rule: "store.on_full", message: "recording stopped for 3 s")),
        ]
        for event in events { writer.receive(event) }
        writer.close()
        return (directory, try Store(directory: directory))
    }

    @Test func commandsReadBackTypedWithTheirDecisionAndOutcome() throws {
        let (_, store) = try populatedStore()
        let all = try store.commands(limit: 100)
        #expect(all.map { "\($0.flowID)#\($0.index)" } == ["1#0", "1#1", "2#0", "1#2", "2#1"], "oldest first, in recorded order")
        #expect(all.map(\.id) == all.map(\.id).sorted())

        let blocked = all[1]
        #expect(blocked.text == "sudo -u root rm -rf /")
        #expect(blocked.kind == .shell && blocked.risk == .critical && blocked.action == .block)
        #expect(blocked.rule == "rm-root" && blocked.decision == .blocked && blocked.decidedBy == .policy)
        #expect(blocked.user == "alice" && blocked.target == "10.0.0.7:22")
        #expect(blocked.decidedAt == blocked.time)
        #expect(blocked.outcome == nil && blocked.finishedAt == nil)

        let held = all[2]
        #expect(held.kind == .exec && held.action == .hold)
        #expect(held.decision == .allowed && held.decidedBy == .operator, "the later decision is in the row")
        #expect(held.decidedAt == start.addingTimeInterval(25))
        #expect(held.outcome == CommandOutcome(exitStatus: 0))
        #expect(held.finishedAt == start.addingTimeInterval(26))
        #expect(held.command.decision == .allowed)

        #expect(all[0].rule == nil)
        #expect(all[4].text == "echo \u{1B}[2J\"rm -rf /\"", "the text as recorded; the CLI makes it visible")
    }

    @Test func anSQLStatementKeepsItsDatabaseAndParameters() throws {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        writer.receive(opened(1))
        writer.receive(
            .command(
                Command(
                    flowID: FlowID(1), index: 0, time: start, kind: .sql, text: "SELECT * FROM t WHERE id = $1 AND name = $2",
                    user: "app", target: "db:5432", risk: .low, action: .allow, rule: nil, decision: .allowed, decidedBy: .policy,
                    database: "shop", parameters: ["42", "O'Brien \"quoted\"\n"]
                )
            )
        )
        writer.receive(.command(Command(
            flowID: FlowID(1), index: 1, time: start, kind: .sql, text: "SELECT 1", user: "app", target: "db:5432", risk: .low,
            action: .allow, rule: nil, decision: .allowed, decidedBy: .policy
        )))
        writer.close()
        let commands = try Store(directory: directory).commands(limit: 10)
        #expect(commands.first?.database == "shop")
        #expect(commands.first?.parameters == ["42", "O'Brien \"quoted\"\n"])
        #expect(commands.last?.database == nil && commands.last?.parameters == nil)
    }

    @Test func commandsFilterByFlowRiskAndPageBackwards() throws {
        let (_, store) = try populatedStore()
        #expect(try store.commands(flow: FlowID(1), limit: 100).map(\.index) == [0, 1, 2])
        #expect(try store.commands(flow: FlowID(3), limit: 100).isEmpty)
        #expect(try store.commands(minimumRisk: .high, limit: 100).map(\.text) == ["sudo -u root rm -rf /", "reboot"])
        #expect(try store.commands(minimumRisk: .medium, limit: 100).map(\.risk) == [.critical, .high, .medium])
        #expect(try store.commands(minimumRisk: .low, limit: 100).count == 5)
        #expect(try store.commands(minimumRisk: .critical, limit: 100).count == 1)
        #expect(try store.commands(flow: FlowID(1), minimumRisk: .medium, limit: 100).map(\.index) == [1, 2])

        let newest = try store.commands(limit: 2)
        #expect(newest.map(\.text) == ["sudo apt update", "echo \u{1B}[2J\"rm -rf /\""], "the newest, oldest first")
        let page = try store.commands(limit: 2, before: newest[0].id)
        #expect(page.map(\.text) == ["sudo -u root rm -rf /", "reboot"])
        let last = try store.commands(limit: 2, before: page[0].id)
        #expect(last.map(\.text) == ["ls -la"])
        #expect(try store.commands(limit: 2, before: last[0].id).isEmpty)
        #expect(try store.commands(limit: 0).isEmpty)
    }

    @Test func alertsReadBackWithAndWithoutAFlow() throws {
        let (_, store) = try populatedStore()
        let alerts = try store.alerts(limit: 10)
        #expect(alerts.count == 2)
        #expect(alerts[0].flowID == FlowID(1) && alerts[0].commandIndex == 1)
        #expect(alerts[0].level == .critical && alerts[0].rule == "rm-root")
        #expect(alerts[0].message == "blocked: rm -rf / (rule rm-root)")
        #expect(alerts[0].alert.time == start.addingTimeInterval(11))
        #expect(alerts[1].flowID == nil && alerts[1].commandIndex == nil && alerts[1].rule == "store.on_full")
        #expect(try store.alerts(limit: 1).map(\.rule) == ["store.on_full"])
        #expect(try store.alerts(limit: 5, before: alerts[1].id).map(\.rule) == ["rm-root"])
        #expect(try store.alerts(flow: FlowID(1), limit: 5).count == 1)
    }

    @Test func anUnknownNameInATypedColumnIsADamagedStoreNotACrash() throws {
        let (directory, _) = try populatedStore()
        let queue = try DatabaseQueue(path: directory.databasePath)
        try queue.write { db in try db.execute(sql: "UPDATE commands SET risk = 'apocalyptic' WHERE idx = 0 AND flow_id = 1") }
        let store = try Store(directory: directory)
        #expect(throws: StoreError.self) { try store.commands(limit: 10) }
        #expect(try store.commands(minimumRisk: .medium, limit: 10).count == 3, "rows that are sound still read")
        do {
            _ = try store.commands(limit: 10)
        } catch {
            #expect("\(error)".contains("risk") && "\(error)".contains("apocalyptic"))
        }
    }
}
