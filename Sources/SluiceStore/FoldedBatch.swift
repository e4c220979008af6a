import SluiceModel

/// A batch of events in the order the writer writes their rows, with each flow's open and close, and each HTTP
/// exchange's request and response, folded into one row when both are in the batch.
///
/// A short exchange makes five events (open, request, body, response, close). Written one by one that is two rows
/// inserted and then updated; folded, the `flows` and `http` rows are each inserted once, complete, which is most
/// of what the writer saves. Rows that others refer to come first: every flow opened in the batch, then every
/// exchange, then everything else in its order (messages, errors, holds, and the closes and responses of flows
/// opened in an earlier batch, which stay updates). The resulting rows are the ones writing each event in turn
/// would leave.
struct FoldedBatch {
    enum Write: Equatable {
        /// `flows` row of the `opened` event, complete with the `closed` one when that is in the batch too.
        case flow(opened: Int, closed: Int?)
        /// `http` row of the `request` event, complete with the `response` when that is in the batch too.
        case exchange(request: Int, response: Int?)
        /// Any other event, written on its own.
        case event(Int)
    }

    /// Indices into the batch, in writing order; every event appears exactly once.
    let writes: [Write]

    init(_ batch: [ProxyEvent]) {
        var flows: [Write] = []
        var flowSlots: [FlowID: Int] = [:]
        var exchanges: [Write] = []
        var exchangeSlots: [FlowID: Int] = [:]
        var others: [Write] = []
        // A flow opened twice in one batch (the engine never does) or an exchange requested twice is not folded
        // any further: its later events are written in their order, after the first row, as they would have been.
        var unfoldedFlows: Set<FlowID> = []
        var unfoldedExchanges: Set<FlowID> = []
        for (index, event) in batch.enumerated() {
            switch event {
            case .flowOpened(let opened):
                if flowSlots[opened.flowID] == nil && !unfoldedFlows.contains(opened.flowID) {
                    flowSlots[opened.flowID] = flows.count
                    flows.append(.flow(opened: index, closed: nil))
                } else {
                    flowSlots[opened.flowID] = nil
                    unfoldedFlows.insert(opened.flowID)
                    others.append(.event(index))
                }
            case .flowClosed(let closed):
                if let slot = flowSlots[closed.flowID], case .flow(let opened, nil) = flows[slot] {
                    flows[slot] = .flow(opened: opened, closed: index)
                } else {
                    others.append(.event(index))
                }
            case .httpRequest(let request):
                if exchangeSlots[request.flowID] == nil && !unfoldedExchanges.contains(request.flowID) {
                    exchangeSlots[request.flowID] = exchanges.count
                    exchanges.append(.exchange(request: index, response: nil))
                } else {
                    exchangeSlots[request.flowID] = nil
                    unfoldedExchanges.insert(request.flowID)
                    others.append(.event(index))
                }
            case .httpResponse(let response):
                if let slot = exchangeSlots[response.flowID], case .exchange(let request, nil) = exchanges[slot] {
                    exchanges[slot] = .exchange(request: request, response: index)
                } else {
                    others.append(.event(index))
                }
            case .message, .flowError, .messageHeld, .messageReleased:
                others.append(.event(index))
            }
        }
        writes = flows + exchanges + others
    }
}
