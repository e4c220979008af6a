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

    public init(recordPayloads: Bool, maxPayloadBytes: Int, maxFlowBytes: Int64) {
        self.recordPayloads = recordPayloads
        self.maxPayloadBytes = maxPayloadBytes
        self.maxFlowBytes = maxFlowBytes
    }

    public init(_ configuration: Configuration) {
        self.init(
            recordPayloads: configuration.record,
            maxPayloadBytes: configuration.maxPayloadBytes,
            maxFlowBytes: configuration.maxFlowBytes
        )
    }
}

/// Turns one connection's life into events: open, each chunk, the first error, close.
///
/// Owned by the event loop both of the flow's channels live on, so it needs no locking.
final class FlowRecorder {
    enum Side {
        case client
        case server
    }

    let flowID: FlowID
    private let bus: FlowBus
    private var kind: FlowKind = .tcp
    private var client: Endpoint?
    private var server: Endpoint?
    private let limits: RecordingLimits
    private var sequence: Int64 = 0
    let counters = FlowCounters()
    private var storedBytes: Int64 = 0
    private var truncated = false
    private var firstError: String?
    /// Sides that still have to close before the flow is over. The server side counts as closed when the
    /// connection to it never came up.
    private var openSides: Set<Side> = [.client, .server]
    private(set) var isFinished = false

    var hasFailed: Bool { firstError != nil }

    init(flowID: FlowID, bus: FlowBus, limits: RecordingLimits) {
        self.flowID = flowID
        self.bus = bus
        self.limits = limits
    }

    func opened(kind: FlowKind, listener: String, client: Endpoint, server: Endpoint) {
        self.kind = kind
        self.client = client
        self.server = server
        bus.publish(.flowOpened(FlowOpened(flowID: flowID, kind: kind, listener: listener, client: client, server: server, time: Date())))
    }

    /// Records a chunk read from one side before it is forwarded, so that anything a peer has received is
    /// already on its way to the store.
    /// - Returns: the chunk's sequence number in the flow (also when its bytes are not stored).
    @discardableResult
    func chunk(_ buffer: ByteBuffer, direction: Direction) -> Int64 {
        let size = buffer.readableBytes
        counters.add(size, direction: direction)
        return publish(buffer.readableBytesView, size: size, direction: direction, editedFrom: nil)
    }

    /// Records the bytes an operator's edit sends in place of message `original`.
    func edited(_ bytes: Data, from original: Int64, direction: Direction) {
        publish(bytes, size: bytes.count, direction: direction, editedFrom: original)
    }

    @discardableResult
    private func publish<Bytes: Collection>(_ bytes: Bytes, size: Int, direction: Direction, editedFrom: Int64?) -> Int64
    where Bytes.Element == UInt8 {
        let current = sequence
        sequence += 1
        guard limits.recordPayloads else { return current }
        let flowBudget = max(0, limits.maxFlowBytes - storedBytes)
        let keep = min(size, limits.maxPayloadBytes, Int(clamping: flowBudget))
        if keep < size { truncated = true }
        if keep == 0 && flowBudget == 0 && editedFrom == nil {
            // The flow is over its budget: totals keep counting, no more message rows.
            return current
        }
        storedBytes += Int64(keep)
        let payload = Data(bytes.prefix(keep))
        bus.publish(
            .message(
                Message(
                    flowID: flowID, sequence: current, direction: direction, time: Date(), size: size, payload: payload,
                    editedFromSequence: editedFrom
                )
            )
        )
        return current
    }

    /// What the intercept filter sees of one chunk of this flow.
    func subject(direction: Direction, payload: Data) -> FilterSubject {
        FilterSubject(
            kind: kind, client: client, server: server, requestPayload: direction == .up ? payload : Data(),
            responsePayload: direction == .down ? payload : Data(), hasError: firstError != nil
        )
    }

    /// Records the first error only; later ones are usually consequences of it (a reset, then a failed write).
    func failed(_ phase: FlowErrorPhase, _ message: String) {
        guard firstError == nil, !isFinished else { return }
        let text = "\(phase.rawValue): \(message)"
        firstError = text
        bus.publish(.flowError(FlowError(flowID: flowID, phase: phase, time: Date(), message: message)))
    }

    func sideClosed(_ side: Side) {
        openSides.remove(side)
        guard openSides.isEmpty, !isFinished else { return }
        isFinished = true
        bus.publish(
            .flowClosed(
                FlowClosed(
                    flowID: flowID, time: Date(), bytesUp: counters.bytesUp, bytesDown: counters.bytesDown,
                    state: firstError == nil ? .closed : .error, error: firstError, payloadTruncated: truncated
                )
            )
        )
    }
}

@available(*, unavailable)
extension FlowRecorder: Sendable {}
