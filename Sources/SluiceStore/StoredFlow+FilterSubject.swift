import Foundation
import SluiceModel

extension StoredFlow {
    /// What a filter sees of a recorded flow with all its messages and commands (`sluice flows --filter`,
    /// `sluice export`): `~risk` the highest risk among the commands, `~cmd` their texts.
    ///
    /// As mitmproxy's flows have them: an HTTP body is searched decoded (gzip and deflate; another coding as it
    /// travelled), a WebSocket's text and binary messages beside its handshake's bodies, every other kind's chunks.
    public func filterSubject(messages: [StoredMessage], commands: [StoredCommand] = []) -> FilterSubject {
        let flowKind = FlowKind(rawValue: kind) ?? .tcp
        var up: [Data] = []
        var down: [Data] = []
        if let http {
            up.append(decodedBody(.up, in: messages, headers: http.requestHeaders))
            if http.status != nil { down.append(decodedBody(.down, in: messages, headers: http.responseHeaders)) }
        }
        let carried: Set<MessageKind> = flowKind == .websocket ? [.text, .binary] : (http == nil ? [.chunk] : [])
        for message in messages where carried.contains(message.kind) {
            if message.direction == .up { up.append(message.payload) } else { down.append(message.payload) }
        }
        return FilterSubject(
            kind: flowKind, client: Endpoint(parsing: client), server: Endpoint(parsing: server), requestPayloads: up,
            responsePayloads: down, method: http?.method, url: http?.url, requestHeaders: http?.requestHeaders ?? [],
            statusCode: http?.status, responseHeaders: http?.responseHeaders ?? [], isReplay: replayOf != nil,
            hasError: state == FlowState.error.rawValue, isMarked: marked, risk: commands.map(\.command.risk).max(),
            commands: commands.map(\.command.text)
        )
    }

    private func decodedBody(_ direction: Direction, in messages: [StoredMessage], headers: [HeaderField]) -> Data {
        let body = body(direction, in: messages)
        let coding = headers.first(named: "Content-Encoding")
        return BodyDecoding.decode(body.stored, contentEncoding: coding, truncated: body.isTruncated) ?? body.stored
    }
}
