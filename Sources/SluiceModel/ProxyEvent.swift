import Foundation

/// Everything that leaves the engine is one of these. The store, the headless log and the TUI subscribe to them.
public enum ProxyEvent: Sendable {
    case flowOpened(FlowOpened)
    case message(Message)
    case flowError(FlowError)
    case flowClosed(FlowClosed)
    /// A message stopped at a hold point.
    case messageHeld(HeldMessage)
    /// A held message was decided (by the operator, a policy or its deadline).
    case messageReleased(MessageReleased)
    /// An HTTP request head; the body follows as `up` messages.
    case httpRequest(HTTPRequestStarted)
    /// An HTTP response head; the body follows as `down` messages.
    case httpResponse(HTTPResponseStarted)
    /// A shell line, exec command or SQL statement was captured and judged by the policy.
    case command(Command)
    /// A held command was allowed or blocked.
    case commandDecided(CommandDecided)
    /// A command's outcome is known (exit status, SQL result).
    case commandFinished(CommandFinished)
    /// Something the operator should see: a command the policy flagged, a refused port forward.
    case alert(Alert)

    public var flowID: FlowID? {
        switch self {
        case .flowOpened(let e): return e.flowID
        case .message(let e): return e.flowID
        case .flowError(let e): return e.flowID
        case .flowClosed(let e): return e.flowID
        case .messageHeld(let e): return e.flowID
        case .messageReleased(let e): return e.flowID
        case .httpRequest(let e): return e.flowID
        case .httpResponse(let e): return e.flowID
        case .command(let e): return e.flowID
        case .commandDecided(let e): return e.flowID
        case .commandFinished(let e): return e.flowID
        case .alert(let e): return e.flowID
        }
    }
}

/// A client connected to a listener; the flow exists from here on.
public struct FlowOpened: Sendable, Equatable {
    public var flowID: FlowID
    public var kind: FlowKind
    /// The listen spec the client came in on, e.g. `tcp://127.0.0.1:9000=>10.0.0.5:7000`.
    public var listener: String
    public var client: Endpoint
    public var server: Endpoint
    public var time: Date
    /// The flow this one repeats, when Sluice itself made the connection to replay it (database statements; an HTTP
    /// replay names its original in its request).
    public var replayOf: FlowID?
    /// The session whose proxy accepted the connection, when a listener was opened for one.
    public var session: SessionID?

    public init(
        flowID: FlowID, kind: FlowKind, listener: String, client: Endpoint, server: Endpoint, time: Date, replayOf: FlowID? = nil,
        session: SessionID? = nil
    ) {
        self.flowID = flowID
        self.kind = kind
        self.listener = listener
        self.client = client
        self.server = server
        self.time = time
        self.replayOf = replayOf
        self.session = session
    }
}

/// One chunk as read from one side. `size` is what travelled; `payload` is what was kept of it, which is shorter
/// when the per-message or per-flow recording limit cut it.
public struct Message: Sendable, Equatable {
    public var flowID: FlowID
    /// Position within the flow, from 0, both directions counted together.
    public var sequence: Int64
    public var direction: Direction
    public var time: Date
    public var size: Int
    public var payload: Data
    /// Set on the bytes an operator's edit sent instead of message `editedFromSequence` of the same flow.
    public var editedFromSequence: Int64?
    /// What the bytes are: a raw chunk, a piece of an HTTP body, a WebSocket message.
    public var kind: MessageKind

    public init(
        flowID: FlowID, sequence: Int64, direction: Direction, time: Date, size: Int, payload: Data, editedFromSequence: Int64? = nil,
        kind: MessageKind = .chunk
    ) {
        self.kind = kind
        self.flowID = flowID
        self.sequence = sequence
        self.direction = direction
        self.time = time
        self.size = size
        self.payload = payload
        self.editedFromSequence = editedFromSequence
    }

    public var isTruncated: Bool { payload.count < size }
}

/// What a message's bytes are.
public enum MessageKind: String, Sendable, CaseIterable, Codable {
    /// A raw TCP chunk as read.
    case chunk
    /// A piece of an HTTP request or response body, as read (after de-chunking).
    case body
    /// WebSocket messages (reassembled) and control frames.
    case text
    case binary
    case ping
    case pong
    case close
    /// An HTTP request or response as a whole (head and body, as text), kept when it was held for the operator.
    case request
    case response
}

/// Where in a flow's life an error happened.
public enum FlowErrorPhase: String, Sendable, Codable {
    /// Reaching the target failed: refused, unreachable, timed out.
    case connect
    /// The client side failed while relaying (reset, broken pipe).
    case client
    /// The server side failed while relaying.
    case server
    /// The engine refused or ended the flow (shutdown, limits).
    case proxy
}

public struct FlowError: Sendable, Equatable {
    public var flowID: FlowID
    public var phase: FlowErrorPhase
    public var time: Date
    public var message: String

    public init(flowID: FlowID, phase: FlowErrorPhase, time: Date, message: String) {
        self.flowID = flowID
        self.phase = phase
        self.time = time
        self.message = message
    }
}

/// Both sides are gone. Byte counts are the real totals, whatever the recording limits kept.
public struct FlowClosed: Sendable, Equatable {
    public var flowID: FlowID
    public var time: Date
    public var bytesUp: Int64
    public var bytesDown: Int64
    public var state: FlowState
    /// The first error, if the flow ended with one.
    public var error: String?
    /// True when some payload bytes were counted but not stored.
    public var payloadTruncated: Bool
    /// Of `bytesUp` and `bytesDown`, the bytes of HTTP heads (the rest is bodies, or for other kinds everything).
    public var headBytesUp: Int64
    public var headBytesDown: Int64

    public init(
        flowID: FlowID, time: Date, bytesUp: Int64, bytesDown: Int64, state: FlowState, error: String?,
        payloadTruncated: Bool, headBytesUp: Int64 = 0, headBytesDown: Int64 = 0
    ) {
        self.flowID = flowID
        self.time = time
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.state = state
        self.error = error
        self.payloadTruncated = payloadTruncated
        self.headBytesUp = headBytesUp
        self.headBytesDown = headBytesDown
    }
}

public struct MessageReleased: Sendable, Equatable {
    public var flowID: FlowID
    public var holdID: Int64
    public var sequence: Int64
    public var time: Date
    public var verdict: Verdict
    public var decidedBy: Decider

    public init(flowID: FlowID, holdID: Int64, sequence: Int64, time: Date, verdict: Verdict, decidedBy: Decider) {
        self.flowID = flowID
        self.holdID = holdID
        self.sequence = sequence
        self.time = time
        self.verdict = verdict
        self.decidedBy = decidedBy
    }
}

/// What Sluice does while its store cannot write (a full disk): `stop` refuses new connections, since an audit
/// tool must not silently stop recording, and holds the open ones back until it can write again; `relay` keeps
/// relaying without recording until it can.
public enum StoreFullPolicy: String, Sendable, CaseIterable {
    case stop
    case relay
}
