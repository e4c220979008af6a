import Foundation
import SluiceModel
import SluiceStore

/// One flow as the list shows it, built from the store (history) or from live events.
public struct FlowRow: Sendable, Equatable, ListRow {
    public var id: FlowID
    public var start: Date
    public var end: Date?
    public var kind: FlowKind
    public var client: Endpoint
    public var server: Endpoint
    public var bytesUp: Int64 = 0
    public var bytesDown: Int64 = 0
    public var state: FlowState = .open
    public var error: String?
    /// The first bytes each way, for the summary column and for payload filters.
    public var previewUp = Data()
    public var previewDown = Data()
    // HTTP and WebSocket
    public var method: String?
    public var url: String?
    public var status: Int?
    public var requestHeaders: [HeaderField] = []
    public var responseHeaders: [HeaderField] = []
    /// The flow this one replayed: the list shows it where a client address would be.
    public var replayOf: FlowID?
    /// The highest risk among the flow's commands, and their texts (distinct, at most `commandLimit` of them, each
    /// cut at `commandLength` characters): what `~risk` and `~cmd` see of an SSH or SQL flow in the list. A session
    /// of thousands of commands keeps the first ones; its risk stays exact.
    public var commandRisk: RiskLevel?
    public var commandTexts: [String] = []
    /// How many events the store's writer had received when this flow's latest event was shown: the store holds
    /// the flow as shown once the writer has written that many (`StoreWriteProgress`).
    public var shownAtEvent = 0
    /// The store's mark, when the row was read from it (`FlowMarks` has the marks made since).
    public var storedMark = false

    public static let previewLimit = 256
    public static let commandLimit = 100
    public static let commandLength = 1024

    var key: FlowID { id }

    public init(opened: FlowOpened) {
        id = opened.flowID
        start = opened.time
        kind = opened.kind
        client = opened.client
        server = opened.server
        replayOf = opened.replayOf
    }

    public init(stored: StoredFlow) {
        id = stored.id
        start = stored.startedAt
        end = stored.endedAt
        kind = FlowKind(rawValue: stored.kind) ?? .tcp
        client = Endpoint(parsing: stored.client)
        server = Endpoint(parsing: stored.server)
        bytesUp = stored.bytesUp
        bytesDown = stored.bytesDown
        state = FlowState(rawValue: stored.state) ?? .closed
        error = stored.error
        previewUp = stored.previewUp ?? Data()
        previewDown = stored.previewDown ?? Data()
        replayOf = stored.replayOf
        storedMark = stored.marked
        for command in stored.commands { note(command: command.text, risk: command.risk) }
        if let http = stored.http {
            request(method: http.method, url: http.url, headers: http.requestHeaders, replayOf: stored.replayOf)
            if let status = http.status { response(status: status, headers: http.responseHeaders) }
        }
    }

    mutating func request(method: String, url: String, headers: [HeaderField], replayOf: FlowID? = nil) {
        self.method = method
        self.url = url
        self.replayOf = replayOf
        requestHeaders = headers
    }

    mutating func response(status: Int, headers: [HeaderField]) {
        self.status = status
        responseHeaders = headers
    }

    /// A command of this flow was captured (live, or read with the store's history).
    mutating func note(command text: String, risk: RiskLevel) {
        commandRisk = max(commandRisk ?? risk, risk)
        let cut = text.count > Self.commandLength ? String(text.prefix(Self.commandLength)) : text
        guard commandTexts.count < Self.commandLimit, !commandTexts.contains(cut) else { return }
        commandTexts.append(cut)
    }

    /// Who sent the request: the client's address, or for a replay the flow it repeats.
    public var origin: String {
        replayOf.map(Formatting.replay(of:)) ?? client.description
    }

    /// The one-line summary: for raw TCP, the first bytes the client sent, as text.
    public var summary: String {
        if let method, let url {
            var text = "\(method) \(url)"
            if let status { text += " → \(status)" }
            if let error, state == .error { text += " [\(error)]" }
            return text
        }
        if let error, state == .error { return error }
        let bytes = previewUp.isEmpty ? previewDown : previewUp
        guard !bytes.isEmpty else { return "" }
        var text = ""
        for byte in bytes.prefix(80) {
            switch byte {
            case 0x20...0x7e: text.unicodeScalars.append(Unicode.Scalar(byte))
            case 0x0a: text += "⏎"
            default: text += "·"
            }
        }
        return text
    }

    /// What the view filter sees of this row: its first bytes each way stand for the payloads (an HTTP body is
    /// there from its request, or its response, on; an empty preview of another kind is no message yet).
    func subject(marked: Bool, held: Bool) -> FilterSubject {
        let isHTTP = method != nil
        return FilterSubject(
            kind: kind, client: client, server: server,
            requestPayloads: isHTTP || !previewUp.isEmpty ? [previewUp] : [],
            responsePayloads: (isHTTP && status != nil) || (!isHTTP && !previewDown.isEmpty) ? [previewDown] : [],
            method: method, url: url, requestHeaders: requestHeaders, statusCode: status, responseHeaders: responseHeaders,
            isReplay: replayOf != nil, hasError: state == .error, isMarked: marked, isHeld: held, risk: commandRisk,
            commands: commandTexts
        )
    }
}
