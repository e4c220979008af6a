import Foundation
import GRDB
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

/// Sessions and alert acknowledgements through the real writer (`perform`), read back with the queries the control
/// API uses; and the migrations that add them to a store written before them.
@Suite struct StoreSessionsTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701.5)

    private func temporaryDirectory() -> DataDirectory {
        DataDirectory(path: NSTemporaryDirectory() + "sluice-sessions-test-\(UUID().uuidString)")
    }

    private func opened(_ id: Int64, session: SessionID?) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: .ssh, listener: "ssh://127.0.0.1:10000=>10.0.0.7:22",
                client: Endpoint(host: "127.0.0.1", port: 50000 + Int(id)), server: Endpoint(host: "10.0.0.7", port: 22), time: start,
                session: session
            )
        )
    }

    private func command(_ flow: Int64, _ index: Int64, _ text: String, _ risk: RiskLevel) -> ProxyEvent {
        .command(
            Command(
                flowID: FlowID(flow), index: index, time: start.addingTimeInterval(Double(index)), kind: .shell, text: text, user: "alice",
                target: "10.0.0.7:22", risk: risk, action: .allow, rule: nil, decision: .allowed, decidedBy: .policy
            )
        )
    }

    private func alert(_ flow: Int64, _ level: RiskLevel, _ message: String) -> ProxyEvent {
        .alert(Alert(flowID: FlowID(flow), commandIndex: 0, time: start, level: level, rule: "r", message: message))
    }

    @Test func aSessionsFlowsAndCommandsAreFoundByItAlsoAfterARestart() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        var writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let alice = try writer.openSession(user: "alice", resource: "db-prod")
        let bob = try writer.openSession(user: "bob", resource: "web")
        #expect(alice.id == SessionID(1) && bob.id == SessionID(2))
        #expect((alice.user, alice.resource, alice.state, alice.endedAt) == ("alice", "db-prod", .open, nil))
        for event in [
            opened(1, session: alice.id), opened(2, session: bob.id), opened(3, session: nil),
            command(1, 0, "ls", .low), command(1, 1, "sudo reboot", .high), command(2, 0, "whoami", .low), command(3, 0, "id", .low),
        ] {
            writer.receive(event)
        }
        // Work waits for the events received before it: the flows are there when the session ends.
        let ended = try #require(try writer.endSession(alice.id))
        #expect(ended.state == .ended && ended.endedAt != nil)
        #expect(try writer.endSession(alice.id)?.endedAt == ended.endedAt, "ending twice keeps the first end")
        #expect(try writer.endSession(SessionID(99)) == nil)
        writer.close()

        // A restart: bob's session was still open, so its proxies went with the recorder.
        writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        writer.close()
        let store = try Store(directory: directory)
        #expect(try store.sessions(limit: 10).map(\.state) == [.ended, .interrupted])
        #expect(try store.session(bob.id)?.state == .interrupted)
        #expect(try store.flows(limit: 10).map(\.session) == [alice.id, bob.id, nil])
        #expect(try store.flows(limit: 10, session: alice.id).map(\.id) == [FlowID(1)])
        #expect(try store.commands(session: alice.id, limit: 10).map(\.text) == ["ls", "sudo reboot"])
        #expect(try store.commands(session: alice.id, minimumRisk: .high, limit: 10).map(\.text) == ["sudo reboot"])
        #expect(try store.commands(session: bob.id, limit: 10).map(\.text) == ["whoami"])
        #expect(try store.activity(of: alice.id) == (flows: 1, commands: 2))
        let flow = try #require(try store.flow(FlowID(1)))
        #expect(StoredJSON.flow(flow).contains(#""session":1"#))
    }

    @Test func anAlertIsAcknowledgedOnceAndFilteredByIt() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for event in [opened(1, session: nil), alert(1, .high, "first"), alert(1, .critical, "second"), alert(1, .medium, "third")] {
            writer.receive(event)
        }
        let first = try #require(try writer.acknowledgeAlert(1, by: "carol"))
        let acknowledgement = try #require(first.acknowledgement)
        #expect(acknowledgement.by == "carol")
        let again = try #require(try writer.acknowledgeAlert(1, by: "dave"))
        #expect(again.acknowledgement == acknowledgement, "acknowledging twice keeps the first")
        #expect(try writer.acknowledgeAlert(2, by: nil)?.acknowledgement?.by == nil)
        #expect(try writer.acknowledgeAlert(42, by: "carol") == nil)
        writer.close()

        let store = try Store(directory: directory)
        #expect(try store.alerts(acknowledged: true, limit: 10).map(\.message) == ["first", "second"])
        #expect(try store.alerts(acknowledged: false, limit: 10).map(\.message) == ["third"])
        #expect(try store.alerts(minimumLevel: .high, limit: 10).map(\.message) == ["first", "second"])
        #expect(try store.alerts(minimumLevel: .critical, acknowledged: true, limit: 10).map(\.message) == ["second"])
        let json = StoredJSON.alert(try #require(try store.alerts(limit: 10).first))
        #expect(json.contains(#""acknowledged":true"#) && json.contains(#""acknowledged_by":"carol""#))
        #expect(StoredJSON.alert(try #require(try store.alerts(limit: 10).last)).contains(#""acknowledged":false,"acknowledged_at":null"#))
    }

    @Test func aStoreFromBeforeSessionsIsMigratedAndItsFlowsHaveNone() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        try directory.prepareForWriting()
        let old = try DatabaseQueue(path: directory.databasePath)
        try Schema.migrator.migrate(old, upTo: "v8: the flow a replayed connection repeats")
        try old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO flows (id, kind, listener, client, server, started_at, state)
                    VALUES (1, 'tcp', 'tcp://:9000=>h:7000', '127.0.0.1:50001', '10.0.0.5:7000', 1796080701, 'closed');
                    INSERT INTO alerts (flow_id, at, level, rule, message) VALUES (1, 1796080701, 'high', 'r', 'old');
                    """
            )
        }
        try old.close()
        #expect(throws: StoreError.self, "read-only, an old store is not migrated") { try Store(directory: directory) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        #expect(try writer.acknowledgeAlert(1, by: "erin")?.acknowledgement?.by == "erin")
        let session = try writer.openSession(user: "alice", resource: "db")
        writer.receive(opened(2, session: session.id))
        writer.close()
        let store = try Store(directory: directory)
        #expect(try store.flows(limit: 10).map(\.session) == [nil, session.id])
        #expect(try store.alerts(limit: 10).map(\.acknowledgement?.by) == ["erin"])
    }

    @Test func anExportKeepsTheSessionsOfItsFlows() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let alice = try writer.openSession(user: "alice", resource: "db")
        let bob = try writer.openSession(user: "bob", resource: "web")
        writer.receive(opened(1, session: alice.id))
        writer.receive(opened(2, session: bob.id))
        writer.close()
        let file = NSTemporaryDirectory() + "sluice-export-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Store(directory: directory).export([FlowID(2)], to: file)
        let exported = try Store(file: file)
        #expect(try exported.sessions(limit: 10).map(\.user) == ["bob"])
        #expect(try exported.flows(limit: 10).map(\.session) == [bob.id])
    }

    @Test func workAfterCloseIsRefused() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        writer.close()
        #expect(throws: StoreError.self) { try writer.openSession(user: "alice", resource: "db") }
    }
}
