import Foundation
import NIOCore
import SluiceModel

/// A protocol's view of a relayed byte stream, without I/O: it reads each direction's bytes, records what they
/// mean (chunks, WebSocket messages, SQL statements), and tells the relay what to send where and where to stop for
/// a verdict. The relay (`RelayHandler`) does everything else once for every protocol: backpressure both ways,
/// half-close, queues behind holds, the store's flow control, the buffer budget, closing.
///
/// One inspector serves both directions of one flow, on the flow's event loop. Directions are as recorded: `.up`
/// is what the client sends.
public protocol RelayInspector: AnyObject {
    /// Bytes read from the peer that sends `direction`. Append, in order, what the relay should do with them.
    func read(_ buffer: ByteBuffer, direction: Direction, into actions: inout [RelayAction])

    /// A hold this inspector asked for was decided (by the operator, the hold's timeout, or the connection's end).
    /// The actions appended take the hold's place, ahead of whatever queued behind it.
    func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider, into actions: inout [RelayAction])

    /// The peer that sends `direction` shut its output (FIN). Queued behind any hold in that direction.
    func inputClosed(direction: Direction, into actions: inout [RelayAction])

    /// Whether the relay may go on reading `direction` while one of its messages is held. With false, reading
    /// stops at the hold (what the same read brought queues behind it); with true the inspector sees later input
    /// at once, which lets it pass some of it ahead of the hold (`RelayAction.passNow`).
    func readsWhileHolding(_ direction: Direction) -> Bool

    /// Bytes the inspector keeps back right now (a message still arriving, one being assembled), counted with the
    /// relay's hold queues against the engine's `ByteBudget`.
    var bufferedBytes: Int { get }

    /// Keeping what it holds would pass the engine's buffer budget (`description` says by how much): end.
    func budgetExceeded(_ description: String, into actions: inout [RelayAction])

    /// The relay is gone: let go of everything (the flow must not keep buffers alive).
    func relayEnded()
}

extension RelayInspector {
    public func inputClosed(direction: Direction, into actions: inout [RelayAction]) {
        actions.append(.passHalfClose)
    }

    public func readsWhileHolding(_ direction: Direction) -> Bool { false }

    public var bufferedBytes: Int { 0 }

    public func budgetExceeded(_ description: String, into actions: inout [RelayAction]) {
        actions.append(.end(RelayEnding(failure: .proxy, description)))
    }

    public func relayEnded() {}
}

/// What the relay does for an inspector. Bytes are relative to the peer whose input was read: `pass` goes on to the
/// other peer, `answer` goes back to the sender.
///
/// The rare cases with big payloads are `indirect`, so an action is as small as a `ByteBuffer` and a relay's queue
/// costs an idle connection nothing much.
public enum RelayAction {
    /// Send bytes on to the other peer, in order behind anything held before them.
    case pass(ByteBuffer)
    /// Send bytes on to the other peer at once, even past a held message (WebSocket pings, RFC 6455 §5.5.2).
    case passNow(ByteBuffer)
    /// Send bytes back to the peer they came from (e.g. a protocol error for a statement that was not let through).
    case answer(ByteBuffer)
    /// Park a message or command in the `InterceptGate`; actions after it in this direction wait for the verdict.
    indirect case hold(RelayHold)
    /// Shut the other peer's output once everything before is written: the sender finished (half-close).
    case passHalfClose
    /// Put a handler in front of the sender's connection once what was answered so far is flushed, so that what the
    /// sender sends next passes through it: TLS terminated after a protocol's own go-ahead (PostgreSQL's `S`).
    /// `unread`: what the sender sent behind its request in the same read (a MySQL client's ClientHello follows its
    /// SSLRequest at once), read again through the new handler. Cutting the read into messages stops here.
    case secureSender(() throws -> ChannelHandler, unread: ByteBuffer? = nil)
    /// Put a handler in front of the other peer's connection once what was passed to it so far is flushed: Sluice's
    /// own TLS to a server, started mid-stream (after a MySQL SSLRequest passed on).
    case securePartner(() throws -> ChannelHandler)
    /// End the relay. An orderly end waits in line behind holds; an end with a failure or an abrupt one happens at
    /// once and drops what was queued.
    indirect case end(RelayEnding)
}

/// A message or command an inspector asks the operator (or the policy's hold) about.
public struct RelayHold: Sendable {
    /// The inspector's own number for it, to know which hold a verdict answers.
    public var id: Int
    /// The recorded message it is (the gate shows its bytes and sequence).
    public var sequence: Int64
    public var direction: Direction
    public var payload: Data
    /// Set when the hold is the policy's, for a command: the gate then publishes the command's decision.
    public var command: Command?

    public init(id: Int, sequence: Int64, direction: Direction, payload: Data, command: Command? = nil) {
        self.id = id
        self.sequence = sequence
        self.direction = direction
        self.payload = payload
        self.command = command
    }
}

/// How a relay ends.
public struct RelayEnding {
    /// Recorded as the flow's error (the first failure wins); nil for an orderly end.
    public var failure: (phase: FlowErrorPhase, message: String)?
    /// Last words for each peer (a WebSocket Close, a database error). A peer that gets some has its output shut
    /// after them and `RelayHandler.closingGrace` to hang up itself: closing at once could reset the connection
    /// before the peer has read them.
    public var toClient: ByteBuffer?
    public var toServer: ByteBuffer?
    /// Close both connections now, dropping unwritten bytes (a kill, a failure). Otherwise each side closes after
    /// its pending writes.
    public var abrupt: Bool

    public init(failure: (phase: FlowErrorPhase, message: String)? = nil, toClient: ByteBuffer? = nil, toServer: ByteBuffer? = nil, abrupt: Bool = false) {
        self.failure = failure
        self.toClient = toClient
        self.toServer = toServer
        self.abrupt = abrupt
    }

    /// A failure that closes both sides now.
    public init(failure phase: FlowErrorPhase, _ message: String) {
        self.init(failure: (phase, message), abrupt: true)
    }

    /// The sender's connection is gone: its partner closes after what it still has to write, or at once when the
    /// flow failed.
    static func peerClosed(abruptly: Bool) -> RelayEnding {
        RelayEnding(abrupt: abruptly)
    }

    /// Whether this end jumps the hold queue.
    var isUrgent: Bool { failure != nil || abrupt }

    func lastWords(for side: FlowRecorder.Side) -> ByteBuffer? {
        side == .client ? toClient : toServer
    }
}
