import SluiceModel

/// Which recorded flows to replay, as the operator writes them: `42`, `10-20` (inclusive) or a comma list mixing
/// both, `3,7-9`. Ids keep the order given; one named twice is replayed once.
public struct ReplaySelection: Sendable, Equatable {
    public private(set) var ids: [FlowID]

    /// More than this is almost certainly a typo (`1-1000000`), and each replay is a real request to a server.
    public static let maximumCount = 100_000

    public init(parsing text: String) throws(ReplaySelectionError) {
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else {
            throw ReplaySelectionError("empty selection: give a flow id, FROM-TO or ID,ID,…")
        }
        var ids: [FlowID] = []
        var seen: Set<FlowID> = []
        var count = 0
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let part = item.trimmingWhitespace
            guard !part.isEmpty else { throw ReplaySelectionError("empty item in '\(trimmed.prefix(100))'") }
            let (from, to) = try Self.range(part)
            // Counted before anything is allocated, so `1-9999999999` is refused at once.
            guard to - from + 1 <= Int64(Self.maximumCount - count) else {
                throw ReplaySelectionError(
                    "selection covers more than \(Self.maximumCount) flows; replay fewer at a time")
            }
            count += Int(to - from + 1)
            for raw in from...to where seen.insert(FlowID(raw)).inserted {
                ids.append(FlowID(raw))
            }
        }
        self.ids = ids
    }

    /// One item: `ID` or `FROM-TO`.
    private static func range(_ part: Substring) throws(ReplaySelectionError) -> (Int64, Int64) {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
        switch bounds.count {
        case 1:
            let id = try flowID(bounds[0], in: part)
            return (id, id)
        case 2:
            let from = try flowID(bounds[0], in: part)
            let to = try flowID(bounds[1], in: part)
            guard from <= to else { throw ReplaySelectionError("reversed range '\(part)': write \(to)-\(from)") }
            return (from, to)
        default:
            throw ReplaySelectionError("'\(part.prefix(40))' is not a flow id or a FROM-TO range")
        }
    }

    private static func flowID(_ text: Substring, in part: Substring) throws(ReplaySelectionError) -> Int64 {
        let digits = text.trimmingWhitespace
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ReplaySelectionError("'\(part.prefix(40))' is not a flow id or a FROM-TO range")
        }
        guard let value = Int64(digits) else {
            throw ReplaySelectionError("flow id '\(digits.prefix(40))' is too large")
        }
        guard value >= 1 else { throw ReplaySelectionError("flow ids start at 1, not \(value)") }
        return value
    }
}

/// One line saying what is wrong with a selection.
public struct ReplaySelectionError: Error, Equatable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}

extension StringProtocol {
    fileprivate var trimmingWhitespace: Substring {
        let text = Substring(self)
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
            let last = text.lastIndex(where: { !$0.isWhitespace })
        else { return text[text.endIndex...] }
        return text[first...last]
    }
}
