import Foundation
import SluiceModel
import SluiceStore

/// The detail screen of one flow: what has been read of it from the store, and how it is shown.
struct FlowDetail {
    var flowID: FlowID
    /// nil until the first read is back ("loading messages…").
    var messages: [StoredMessage]?
    var errors: [StoredError] = []
    /// The request and response heads of an HTTP or WebSocket flow.
    var http: StoredHTTP?
    /// A gzip or deflate response body, decoded for reading (the store keeps the bytes as they travelled).
    var decodedResponse: (coding: String, body: Data)?
    var hex = false
    var scroll = 0
    /// The command the operator came from (Enter in the Commands view): the detail opens scrolled to it.
    var focusCommand: Int64?
    /// Set once the screen has scrolled to `focusCommand`, so the operator's scrolling is not undone.
    var focused = false
    var loadError: String?

    init(flowID: FlowID) {
        self.flowID = flowID
    }

    /// What the store holds of a flow; read on the background queue, shown on the UI thread.
    struct Contents: Sendable {
        var messages: [StoredMessage]
        var errors: [StoredError]
        var http: StoredHTTP?
        var decodedResponse: (coding: String, body: Data)?
    }

    static func read(_ id: FlowID, from store: Store) throws(StoreError) -> Contents {
        let messages = try store.messages(of: id)
        let errors = try store.errors(of: id)
        let http = try store.flow(id)?.http
        var decoded: (coding: String, body: Data)?
        if let coding = http?.responseHeaders.first(named: "Content-Encoding") {
            let pieces = messages.filter { $0.direction == .down && $0.kind == .body }
            let body = pieces.reduce(into: Data()) { $0.append($1.payload) }
            let cut = pieces.contains { $0.isTruncated }
            if let text = BodyDecoding.decode(body, contentEncoding: coding, limit: 4 << 20, truncated: cut) {
                decoded = (coding, text)
            }
        }
        return Contents(messages: messages, errors: errors, http: http, decodedResponse: decoded)
    }

    mutating func show(_ contents: Contents) {
        messages = contents.messages
        errors = contents.errors
        http = contents.http
        decodedResponse = contents.decodedResponse
    }
}
