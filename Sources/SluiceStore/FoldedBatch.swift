import SluiceModel

/// A batch of events in the order the writer writes their rows, with each flow's open and close, each HTTP
/// exchange's request and response, and each command and its outcome, folded into one row when both are in the
/// batch.
///
/// A short exchange makes five events (open, request, body, response, close). Written one by one that is two rows
/// inserted and then updated; folded, the `flows` and `http` rows are each inserted once, complete, which is most
/// of what the writer saves. Rows that others refer to come first: every flow opened in the batch, then every
/// exchange, then everything else in its order (messages, errors, holds, and the closes and responses of flows
/// opened in an earlier batch, which stay updates). A command is written where it comes among the rest, with its
/// outcome when that is in the batch (an SQL statement's reply usually is: a database session makes a command and
/// its outcome per statement). The resulting rows are the ones writing each event in turn would leave.
struct FoldedBatch {
    enum Write: Equatable {
        /// `flows` row of the `opened` event, complete with the `closed` one when that is in the batch too.
        case flow(opened: Int, closed: Int?)
        /// `http` row of the `request` event, complete with the `response` when that is in the batch too.
        case exchange(request: Int, response: Int?)
        /// `commands` row of the `command` event, with the outcome of the `finished` one when that is in the batch.
        case command(Int, finished: Int?)
        /// Any other event, written on its own.
        case event(Int)
    }

    /// Indices into the batch, in writing order; every event appears exactly once.
    let writes: [Write]

    /// The indices are the slice's own: they start where the slice does (the writer folds slices of what it took).
    init(_ batch: ArraySlice<ProxyEvent>) {
        var flows = Folds<FlowID>()
        var exchanges = Folds<FlowID>()
        var commands = Folds<CommandKey>()
        var others: [Write] = []
        /// Where each command's row is among `others`, to add its outcome.
        var commandSlots: [Int: Int] = [:]
        for index in batch.indices {
            let folded: Bool
            switch batch[index] {
            case .flowOpened(let opened): folded = flows.start(opened.flowID, at: index)
            case .flowClosed(let closed): folded = flows.end(closed.flowID, at: index)
            case .httpRequest(let request): folded = exchanges.start(request.flowID, at: index)
            case .httpResponse(let response): folded = exchanges.end(response.flowID, at: index)
            case .command(let command):
                if commands.start(CommandKey(flowID: command.flowID, index: command.index), at: index) {
                    commandSlots[index] = others.count
                    others.append(.command(index, finished: nil))
                    continue
                }
                folded = false
            case .commandFinished(let finished):
                let key = CommandKey(flowID: finished.flowID, index: finished.index)
                if let start = commands.startIndex(of: key), commands.end(key, at: index), let slot = commandSlots[start] {
                    others[slot] = .command(start, finished: index)
                    continue
                }
                folded = false
            case .message, .flowError, .messageHeld, .messageReleased, .commandDecided, .alert:
                folded = false
            }
            if !folded { others.append(.event(index)) }
        }
        writes =
            flows.rows.map { .flow(opened: $0.start, closed: $0.end) }
            + exchanges.rows.map { .exchange(request: $0.start, response: $0.end) } + others
    }
}

/// A command's identity: its flow and its position there.
private struct CommandKey: Hashable {
    var flowID: FlowID
    var index: Int64
}

/// Rows of one kind (flows, exchanges, commands) that a starting event makes and an ending event with the same key
/// may complete within the batch.
private struct Folds<Key: Hashable> {
    private(set) var rows: [(start: Int, end: Int?)] = []
    private var slots: [Key: Int] = [:]
    /// A flow started twice in one batch (the engine never does) is not folded any further: its later events are
    /// written in their order, after the first row, as they would have been.
    private var unfolded: Set<Key> = []

    /// The batch index of the event that started `key`'s row, if one did.
    func startIndex(of key: Key) -> Int? {
        slots[key].map { rows[$0].start }
    }

    /// Whether the event at `index` starts a row here; if not, it is written on its own.
    mutating func start(_ flowID: Key, at index: Int) -> Bool {
        guard slots[flowID] == nil, !unfolded.contains(flowID) else {
            slots[flowID] = nil
            unfolded.insert(flowID)
            return false
        }
        slots[flowID] = rows.count
        rows.append((index, nil))
        return true
    }

    /// Whether the event at `index` completes a row started in this batch; if not, it is written on its own.
    mutating func end(_ flowID: Key, at index: Int) -> Bool {
        guard let slot = slots[flowID], rows[slot].end == nil else { return false }
        rows[slot].end = index
        return true
    }
}
