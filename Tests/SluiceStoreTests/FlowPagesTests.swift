import Foundation
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

/// The TUI's flow pages: keyset pagination by id, and the view filter translated to SQL, against a real store.
@Suite struct FlowPagesTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701)

    private func opened(_ id: Int64, _ kind: FlowKind, server: Endpoint) -> ProxyEvent {
        .flowOpened(
            FlowOpened(
                flowID: FlowID(id), kind: kind, listener: "test", client: Endpoint(host: "127.0.0.1", port: 40000 + Int(id)),
                server: server, time: start
            )
        )
    }

    private func closed(_ id: Int64, _ state: FlowState = .closed) -> ProxyEvent {
        .flowClosed(FlowClosed(flowID: FlowID(id), time: start, bytesUp: 1, bytesDown: 1, state: state, error: nil, payloadTruncated: false))
    }

    private func request(_ id: Int64, _ method: String) -> ProxyEvent {
        .httpRequest(
            HTTPRequestStarted(flowID: FlowID(id), time: start, method: method, url: "http://example.com/\(id)", version: "HTTP/1.1", headers: [])
        )
    }

    /// 1 tcp :7000; 2 http GET → 200; 3 http POST, no response; 4 tcp [::1]:5432, error; 5 ssh, a high-risk command;
    /// 6 tcp :5432, marked; then 200 more tcp flows (7...206) for paging.
    private func populatedStore() throws -> (Store, () -> Void) {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-pages-test-\(UUID().uuidString)")
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        var events: [ProxyEvent] = [
            opened(1, .tcp, server: Endpoint(host: "10.0.0.5", port: 7000)),
            .message(Message(flowID: FlowID(1), sequence: 0, direction: .up, time: start, size: 4, payload: Data("ping".utf8))),
            .message(Message(flowID: FlowID(1), sequence: 1, direction: .down, time: start, size: 4, payload: Data("PONG".utf8))),
            closed(1),
            opened(2, .http, server: Endpoint(host: "10.0.0.5", port: 80)), request(2, "GET"),
            .httpResponse(
                HTTPResponseStarted(flowID: FlowID(2), time: start, status: 200, reason: "OK", version: "HTTP/1.1", headers: [], timings: HTTPTimings())
            ),
            opened(3, .http, server: Endpoint(host: "10.0.0.5", port: 80)), request(3, "POST"),
            opened(4, .tcp, server: Endpoint(host: "::1", port: 5432)), closed(4, .error),
            opened(5, .ssh, server: Endpoint(host: "10.0.0.7", port: 22)),
            .command(
                Command(
                    flowID: FlowID(5), index: 0, time: start, kind: .shell, text: "reboot", user: "alice", target: "10.0.0.7:22",
                    risk: .high, action: .alert, rule: "power", decision: .allowed, decidedBy: .policy
                )
            ),
            opened(6, .tcp, server: Endpoint(host: "10.0.0.5", port: 5432)),
        ]
        events += (7...206).map { opened($0, .tcp, server: Endpoint(host: "10.0.0.9", port: 9000)) }
        for event in events { writer.receive(event) }
        writer.setMarked(true, flow: FlowID(6))
        writer.close()
        let store = try Store(directory: directory)
        return (store, { try? FileManager.default.removeItem(atPath: directory.path) })
    }

    /// The ids among the first six that `text`'s SQL condition lets through.
    private func listed(_ store: Store, _ text: String, marked: Set<FlowID> = [], unmarked: Set<FlowID> = [], held: Set<FlowID> = []) throws -> [Int64] {
        let query = FlowQuery(shape: try Filter(text).shape, marked: marked, unmarked: unmarked, held: held)
        return try store.flowPage(ids: 1...6, where: query, newestFirst: false, limit: 100).map(\.id.rawValue)
    }

    @Test func pagesFollowTheKeyNotAnOffset() throws {
        let (store, cleanup) = try populatedStore()
        defer { cleanup() }
        #expect(try store.flowIDRange() == 1...206)
        let newest = try store.flowPage(ids: 1...206, where: FlowQuery(), newestFirst: true, limit: 10)
        #expect(newest.map(\.id.rawValue) == Array((197...206).reversed()))
        // The next page: below the last id seen.
        let next = try store.flowPage(ids: 1...196, where: FlowQuery(), newestFirst: true, limit: 10)
        #expect(next.map(\.id.rawValue) == Array((187...196).reversed()))
        let oldest = try store.flowPage(ids: 0...206, where: FlowQuery(), newestFirst: false, limit: 3)
        #expect(oldest.map(\.id.rawValue) == [1, 2, 3])
        #expect(oldest[1].http?.status == 200)
        let ssh = try store.flowPage(ids: 5...5, where: FlowQuery(), newestFirst: false, limit: 1)
        #expect(ssh.first?.commands == [StoredFlow.CommandNote(text: "reboot", risk: .high)], "a page carries its commands")
        #expect(try store.countFlows(where: FlowQuery(), through: 206) == 206)
        #expect(try store.countFlows(where: FlowQuery(after: FlowID(200)), through: 206) == 6, "z")
    }

    @Test func exactTermsAreDecidedInSQL() throws {
        let (store, cleanup) = try populatedStore()
        defer { cleanup() }
        #expect(try listed(store, "~k tcp") == [1, 4, 6])
        #expect(try listed(store, "~http") == [2, 3])
        #expect(try listed(store, "~c 200") == [2])
        #expect(try listed(store, "!~c 200") == [1, 3, 4, 5, 6], "a flow without a response is not 200: NULL must not hide it")
        #expect(try listed(store, "~q") == [3])
        #expect(try listed(store, "~s") == [2])
        #expect(try listed(store, "~e") == [4])
        #expect(try listed(store, "~risk medium") == [5])
        #expect(try listed(store, "~risk critical").isEmpty)
        #expect(try listed(store, "~k ssh | ~e") == [4, 5])
        #expect(try listed(store, "~tcp & !(~e | ~marked)") == [1])
        #expect(try listed(store, "~udp").isEmpty)
        #expect(try listed(store, "~marked") == [6])
        #expect(try listed(store, "~marked", marked: [FlowID(1)], unmarked: [FlowID(6)]) == [1], "this session's marks win")
        #expect(try listed(store, "~held", held: [FlowID(3)]) == [3])
        for text in ["~k tcp", "!~c 200", "~risk high | ~held", "~marked"] {
            #expect(FlowQuery(shape: try Filter(text).shape).isExact, "\(text)")
        }
        #expect(try store.countFlows(where: FlowQuery(shape: try Filter("~k tcp").shape), through: 206) == 203)
    }

    /// What SQL cannot decide it only narrows: every flow the filter matches gets through, and the caller checks.
    @Test func otherTermsOnlyNarrow() throws {
        let (store, cleanup) = try populatedStore()
        defer { cleanup() }
        #expect(try listed(store, "~dst :5432") == [4, 6], "an IPv6 server is matched without its brackets")
        #expect(try listed(store, "~dst '1:5432'") == [4])
        #expect(try listed(store, "~m post") == [3], "ASCII case aside")
        #expect(try listed(store, "~dst ':5432$'") == [1, 2, 3, 4, 5, 6], "a regular expression: every row, checked after")
        #expect(try listed(store, "!~dst :5432") == [1, 2, 3, 4, 5, 6], "under a not, a narrowing term says nothing")
        #expect(try listed(store, "~k tcp & ~b 'hell.'") == [1, 4, 6])
        #expect(try listed(store, "~k tcp | ~b 'hell.'") == [1, 2, 3, 4, 5, 6])
        #expect(try listed(store, "~b PING") == [1], "the first bytes either way, ASCII case aside")
        #expect(try listed(store, "~bq pong").isEmpty && listed(store, "~bs pong") == [1])
        #expect(try listed(store, "~dst \"it's\"").isEmpty, "quotes in a literal are SQL-quoted")
        for text in ["~dst :5432", "~b x", "~b 'a.b'", "!~u /a", "word"] {
            #expect(!FlowQuery(shape: try Filter(text).shape).isExact, "\(text)")
        }
    }
}
