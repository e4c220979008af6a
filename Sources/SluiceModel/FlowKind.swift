/// The protocol a flow speaks, as the engine recognised it.
public enum FlowKind: String, Sendable, CaseIterable, Codable {
    case tcp
    case http
    case websocket
    case ssh
    case postgres
    case mysql
}

/// Which way bytes travel: `up` is client to server, `down` is server to client.
public enum Direction: String, Sendable, CaseIterable, Codable {
    case up
    case down

    public var arrow: String {
        switch self {
        case .up: return "->"
        case .down: return "<-"
        }
    }
}

/// Where a flow stands. `interrupted` marks a flow that was still open when the recording process stopped
/// without closing it (a crash or `kill -9`), found the next time the store is opened for writing.
public enum FlowState: String, Sendable, CaseIterable, Codable {
    case open
    case closed
    case error
    case interrupted
}
