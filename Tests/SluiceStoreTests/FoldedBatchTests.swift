import Foundation
import GRDB
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

@Suite struct FoldedBatchTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701.25)

    private func opened(_ id: Int64) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: .http, listener: "http://127.0.0.1:8080", client: Endpoint(host: "127.0.0.1", port: 40000),
                server: Endpoint(host: "example.test", port: 80), time: start
            )
        )
    }

    private func closed(_ id: Int64, error: String? = nil) -> ProxyEvent {
        .flowClosed(
            FlowClosed(
                flowID: FlowID(id), time: start.addingTimeInterval(0.5), bytesUp: 3, bytesDown: 7 * id,
                state: error == nil ? .closed : .error, error: error, payloadTruncated: id == 2
            )
        )
    }

    private func request(_ id: Int64, replayOf: Int64? = nil) -> ProxyEvent {
        .httpRequest(
            HTTPRequestStarted(
                flowID: FlowID(id), time: start, method: "POST", url: "http://example.test/\(id)?q=\"x\"", version: "HTTP/1.1",
                headers: [HeaderField(name: "Host", value: "example.test"), HeaderField(name: "X-Quote", value: "a \"b\"\n")],
                replayOf: replayOf.map { FlowID($0) }
            )
        )
    }

    private func response(_ id: Int64, synthetic: Bool = false) -> ProxyEvent {
        .httpResponse(
            HTTPResponseStarted(
                flowID: FlowID(id), time: start.addingTimeInterval(0.25), status: 200 + Int(id), reason: "OK", version: "HTTP/1.1",
                headers: [HeaderField(name: "Content-Length", value: "7")],
                timings: HTTPTimings(connect: id == 1 ? 0.5 : nil, tls: nil, firstByte: 1.25), synthetic: synthetic
            )
        )
    }

    private func message(_ id: Int64, _ sequence: Int64, _ text: String, direction: Direction = .down) -> ProxyEvent {
        .message(
            Message(
                flowID: FlowID(id), sequence: sequence, direction: direction, time: start, size: text.utf8.count,
                payload: Data(text.utf8), kind: .body
            )
        )
    }

    /// Two exchanges interleaved, one with an error, a replay, a hold; plus a flow that stays open.
    private var events: [ProxyEvent] {
        [
            opened(1), request(1), opened(2), request(2, replayOf: 1), message(1, 0, "up", direction: .up),
            .messageHeld(
                HeldMessage(
                    id: 1, flowID: FlowID(1), sequence: 0, direction: .up, payload: Data("up".utf8), heldAt: start,
                    deadline: start.addingTimeInterval(60)
                )
            ),
            .messageReleased(
                MessageReleased(flowID: FlowID(1), holdID: 1, sequence: 0, time: start, verdict: .forward(edited: nil), decidedBy: .operator)
            ),
            response(1), message(1, 1, "a body"), response(2, synthetic: true), message(2, 0, "Sluice: refused"),
            .flowError(FlowError(flowID: FlowID(2), phase: .client, time: start, message: "refused")),
            closed(1), closed(2, error: "client: refused"), opened(3), request(3),
            command(3, 0, decision: .pending),
            .commandDecided(CommandDecided(flowID: FlowID(3), index: 0, time: start, decision: .allowed, decidedBy: .operator)),
            .commandFinished(CommandFinished(flowID: FlowID(3), index: 0, time: start.addingTimeInterval(0.125), outcome: CommandOutcome(result: "SELECT 2"))),
            command(3, 1, decision: .allowed),
        ]
    }

    private func command(_ id: Int64, _ index: Int64, decision: CommandDecision) -> ProxyEvent {
        .command(
            Command(
                flowID: FlowID(id), index: index, time: start, kind: .sql, text: "SELECT $1", user: "app", target: "db:5432",
                risk: .low, action: decision == .pending ? .hold : .allow, rule: nil, decision: decision,
                decidedBy: decision == .pending ? nil : .policy, database: "shop", parameters: ["1"]
            )
        )
    }

    @Test func opensAndClosesRequestsAndResponsesFoldIntoOneRowEach() {
        let folded = FoldedBatch(events[...])
        #expect(
            folded.writes == [
                .flow(opened: 0, closed: 12), .flow(opened: 2, closed: 13), .flow(opened: 14, closed: nil),
                .exchange(request: 1, response: 7), .exchange(request: 3, response: 9), .exchange(request: 15, response: nil),
                .event(4), .event(5), .event(6), .event(8), .event(10), .event(11),
                .command(16, finished: 18), .event(17), .command(19, finished: nil),
            ]
        )
    }

    @Test func everyEventIsWrittenExactlyOnceAlsoWhenAFlowRepeats() {
        // The engine never opens a flow twice; were it to, the later events are written in order after the first row.
        let batch = [opened(1), closed(1), opened(1), request(1), request(1), response(1), closed(1)]
        let folded = FoldedBatch(batch[...])
        #expect(
            folded.writes == [
                .flow(opened: 0, closed: 1), .exchange(request: 3, response: nil), .event(2), .event(4), .event(5), .event(6),
            ]
        )
    }

    @Test func aSliceIsFoldedWithItsOwnIndices() {
        // The writer folds slices of what it took from the queue, and indexes the events through the slice.
        let taken = [opened(1), closed(1), opened(2), request(2), response(2), closed(2)]
        let folded = FoldedBatch(taken[2...])
        #expect(folded.writes == [.flow(opened: 2, closed: 5), .exchange(request: 3, response: 4)])
    }

    /// The rows a store holds, as text, table by table.
    private func rows(in directory: DataDirectory) throws -> [String] {
        let queue = try DatabaseQueue(path: directory.databasePath)
        return try queue.read { db in
            try ["flows", "http", "messages", "errors", "commands"].flatMap { table in
                try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY rowid").map { "\(table) \($0)" }
            }
        }
    }

    @Test func foldedBatchesLeaveTheRowsThatWritingEachEventInTurnWould() throws {
        var stores: [[String]] = []
        // One event per batch is the unfolded order; the others fold wherever their batches happen to split (17:
        // the last three of the twenty join the first batch rather than being committed on their own).
        let batchSizes = [1, 2, 3, 5, 17, 1000]
        for batchSize in batchSizes {
            let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-fold-test-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(atPath: directory.path) }
            let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"), batchSize: batchSize)
            for event in events { writer.receive(event) }
            writer.close()
            stores.append(try rows(in: directory))
        }
        #expect(stores[0].count == 3 + 3 + 3 + 1 + 2)
        #expect(stores[0].contains { $0.hasPrefix("commands") && $0.contains("result:\"SELECT 2\"") && $0.contains("decided_by:\"operator\"") })
        #expect(stores[0].contains { $0.hasPrefix("flows") && $0.contains("state:\"open\"") })
        #expect(stores[0].contains { $0.contains("disposition:\"forwarded\"") })
        for (index, store) in stores.enumerated().dropFirst() {
            #expect(store == stores[0], "batches of \(batchSizes[index]) events")
        }
    }
}
