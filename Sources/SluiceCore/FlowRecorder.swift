import Foundation
import NIOCore
import SluiceModel
import Synchronization

/// A flow's live byte totals, readable from any thread (the TUI's connection view) while the relay counts.
public final class FlowCounters: Sendable {
    private let up = Atomic<Int64>(0)
    private let down = Atomic<Int64>(0)

    public var bytesUp: Int64 { up.load(ordering: .relaxed) }
    public var bytesDown: Int64 { down.load(ordering: .relaxed) }

    func add(_ count: Int, direction: Direction) {
        switch direction {
        case .up: up.add(Int64(count), ordering: .relaxed)
        case .down: down.add(Int64(count), ordering: .relaxed)
        }
    }
}

/// How much of each flow is kept. Beyond the limits bytes are still counted, not stored.
public struct RecordingLimits: Sendable, Equatable {
    /// When false no message events are produced at all; flows still open and close with byte counts.
    public var recordPayloads: Bool
    public var maxPayloadBytes: Int
    public var maxFlowBytes: Int64
    /// Bytes kept of each direction: an HTTP flow keeps up to this much of its request and of its response body.
    public var maxDirectionBytes: Int64

    public init(recordPayloads: Bool, maxPayloadBytes: Int, maxFlowBytes: Int64, maxDirectionBytes: Int64 = .max) {
        self.recordPayloads = recordPayloads
        self.maxPayloadBytes = maxPayloadBytes
        self.maxFlowBytes = maxFlowBytes
        self.maxDirectionBytes = maxDirectionBytes
    }

    public init(_ configuration: Configuration) {
        self.init(
            recordPayloads: configuration.record,
            maxPayloadBytes: configuration.maxPayloadBytes,
            maxFlowBytes: configuration.maxFlowBytes
        )
    }
}

/// A body being collected into one message.
private struct PendingBody {
    var started: Date
    var streaming = false
    var bytes = Data()
    /// Bytes that travelled, also those beyond what is kept.
    var size = 0
}

/// Turns one flow's life into events: open, each chunk or body piece, HTTP heads, the first error, close.
///
/// Owned by the event loop the flow's channels live on, so it needs no locking. A TCP flow ends when both sides
/// have closed (`sideClosed`); an HTTP exchange ends when its response is complete or fails (`finish`).
public final class FlowRecorder {
    public enum Side {
        case client
        case server
    }

    public let flowID: FlowID
    private let bus: FlowBus
    private var kind: FlowKind = .tcp
    private var client: Endpoint?
    private var server: Endpoint?
    private let limits: RecordingLimits
    private var sequence: Int64 = 0
    let counters = FlowCounters()
    private var storedBytes: Int64 = 0
    private var storedUp: Int64 = 0
    private var storedDown: Int64 = 0
    private var truncated = false
    /// The first error recorded; later ones are not kept.
    private var firstFailure: (phase: FlowErrorPhase, message: String)?
    /// The first error as the flow's row states it: `phase: message`.
    private var firstError: String? { firstFailure.map { "\($0.phase.rawValue): \($0.message)" } }
    /// The first error's message, without its phase.
    public var failureMessage: String? { firstFailure?.message }
    /// Sides that still have to close before the flow is over. The server side counts as closed when the
    /// connection to it never came up.
    private var clientOpen = true
    private var serverOpen = true
    /// HTTP bodies being collected, one per direction (see `bodyPiece`).
    private var pendingUp: PendingBody?
    private var pendingDown: PendingBody?
    public private(set) var isFinished = false
    /// The engine's hook to forget the flow once it has closed.
    var onFinished: (() -> Void)?
    /// Set by protocols that can take a message from the operator (WebSocket): sends `data` as a message of `kind`
    /// in `direction`. Called on the flow's event loop.
    public var injector: (@Sendable (Data, MessageKind, Direction) -> Void)?

    public var hasFailed: Bool { firstFailure != nil }

    init(flowID: FlowID, bus: FlowBus, limits: RecordingLimits) {
        self.flowID = flowID
        self.bus = bus
        self.limits = limits
    }

    func opened(kind: FlowKind, listener: String, client: Endpoint, server: Endpoint, replayOf: FlowID? = nil, session: SessionID? = nil) {
        self.kind = kind
        self.client = client
        self.server = server
        bus.publish(
            .flowOpened(
                FlowOpened(
                    flowID: flowID, kind: kind, listener: listener, client: client, server: server, time: Date(), replayOf: replayOf,
                    session: session
                )
            )
        )
    }

    /// Records a chunk read from one side before it is forwarded, so that anything a peer has received is
    /// already on its way to the store.
    /// - Returns: the chunk's sequence number in the flow (also when its bytes are not stored).
    @discardableResult
    public func chunk(_ buffer: ByteBuffer, direction: Direction, kind: MessageKind = .chunk) -> Int64 {
        let size = buffer.readableBytes
        counters.add(size, direction: direction)
        return publish(buffer.readableBytesView, size: size, direction: direction, editedFrom: nil, kind: kind)
    }

