import SluiceModel

/// Sends a stored flow again through the running engine, as the TUI's `r` and `sluice replay` do: an HTTP request
/// as a new request, a PostgreSQL or MySQL session as its statements. The executable provides it (it needs the
/// protocol modules), as it provides the TUI's `FlowReplaying`.
public protocol APIFlowReplaying: Sendable {
    /// Replays flow `id` and returns once the replay is over. Blocks: the API calls it on its route queue.
    /// - Parameters:
    ///   - target: where to send it instead of the recorded server (`http://HOST:PORT` for HTTP, `HOST:PORT` for a
    ///     database session).
    ///   - statement: of a database session, only the statement at this index (a TUI's re-run of one); nil: all.
    ///   - password: a database session's password; never logged or stored.
    /// - Throws: `APIFailure`: 404 for an unknown flow, 409 for one that cannot be replayed (its kind, or what was
    ///   recorded of it), 400 for a bad target, 403 when the database refused the login, 502 when the replay itself
    ///   failed.
    func replay(_ id: FlowID, statement: Int64?, target: String?, password: String?) throws(APIFailure) -> APIReplayed
}

/// A replay that ran: the flow that recorded it and what it said.
public struct APIReplayed: Sendable, Equatable {
    /// The new flow; nil when the replay never opened one.
    public var flow: FlowID?
    public var replayOf: FlowID
    /// One line, as `sluice replay` prints it.
    public var summary: String
    /// A database session's statements that failed, one line each.
    public var details: [String]

    public init(flow: FlowID?, replayOf: FlowID, summary: String, details: [String] = []) {
        self.flow = flow
        self.replayOf = replayOf
        self.summary = summary
        self.details = details
    }
}
