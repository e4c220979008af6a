import Foundation
import Logging
import SluiceModel
import SluiceStore
import Testing

@testable import SluiceTUI

/// The flow list's window (a few screens of rows around the selection) and the source that fills it from the store.
@Suite struct FlowWindowTests {
    private static let time = Date(timeIntervalSince1970: 1_796_080_701)

    private func opened(_ id: Int64, port: Int = 7000) -> FlowOpened {
        FlowOpened(
            flowID: FlowID(id), kind: .tcp, listener: "test", client: Endpoint(host: "127.0.0.1", port: 40000),
            server: Endpoint(host: "10.0.0.5", port: port), time: Self.time
        )
    }

    private func rows(_ ids: ClosedRange<Int64>) -> [FlowRow] {
        ids.map { FlowRow(opened: opened($0)) }
    }

    @Test func movesReachForTheNextPageAndCarryOnWhenItComes() {
        var window = FlowWindow()
        window.replace(rows(501...1000), low: 501, high: 1000, reachesStart: false, reachesEnd: true, selecting: nil)
        #expect(window.selectedRow?.id == FlowID(1000))
        #expect(!window.wantsOlder && !window.wantsNewer)
        window.move(-400)
        #expect(window.wantsOlder, "the selection is near an end that is not the list's")
        #expect(!window.follow)
        // A move past the rows loaded stops at the first and goes on when the older page arrives.
        window.move(-150)
        #expect(window.selectedRow?.id == FlowID(501))
        window.prepend(rows(1...500), low: 1, reachesStart: true)
        #expect(window.selectedRow?.id == FlowID(450), "the rest of the move: 51 rows further")
        #expect(!window.wantsOlder, "nothing older is listed")
        window.move(Int.min / 2)
        #expect(window.selectedRow?.id == FlowID(1))
    }

    @Test func theWindowKeepsAtMostItsCapacityAndItsPromise() {
        var window = FlowWindow()
        let capacity = Int64(FlowWindow.capacity)
        window.replace(rows(1...capacity), low: 1, high: capacity, reachesStart: true, reachesEnd: false, selecting: FlowID(capacity))
        window.append(rows((capacity + 1)...(capacity + 500)), high: capacity + 500, reachesEnd: true)
        #expect(window.rows.count == FlowWindow.capacity)
        #expect(window.rows.first?.id == FlowID(501) && window.low == 501 && !window.reachesStart, "dropped from the far end")
        #expect(window.selectedRow?.id == FlowID(capacity), "the selection stays on its row")

        // Going back up, the other end is dropped.
        window.prepend(rows(1...500), low: 1, reachesStart: true)
        #expect(window.rows.count == FlowWindow.capacity)
        #expect(window.high == capacity && !window.reachesEnd)
        #expect(window.selectedRow?.id == FlowID(capacity))
    }

    @Test func liveFlowsJoinAtTheEndAndFollowModeSelectsThem() {
        var window = FlowWindow()
        window.replace(rows(1...10), low: 0, high: 10, reachesStart: true, reachesEnd: true, selecting: nil)
        window.arrive(FlowRow(opened: opened(11)), listed: true)
        window.arrive(FlowRow(opened: opened(12)), listed: false)
        #expect(window.rows.map(\.id.rawValue) == Array(1...11))
        #expect(window.selectedRow?.id == FlowID(11) && window.high == 12)
        window.move(-1)
        window.arrive(FlowRow(opened: opened(13)), listed: true)
        #expect(window.selectedRow?.id == FlowID(10), "not following: the selection stays")

        // A row whose filter answer changes is listed or unlisted in place.
        window.recheck(FlowRow(opened: opened(12)), listed: true)
        #expect(window.rows.map(\.id.rawValue) == Array(1...13))
        #expect(window.selectedRow?.id == FlowID(10))
        window.recheck(FlowRow(opened: opened(5)), listed: false)
        #expect(window.selectedRow?.id == FlowID(10) && window.rows.count == 12)

        // A window that does not show the end leaves new flows to the store.
        var middle = FlowWindow()
        middle.replace(rows(1...10), low: 0, high: 10, reachesStart: true, reachesEnd: false, selecting: FlowID(5))
        middle.arrive(FlowRow(opened: opened(11)), listed: true)
        #expect(middle.rows.count == 10)
    }

