import Dispatch
import Foundation
import SluiceCore
import SluiceModel

/// What decides whether a row of any list is listed: the view filter (`f`) and what it can ask about besides the
/// row (marks, holds), and the flow list's `z`. A value, so it can be taken to the background queue.
struct ListFilter: Sendable {
    var filter: Filter?
    var clearedThrough: FlowID?
    var marked: Set<FlowID>
    var held: Set<FlowID>
    var heldCommands: Set<CommandRow.Key>
    /// The flows the full-text index found each bare word in.
    var indexHits: [String: Set<FlowID>] = [:]

    func shows(_ row: FlowRow) -> Bool {
        if let clearedThrough, row.id <= clearedThrough { return false }
        guard let filter else { return true }
        var subject = row.subject(marked: marked.contains(row.id), held: held.contains(row.id))
        for (word, flows) in indexHits where flows.contains(row.id) { subject.indexedWords.insert(word) }
        return filter.matches(subject)
    }

    /// A command, with its flow's row when the list has it (for `~k`, `~src`, `~dst`).
    func shows(_ row: CommandRow, flow: FlowRow?) -> Bool {
        guard let filter else { return true }
        let flowID = row.command.flowID
        return filter.matches(row.subject(flow: flow, marked: marked.contains(flowID), held: heldCommands.contains(row.key)))
    }

    func shows(_ row: AlertRow, flow: FlowRow?, command: CommandRow?) -> Bool {
        guard let filter else { return true }
        return filter.matches(row.subject(flow: flow, command: command, marked: row.alert.flowID.map(marked.contains) ?? false))
    }
}

/// The flow list (screen 1): a row per flow, built from the engine's events and the store's history. One place knows
/// how an event changes a flow's row: `apply`.
struct FlowList {
    var list = ListModel<FlowRow>()
    /// `z`: the flows up to this one are no longer listed (the store keeps them).
    var clearedThrough: FlowID?
    private let background: DispatchQueue
    private let inbox: Inbox

    /// Lists above this size are filtered on the background queue, so typing a filter never freezes the screen.
    static let backgroundFilterThreshold = 20_000

    init(background: DispatchQueue, inbox: Inbox) {
        self.background = background
        self.inbox = inbox
    }

    subscript(id: FlowID) -> FlowRow? { list[id] }

    /// Applies one engine event to the rows. Returns whether it added a row (to be checked by `appendVisible`), and
    /// the flow whose commands changed (a row the filter may now see differently).
    mutating func apply(_ event: ProxyEvent) -> (added: Bool, commandsOf: FlowID?) {
        switch event {
        case .flowOpened(let opened):
            return (list.append(FlowRow(opened: opened)), nil)
        case .message(let message):
            list.update(message.flowID) { row in
                if message.direction == .up, row.previewUp.isEmpty { row.previewUp = message.payload }
                if message.direction == .down, row.previewDown.isEmpty { row.previewDown = message.payload }
            }
        case .flowError(let error):
            list.update(error.flowID) { row in row.error = row.error ?? "\(error.phase.rawValue): \(error.message)" }
        case .flowClosed(let closed):
            list.update(closed.flowID) { row in
                row.end = closed.time
                row.bytesUp = closed.bytesUp
                row.bytesDown = closed.bytesDown
                row.state = closed.state
                row.error = closed.error
            }
        case .httpRequest(let request):
            list.update(request.flowID) { row in
                row.request(method: request.method, url: request.url, headers: request.headers, replayOf: request.replayOf)
            }
        case .httpResponse(let response):
            list.update(response.flowID) { row in row.response(status: response.status, headers: response.headers) }
        case .command(let command):
            let changed = list.update(command.flowID) { row in row.note(command: command.text, risk: command.risk) }
            return (false, changed ? command.flowID : nil)
        case .messageHeld, .messageReleased, .commandDecided, .commandFinished, .alert:
            break
        }
        return (false, nil)
    }

    /// Commands read with the store's history, noted on their flows' rows; returns the flows that have any.
    mutating func note(_ commands: [CommandRow]) -> Set<FlowID> {
        var flows: Set<FlowID> = []
        for row in commands where list.update(row.command.flowID, { $0.note(command: row.command.text, risk: row.command.risk) }) {
            flows.insert(row.command.flowID)
        }
        return flows
    }

    /// The store's writer had received `received` events when these were shown: the flows they touch are in the
    /// store as shown once it has written that many.
    mutating func stamp(_ events: [ProxyEvent], received: Int) {
        for event in events {
            if let id = event.flowID { list.update(id) { $0.shownAtEvent = received } }
        }
    }

    /// Lists the rows `rule` shows: at once for a short list or no filter, else on the background queue (returns
    /// true); its answer comes back through the inbox to `App.flowsFiltered`.
    mutating func refilter(_ rule: ListFilter) -> Bool {
        guard list.rows.count > Self.backgroundFilterThreshold, rule.filter != nil else {
            list.refilter(rule.shows)
            return false
        }
        let (generation, snapshot) = list.beginRefilter()
        background.async { [inbox] in
            let indices = snapshot.indices.filter { rule.shows(snapshot[$0]) }
            inbox.post { app in app.flowsFiltered(generation: generation, indices: indices, scanned: snapshot.count) }
        }
        return true
    }
}
