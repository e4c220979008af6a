import Foundation
import GRDB
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

/// The full-text index built from a store the real writer wrote, and searched as `sluice search` does.
@Suite struct SearchIndexTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701.5)

    private func temporaryDirectory() -> DataDirectory {
        DataDirectory(path: NSTemporaryDirectory() + "sluice-search-test-\(UUID().uuidString)")
    }

    private func opened(_ id: Int64, _ kind: FlowKind) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: kind, listener: "test", client: Endpoint(host: "127.0.0.1", port: 40000 + Int(id)),
                server: Endpoint(host: "10.0.0.5", port: 80), time: start
            )
        )
    }

    private func closed(_ id: Int64) -> ProxyEvent {
        .flowClosed(FlowClosed(flowID: FlowID(id), time: start, bytesUp: 1, bytesDown: 1, state: .closed, error: nil, payloadTruncated: false))
    }

    private func message(_ id: Int64, _ sequence: Int64, _ kind: MessageKind, _ payload: Data) -> ProxyEvent {
        .message(Message(flowID: FlowID(id), sequence: sequence, direction: .up, time: start, size: payload.count, payload: payload, kind: kind))
    }

    /// A store with an HTTP exchange, a text body, a binary body, a WebSocket message, a TCP chunk, an SQL command, an
    /// error, a PostgreSQL chunk (not indexed: its statements are) and an exchange still waiting for its response.
    private func recordedStore() throws -> DataDirectory {
        let directory = temporaryDirectory()
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        let events: [ProxyEvent] = [
            opened(1, .http),
            .httpRequest(
                HTTPRequestStarted(
                    flowID: FlowID(1), time: start, method: "POST", url: "http://shop.example.com/api/login", version: "HTTP/1.1",
                    headers: [HeaderField(name: "X-Tenant", value: "Acme-Corporation")]
                )
            ),
            .httpResponse(
                HTTPResponseStarted(
                    flowID: FlowID(1), time: start, status: 418, reason: "I'm a teapot", version: "HTTP/1.1",
                    headers: [HeaderField(name: "Set-Cookie", value: "session=Zanzibar")], timings: HTTPTimings()
                )
            ),
            message(1, 0, .body, Data(#"{"user": "Émilie", "password": "hunter2"}"#.utf8)),
            message(1, 1, .body, Data((0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 7) })),
            closed(1),
            opened(2, .websocket), message(2, 0, .text, Data("subscribe ticker QUUX".utf8)), closed(2),
            opened(3, .tcp), message(3, 0, .chunk, Data("HELO mail.relay.test\r\n".utf8)), closed(3),
            opened(4, .postgres),
            message(4, 0, .chunk, Data("Qselect secret_plan from vault\0".utf8)),
            .command(
                Command(
                    flowID: FlowID(4), index: 0, time: start, kind: .sql, text: "DELETE FROM invoices WHERE id = $1", user: "app",
                    target: "10.0.0.5:5432", risk: .high, action: .allow, rule: nil, decision: .allowed, decidedBy: .policy,
                    database: "billing", parameters: ["90210"]
                )
            ),
            .flowError(FlowError(flowID: FlowID(4), phase: .server, time: start, message: "connection reset by gremlins")),
            closed(4),
            opened(5, .http),
            .httpRequest(
                HTTPRequestStarted(
                    flowID: FlowID(5), time: Date(), method: "GET", url: "http://slow.example.com/longpoll", version: "HTTP/1.1",
                    headers: []
                )
            ),
        ]
        for event in events { writer.receive(event) }
        writer.close()
        return directory
    }

    private func search(_ index: SearchIndex, _ words: String...) throws -> [Int64] {
        try index.flows(matching: words, limit: 100).map(\.rawValue)
    }

    @Test func everyKindOfTextIsFoundByItsFlow() throws {
        let directory = try recordedStore()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let index = try SearchIndex(directory: directory, create: true)
        let indexer = try SearchIndexer(directory: directory, index: index)
        #expect(try indexer.catchUp() > 0)

        #expect(try search(index, "teapot") == [1], "a response's reason")
        #expect(try search(index, "zanzibar") == [1], "a response header, case aside")
        #expect(try search(index, "acme") == [1], "a request header, by its start")
        #expect(try search(index, "shop.example.com") == [1], "a URL as a phrase")
        #expect(try search(index, "emilie", "hunter") == [1], "a body, accents aside, every word in one piece")
        #expect(try search(index, "QUUX") == [2], "WebSocket text")
        #expect(try search(index, "mail.relay") == [3], "a TCP chunk")
        #expect(try search(index, "invoices", "90210") == [4], "a command and its parameters")
        #expect(try search(index, "gremlins") == [4], "a flow error")
        #expect(try search(index, "secret_plan").isEmpty, "a database's chunks are not indexed: its statements are")
        #expect(try search(index, "longpoll").isEmpty, "an exchange waits for its response (up to a minute)")
        #expect(try search(index, "teapot", "gremlins").isEmpty, "all words, in one piece")
        #expect(try indexer.catchUp() == 0, "what was indexed is not indexed again")
    }

    @Test func whatTheOperatorTypesIsNeverFTSSyntax() throws {
        let directory = try recordedStore()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let index = try SearchIndex(directory: directory, create: true)
        try SearchIndexer(directory: directory, index: index).catchUp()
        for words in [["teapot OR gremlins"], ["\"teapot"], ["NEAR(teapot"], ["a:b"], ["te\"apot"], ["^teapot"]] {
            _ = try index.flows(matching: words, limit: 10)
        }
        #expect(try search(index, "teapot OR gremlins").isEmpty, "OR is a word here")
        #expect(throws: StoreError.self) { try index.flows(matching: ["\"*\""], limit: 10) }
        #expect(try index.flows(matching: ["zanzibar"], limit: 10).count == 1)
    }

    @Test func theIndexIsPrivateAndLaterRecordsAreAddedOnTheirTurn() throws {
        let directory = try recordedStore()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let index = try SearchIndex(directory: directory, create: true)
        let indexer = try SearchIndexer(directory: directory, index: index, settings: SearchIndexer.Settings(batchSize: 2))
        try indexer.catchUp()
        let mode = try FileManager.default.attributesOfItem(atPath: index.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        writer.receive(opened(6, .tcp))
        writer.receive(message(6, 0, .chunk, Data("late arrival of the platypus".utf8)))
        writer.receive(closed(6))
        writer.close()
        #expect(try search(index, "platypus").isEmpty)
        try indexer.catchUp()
        #expect(try search(index, "platypus") == [6])
        #expect(try search(index, "teapot") == [1], "a batch of two at a time misses nothing")
    }

    @Test func textIsTextAndBinaryIsNot() {
        #expect(SearchText.of(Data("plain words\r\n\ttabbed".utf8), maxBytes: 100) == "plain words\r\n\ttabbed")
        #expect(SearchText.of(Data("\u{1B}[1mbold\u{1B}[0m prompt$ ".utf8), maxBytes: 100) != nil, "terminal output")
        #expect(SearchText.of(Data((0..<256).map { UInt8($0) }), maxBytes: 1000) == nil)
        #expect(SearchText.of(Data([0xFF, 0xFE, 0xFD, 0xC0, 0x80, 0x41, 0x42, 0x43]), maxBytes: 100) == nil, "not UTF-8")
        #expect(SearchText.of(Data("abcdef".utf8), maxBytes: 3) == "abc")
        #expect(SearchText.of(Data(), maxBytes: 3) == nil)
    }
}