    @Test func liveFlowsKeepTheNewestOnly() {
        var live = LiveFlows()
        for id in 1...Int64(LiveFlows.capacity + LiveFlows.capacity / 8 + 1) { live.add(FlowRow(opened: opened(id))) }
        #expect(live.rows.count == LiveFlows.capacity)
        #expect(live.newest == FlowID(Int64(LiveFlows.capacity + LiveFlows.capacity / 8 + 1)))
        #expect(live[FlowID(1)] == nil)
        #expect(live.rows(in: 0...(Int64(LiveFlows.capacity / 8) + 5)).map(\.id.rawValue) == Array((Int64(LiveFlows.capacity / 8) + 2)...(Int64(LiveFlows.capacity / 8) + 5)))
        let addedAgain = live.add(FlowRow(opened: opened(Int64(LiveFlows.capacity))))
        #expect(!addedAgain, "a flow is added once")
    }

    /// A store of `count` flows, every third to port 5432, each saying `hello N`.
    private func store(_ count: Int) throws -> (Store, () -> Void) {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-window-test-\(UUID().uuidString)")
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        for id in 1...Int64(count) {
            writer.receive(.flowOpened(opened(id, port: id % 3 == 0 ? 5432 : 7000)))
            writer.receive(
                .message(Message(flowID: FlowID(id), sequence: 0, direction: .up, time: Self.time, size: 9, payload: Data("hello \(id)".utf8)))
            )
        }
        writer.close()
        return (try Store(directory: directory), { try? FileManager.default.removeItem(atPath: directory.path) })
    }

    @Test func theSourceReadsPagesByKeyAndChecksWhatSQLCannot() throws {
        let (store, cleanup) = try store(3_000)
        defer { cleanup() }
        // No time budget: under a loaded machine a read could stop early, and this test checks answers.
        let source = FlowSource(store: store, timeBudget: .infinity)
        let all = ListFilter()
        let newest = try source.page(.older, from: .max, limit: 100, rule: all)
        #expect(newest.rows.map(\.id.rawValue) == Array(2_901...3_000), "oldest first, whichever way it read")
        #expect(newest.reached == 2_901 && !newest.exhausted && newest.storedThrough == 3_000)
        let next = try source.page(.older, from: newest.reached, limit: 100, rule: all)
        #expect(next.rows.first?.id == FlowID(2_801) && next.rows.last?.id == FlowID(2_900))
        let start = try source.page(.newer, from: 0, limit: 5_000, rule: all)
        #expect(start.rows.count == 3_000 && start.exhausted)
        #expect(String(decoding: start.rows[41].previewUp, as: UTF8.self) == "hello 42")

        // SQL narrows to port 5432; Swift checks the payload.
        let rule = ListFilter(filter: try Filter("~dst :5432 & ~b 'hello 29[0-9][0-9]'"))
        #expect(!rule.query.isExact)
        let matched = try source.page(.older, from: .max, limit: 10, rule: rule)
        #expect(matched.rows.map(\.id.rawValue) == Array(stride(from: 2_970, through: 2_997, by: 3)))
        #expect(!matched.exhausted && matched.reached == 2_970)
        #expect(try source.ids(rule).map(\.rawValue) == Array(stride(from: 2_901, through: 2_997, by: 3)))
        let none = try source.page(.older, from: 2_901, limit: 10, rule: rule)
        #expect(none.rows.isEmpty && none.exhausted, "read on to the start, nothing more")

        let counted = try source.count(rule)
        #expect(counted.total == 3_000 && counted.listed == 33 && !counted.isBound && counted.through == 3_000, "a few: checked")
        let clear = ListFilter(clearedThrough: FlowID(2_990))
        #expect(try source.count(clear).listed == 10)
        #expect(try source.page(.newer, from: 0, limit: 100, rule: clear).rows.map(\.id.rawValue) == Array(2_991...3_000))
    }
}
