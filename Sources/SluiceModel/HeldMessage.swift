import Foundation

/// A message stopped at a hold point, waiting for the operator, a policy, or its deadline.
public struct HeldMessage: Sendable, Equatable, Identifiable {
    /// Unique within the running engine.
    public var id: Int64
    public var flowID: FlowID
    /// The held message's sequence in its flow (as recorded).
    public var sequence: Int64
    public var direction: Direction
    public var payload: Data
    public var heldAt: Date
    /// When the default verdict applies if nobody decides.
    public var deadline: Date
    /// Set when what waits is a command the policy held (its text is the payload): forward runs it, drop or kill
    /// blocks it.
    public var command: Command?

    public init(
        id: Int64, flowID: FlowID, sequence: Int64, direction: Direction, payload: Data, heldAt: Date, deadline: Date,
        command: Command? = nil
    ) {
        self.command = command
        self.id = id
        self.flowID = flowID
        self.sequence = sequence
        self.direction = direction
        self.payload = payload
        self.heldAt = heldAt
        self.deadline = deadline
    }
}

/// What becomes of a held message.
public enum Verdict: Sendable, Equatable {
    /// Send it on: the original bytes, or the operator's edit.
    case forward(edited: Data?)
    /// Discard this message; the connection lives on.
    case drop
    /// Refuse it and say why: a held command is blocked and the user reads `message`; a held HTTP request or
    /// response is answered 403 with it; elsewhere (a TCP chunk, a WebSocket message) it is dropped.
    case block(message: String)
    /// Close the connection both ways.
    case kill

    /// How the store names the outcome.
    public var disposition: String {
        switch self {
        case .forward(let edited): return edited == nil ? "forwarded" : "edited"
        case .drop: return "dropped"
        case .block: return "blocked"
        case .kill: return "killed"
        }
    }
}