    /// Records a piece of an HTTP body as it passes. Bodies are recorded whole, one `body` message when
    /// `bodyEnded` (or `finish`) comes, so that the store can keep a body it has seen before only once. A larger
    /// body becomes a message per `bodyMessageBytes`, cut at the same offsets however the network delivered it (so
    /// a large file downloaded again is also kept once, part by part), and one still arriving after a second (a
    /// stream of server-sent events, a slow upload) is recorded piece by piece from then on, so it shows while it
    /// flows.
    public func bodyPiece(_ buffer: ByteBuffer, direction: Direction, at now: Date = Date()) {
        counters.add(buffer.readableBytes, direction: direction)
        guard limits.recordPayloads else { return }
        let messageLimit = max(1, min(limits.maxPayloadBytes, Self.bodyMessageBytes))
        var piece = buffer.readableBytesView[...]
        while !piece.isEmpty {
            // Taken out while it grows: a copy left behind would make every append copy the bytes collected so far.
            var body = pendingBody(direction) ?? PendingBody(started: now)
            setPendingBody(nil, direction)
            if body.streaming {
                setPendingBody(body, direction)
                publish(piece, size: piece.count, direction: direction, editedFrom: nil, kind: .body)
                return
            }
            // Bytes of this piece that belong to the current message, and of those the ones the budget keeps.
            let take = min(piece.count, messageLimit - body.size)
            let keep = min(take, max(0, min(messageLimit, Int(clamping: budget(direction))) - body.bytes.count))
            // Through a buffer pointer: `Data`'s generic `append(contentsOf:)` casts the sequence dynamically first.
            let kept = piece.prefix(keep)
            if kept.withContiguousStorageIfAvailable({ body.bytes.append($0) }) == nil {
                body.bytes.append(contentsOf: Array(kept))
            }
            body.size += take
            piece = piece.dropFirst(take)
            setPendingBody(body, direction)
            let slow = now.timeIntervalSince(body.started) > 1
            if body.size >= messageLimit || slow {
                bodyEnded(direction: direction)
                setPendingBody(PendingBody(started: now, streaming: slow), direction)
            }
        }
    }

    /// A body of `bytes` (its `Content-Length`) is about to pass in `direction`: room for the part of it that
    /// will be kept is made at once, so collecting it copies each byte once instead of again at every doubling of
    /// the buffer. A length that lies costs nothing: the room is capped at one message and the flow's budget, and
    /// `bodyPiece` records what really passes.
    public func expectBody(bytes: Int, direction: Direction, at now: Date = Date()) {
        guard limits.recordPayloads, bytes > 0, pendingBody(direction) == nil else { return }
        let messageLimit = max(1, min(limits.maxPayloadBytes, Self.bodyMessageBytes))
        let room = min(bytes, messageLimit, Int(clamping: budget(direction)))
        guard room > 0 else { return }
        var body = PendingBody(started: now)
        body.bytes.reserveCapacity(room)
        setPendingBody(body, direction)
    }

    /// Counts an HTTP head that travelled: it is in the flow's totals like its body, and recorded by the request
    /// and response events rather than as a message.
    public func countHead(_ bytes: Int, direction: Direction) {
        counters.add(bytes, direction: direction)
        switch direction {
        case .up: headBytesUp += Int64(bytes)
        case .down: headBytesDown += Int64(bytes)
        }
    }

    /// The part of the totals that was HTTP heads: what is left is the bodies' size (`StoredFlow.body`).
    private var headBytesUp: Int64 = 0
    private var headBytesDown: Int64 = 0

    /// The largest body message: what a body in flight holds in memory until it is recorded.
    public static let bodyMessageBytes = 128 << 10

    /// Publishes the body collected in `direction` as one message.
    public func bodyEnded(direction: Direction) {
        guard let body = pendingBody(direction) else { return }
        setPendingBody(nil, direction)
        guard body.size > 0 else { return }
        publish(body.bytes, size: body.size, direction: direction, editedFrom: nil, kind: .body)
    }

    private func pendingBody(_ direction: Direction) -> PendingBody? {
        direction == .up ? pendingUp : pendingDown
    }

    private func setPendingBody(_ body: PendingBody?, _ direction: Direction) {
        if direction == .up { pendingUp = body } else { pendingDown = body }
    }

    /// Records the bytes an operator's edit sends in place of message `original`.
    public func edited(_ bytes: Data, from original: Int64, direction: Direction, kind: MessageKind = .chunk) {
        publish(bytes, size: bytes.count, direction: direction, editedFrom: original, kind: kind)
    }

