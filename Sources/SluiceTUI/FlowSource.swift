import Dispatch
import Foundation
import SluiceModel
import SluiceStore

/// Answers the flow list's one question of the store: "the listed flows before (or after) id K, at most N". It
/// reads by ranges of ids on the primary key (keyset pagination), lets SQL decide what it can of the filter
/// (`FlowQuery`) and checks the rest of it on each row read, in Swift (`ListFilter.shows`): a filter of regular
/// expressions reads rows in id order until enough match, a range at a time, so no read holds every row.
///
/// A read stops after about `timeBudget` even when it found fewer than N: its answer says how far it looked
/// (`reached`), and the window asks again from there. So a filter that matches one flow in a million scans in the
/// background in short steps, each superseded as soon as the filter or the place changes (`isCurrent`).
struct FlowSource: Sendable {
    let store: Store
    /// How long one read may take before it answers with what it found.
    let timeBudget: TimeInterval

    /// - Parameter timeBudget: a test that checks answers, not timing, lifts it.
    init(store: Store, timeBudget: TimeInterval = 0.15) {
        self.store = store
        self.timeBudget = timeBudget
    }

    enum Direction: Sendable {
        /// Lower ids than the cursor, newest first.
        case older
        /// Higher ids than the cursor, oldest first.
        case newer
    }

    struct Page: Sendable {
        /// The listed flows found, in id order (oldest first, whichever way the read went).
        var rows: [FlowRow]
        /// How far the read looked: every listed flow between the cursor and this id (inclusive) is in `rows`.
        var reached: Int64
        /// Nothing is stored beyond `reached`.
        var exhausted: Bool
        /// The highest id stored when the read began: a live flow above it was not in the store to be read.
        var storedThrough: Int64 = 0
    }

    /// Ids read by one SQL statement: bounds its time when SQL cannot decide the filter (every row is read) or
    /// decides that few match (SQL scans far for them).
    static let exactSpan: Int64 = 2_000_000
    static let checkedSpan: Int64 = 200_000
    static let checkedBatch = 256

    /// Reads listed flows beyond `cursor`. `also` narrows further (a search); `isCurrent` is asked between
    /// statements, and a read no longer wanted stops there.
    func page(
        _ direction: Direction, from cursor: Int64, limit: Int, rule: ListFilter, also: (@Sendable (FlowRow) -> Bool)? = nil,
        isCurrent: () -> Bool = { true }
    ) throws(StoreError) -> Page {
        let query = rule.query
        let checked = !query.isExact || also != nil
        let span = checked ? Self.checkedSpan : Self.exactSpan
        guard let stored = try store.flowIDRange() else {
            return Page(rows: [], reached: direction == .older ? 0 : .max, exhausted: true, storedThrough: 0)
        }
        let started = Date()
        var rows: [FlowRow] = []
        var next = cursor
        while rows.count < limit {
            let range: ClosedRange<Int64>
            switch direction {
            case .older:
                let high = min(next, stored.upperBound + 1) - 1
                guard high >= stored.lowerBound else { return Page(rows: rows.reversed(), reached: 0, exhausted: true, storedThrough: stored.upperBound) }
                range = max(stored.lowerBound, high - span + 1)...high
            case .newer:
                let low = max(next, stored.lowerBound - 1) + 1
                guard low <= stored.upperBound else { return Page(rows: rows, reached: .max, exhausted: true, storedThrough: stored.upperBound) }
                range = low...min(stored.upperBound, low + span - 1)
            }
            // Rows Swift checks are read a few hundred at a time, however few are still wanted.
            let batch = checked ? max(limit - rows.count, Self.checkedBatch) : limit - rows.count
            let flows = try store.flowPage(ids: range, where: query, newestFirst: direction == .older, limit: batch)
            var consumed: Int64?
            for flow in flows where rows.count < limit {
                let row = FlowRow(stored: flow)
                consumed = row.id.rawValue
                if !checked || (rule.shows(row) && also?(row) != false) { rows.append(row) }
            }
            if let consumed, rows.count == limit || flows.count == batch {
                next = consumed
            } else {
                next = direction == .older ? range.lowerBound : range.upperBound
            }
            if Date().timeIntervalSince(started) > timeBudget || !isCurrent() { break }
        }
        switch direction {
        case .older:
            let exhausted = next <= stored.lowerBound
            return Page(rows: rows.reversed(), reached: exhausted ? 0 : next, exhausted: exhausted, storedThrough: stored.upperBound)
        case .newer:
            let exhausted = next >= stored.upperBound
            return Page(rows: rows, reached: exhausted ? .max : next, exhausted: exhausted, storedThrough: stored.upperBound)
        }
    }

    /// A filter SQL cannot decide is counted exactly (every row SQL lets through checked) up to this many rows;
    /// beyond, the count says "at most".
    static let checkedCountLimit = 50_000

    /// How many flows the store holds, how many of them the rule lists (for a filter SQL cannot decide and that
    /// lets through many rows, how many at most: `isBound`), and the highest id counted.
    func count(_ rule: ListFilter) throws(StoreError) -> FlowCount {
        let through = try store.flowIDRange()?.upperBound ?? 0
        let total = try store.countFlows(where: FlowQuery(), through: through)
        let query = rule.query
        let listed = query == FlowQuery() ? total : try store.countFlows(where: query, through: through)
        guard !query.isExact, listed <= Self.checkedCountLimit else {
            return FlowCount(listed: listed, total: total, isBound: !query.isExact, through: through)
        }
        let checked = try ids(rule).filter { $0.rawValue <= through }.count
        return FlowCount(listed: checked, total: total, isBound: false, through: through)
    }

    /// Every listed flow's id, in order (what `w` saves), read a page at a time.
    func ids(_ rule: ListFilter, isCurrent: () -> Bool = { true }) throws(StoreError) -> [FlowID] {
        var ids: [FlowID] = []
        var cursor: Int64 = 0
        while isCurrent() {
            let page = try page(.newer, from: cursor, limit: 10_000, rule: rule)
            ids += page.rows.map(\.id)
            if page.exhausted { break }
            cursor = page.reached
        }
        return ids
    }
}

/// The status line's "listed / total flows": counted by SQL in the background, then kept up to date as flows open.
struct FlowCount: Sendable, Equatable {
    var listed: Int?
    var total: Int?
    /// `listed` is what SQL let through of a filter it cannot decide: at most this many.
    var isBound = false
    /// The store's flows up to this id were counted; live flows above it are counted as they open.
    var through: Int64 = 0

    var text: String {
        let listedText = listed.map { (isBound ? "≤" : "") + "\($0)" } ?? "…"
        return "\(listedText)/\(total.map(String.init) ?? "…")"
    }
}