    /// Records bytes that travel without being read from a peer (a message the operator sent into a WebSocket),
    /// counted in the totals.
    @discardableResult
    public func injected(_ bytes: Data, direction: Direction, kind: MessageKind) -> Int64 {
        counters.add(bytes.count, direction: direction)
        return publish(bytes, size: bytes.count, direction: direction, editedFrom: nil, kind: kind)
    }

    /// Records a copy of something already counted (an HTTP message held whole for the operator), so the hold and
    /// an edit have a message to refer to; the byte totals do not change.
    @discardableResult
    public func recordCopy(_ bytes: Data, direction: Direction, kind: MessageKind) -> Int64 {
        publish(bytes, size: bytes.count, direction: direction, editedFrom: nil, kind: kind)
    }

    public func requestStarted(_ request: HTTPRequestStarted) {
        bus.publish(.httpRequest(request))
    }

    public func responseStarted(_ response: HTTPResponseStarted) {
        bus.publish(.httpResponse(response))
    }

    /// Publishes bytes still in a receive buffer: the part kept is copied out (`Data(copying:)`).
    @discardableResult
    private func publish(
        _ bytes: ByteBufferView, size: Int, direction: Direction, editedFrom: Int64?, kind: MessageKind
    ) -> Int64 {
        publish(size: size, direction: direction, editedFrom: editedFrom, kind: kind) { keep in Data(copying: bytes.prefix(keep)) }
    }

    /// The same for bytes already in a `Data` (a collected body, an edit): kept whole without a copy.
    @discardableResult
    private func publish(_ bytes: Data, size: Int, direction: Direction, editedFrom: Int64?, kind: MessageKind) -> Int64 {
        publish(size: size, direction: direction, editedFrom: editedFrom, kind: kind) { keep in
            keep == bytes.count ? bytes : Data(bytes.prefix(keep))
        }
    }

    /// Numbers the message and publishes the part of it the limits keep (`payload(keep)` makes those bytes).
    private func publish(
        size: Int, direction: Direction, editedFrom: Int64?, kind: MessageKind, payload: (Int) -> Data
    ) -> Int64 {
        let current = sequence
        sequence += 1
        guard limits.recordPayloads else { return current }
        let budget = budget(direction)
        let keep = min(size, limits.maxPayloadBytes, Int(clamping: budget))
        if keep < size { truncated = true }
        if keep == 0 && budget == 0 && editedFrom == nil && size > 0 {
            // Over its budget: totals keep counting, no more message rows.
            return current
        }
        storedBytes += Int64(keep)
        if direction == .up { storedUp += Int64(keep) } else { storedDown += Int64(keep) }
        bus.publish(
            .message(
                Message(
                    flowID: flowID, sequence: current, direction: direction, time: Date(), size: size,
                    payload: payload(keep), editedFromSequence: editedFrom, kind: kind
                )
            )
        )
        return current
    }

    /// Bytes this flow may still store in `direction`.
    private func budget(_ direction: Direction) -> Int64 {
        let directionStored = direction == .up ? storedUp : storedDown
        return max(0, min(limits.maxFlowBytes - storedBytes, limits.maxDirectionBytes - directionStored))
    }

    /// What the intercept filter sees of one chunk of this flow.
    public func subject(direction: Direction, payload: Data) -> FilterSubject {
        FilterSubject(
            kind: kind, client: client, server: server, requestPayloads: direction == .up ? [payload] : [],
            responsePayloads: direction == .down ? [payload] : [], hasError: firstFailure != nil
        )
    }

    /// Records the first error only; later ones are usually consequences of it (a reset, then a failed write).
    public func failed(_ phase: FlowErrorPhase, _ message: String) {
        guard firstFailure == nil, !isFinished else { return }
        firstFailure = (phase, message)
        bus.publish(.flowError(FlowError(flowID: flowID, phase: phase, time: Date(), message: message)))
    }

    public func sideClosed(_ side: Side) {
        switch side {
        case .client: clientOpen = false
        case .server: serverOpen = false
        }
        guard !clientOpen && !serverOpen else { return }
        finish()
    }

    /// Ends the flow now, whatever its sides are doing: an HTTP exchange is over when its response is.
    public func finish() {
        guard !isFinished else { return }
        bodyEnded(direction: .up)
        bodyEnded(direction: .down)
        isFinished = true
        defer { onFinished?() }
        bus.publish(
            .flowClosed(
                FlowClosed(
                    flowID: flowID, time: Date(), bytesUp: counters.bytesUp, bytesDown: counters.bytesDown,
                    state: firstError == nil ? .closed : .error, error: firstError, payloadTruncated: truncated,
                    headBytesUp: headBytesUp, headBytesDown: headBytesDown
                )
            )
        )
    }
}

@available(*, unavailable)
extension FlowRecorder: Sendable {}
