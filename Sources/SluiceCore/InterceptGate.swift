import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SluiceModel
import Synchronization

/// Where held messages wait. The relay asks `shouldHold`; a held message parks its continuation here, and
/// whoever decides first wins: the operator (`resolve`), or the deadline (`holdTimeout`, then `defaultVerdict`),
/// so a forgotten hold never hangs a client forever.
///
/// Holding never blocks an event loop: the relay stops reading that direction and the continuation runs on the
/// flow's event loop when the verdict comes.
public final class InterceptGate: Sendable {
    public struct Settings: Sendable, Equatable {
        public var holdTimeout: TimeInterval
        public var defaultVerdict: Verdict

        public init(holdTimeout: TimeInterval = 60, defaultVerdict: Verdict = .forward(edited: nil)) {
            self.holdTimeout = holdTimeout
            self.defaultVerdict = defaultVerdict
        }
    }

    private struct Parked {
        var message: HeldMessage
        var eventLoop: EventLoop
        var timeout: Scheduled<Void>?
        var continuation: @Sendable (Verdict, Decider) -> Void
    }

    private struct State {
        var filter: Filter?
        var nextID: Int64 = 1
        var parked: [Int64: Parked] = [:]
    }

    private let state = NIOLockedValueBox(State())
    /// `state.filter != nil` and `state.parked.count`, written under the lock and read without it: every exchange
    /// and chunk asks, and almost always the answer is "nothing to do".
    private let hasFilter = Atomic<Bool>(false)
    private let parkedCount = Atomic<Int>(0)
    private let bus: FlowBus
    public let settings: Settings

    public init(bus: FlowBus, settings: Settings = Settings()) {
        self.bus = bus
        self.settings = settings
    }

    /// The intercept filter; nil holds nothing.
    public var filter: Filter? {
        get { state.withLockedValue { $0.filter } }
        set {
            state.withLockedValue { state in
                state.filter = newValue
                hasFilter.store(newValue != nil, ordering: .releasing)
            }
        }
    }

    /// Cheap check for the relay's hot path: nothing to evaluate when no filter is set.
    public var isActive: Bool { hasFilter.load(ordering: .acquiring) }

    public func shouldHold(_ subject: FilterSubject) -> Bool {
        guard isActive, let filter = state.withLockedValue({ $0.filter }) else { return false }
        return filter.matches(subject)
    }

    /// Parks a message. `continuation` runs exactly once, on `eventLoop`, with the verdict and who decided.
    public func hold(
        flowID: FlowID, sequence: Int64, direction: Direction, payload: Data, on eventLoop: EventLoop,
        command: Command? = nil, continuation: @escaping @Sendable (Verdict, Decider) -> Void
    ) {
        let now = Date()
        let message: HeldMessage = state.withLockedValue { state in
            let message = HeldMessage(
                id: state.nextID, flowID: flowID, sequence: sequence, direction: direction, payload: payload, heldAt: now,
                deadline: now.addingTimeInterval(settings.holdTimeout), command: command
            )
            state.nextID += 1
            state.parked[message.id] = Parked(message: message, eventLoop: eventLoop, timeout: nil, continuation: continuation)
            parkedCount.add(1, ordering: .releasing)
            return message
        }
        let timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(settings.holdTimeout * 1000))) { [self] in
            _ = self.decide(message.id, settings.defaultVerdict, by: .timeout)
        }
        let stillParked = state.withLockedValue { state -> Bool in
            guard state.parked[message.id] != nil else { return false }
            state.parked[message.id]?.timeout = timeout
            return true
        }
        if !stillParked { timeout.cancel() }
        bus.publish(.messageHeld(message))
    }

    /// Parks a command the policy holds for the operator, in the same queue as held messages: forward allows it,
    /// drop or kill blocks it; the hold timeout applies the default verdict (`hold_default`: forward allows).
    /// `continuation` runs exactly once, on `eventLoop`.
    /// The continuation also gets the operator's message when the verdict was `block(message:)`.
    public func hold(
        command: Command, on eventLoop: EventLoop, continuation: @escaping @Sendable (CommandDecision, Decider, String?) -> Void
    ) {
        hold(
            flowID: command.flowID, sequence: command.index, direction: .up, payload: Data(command.text.utf8), on: eventLoop,
            command: command
        ) { verdict, decider in
            var message: String?
            if case .block(let text) = verdict, !text.isEmpty { message = text }
            continuation(verdict.allowsCommand ? .allowed : .blocked, decider, message)
        }
    }

    /// Held messages, oldest first.
    public var held: [HeldMessage] {
        state.withLockedValue { $0.parked.values.map(\.message) }.sorted { $0.id < $1.id }
    }

    /// The operator's decision. Returns false when the message is no longer held (decided already, or gone).
    @discardableResult
    public func resolve(_ id: Int64, _ verdict: Verdict) -> Bool {
        decide(id, verdict, by: .operator)
    }

    /// Forwards (or drops, kills) everything held now.
    public func resolveAll(_ verdict: Verdict) {
        for message in held {
            decide(message.id, verdict, by: .operator)
        }
    }

    /// A flow ended: its held messages go nowhere. Called by the relays on close.
    public func discard(flowID: FlowID) {
        // A flow's messages are held from its own event loop, the one that calls this: none can be parking now.
        guard parkedCount.load(ordering: .acquiring) > 0 else { return }
        let ids = state.withLockedValue { $0.parked.values.filter { $0.message.flowID == flowID }.map(\.message.id) }
        for id in ids {
            decide(id, .kill, by: .closed)
        }
    }

    @discardableResult
    private func decide(_ id: Int64, _ verdict: Verdict, by decider: Decider) -> Bool {
        let removed = state.withLockedValue { state in
            let parked = state.parked.removeValue(forKey: id)
            if parked != nil { parkedCount.subtract(1, ordering: .releasing) }
            return parked
        }
        guard let parked = removed else { return false }
        parked.timeout?.cancel()
        let message = parked.message
        if let command = message.command {
            let decision: CommandDecision = verdict.allowsCommand ? .allowed : .blocked
            bus.publish(
                .commandDecided(CommandDecided(flowID: message.flowID, index: command.index, time: Date(), decision: decision, decidedBy: decider))
            )
        } else {
            bus.publish(
                .messageReleased(
                    MessageReleased(
                        flowID: message.flowID, holdID: id, sequence: message.sequence, time: Date(), verdict: verdict, decidedBy: decider
                    )
                )
            )
        }
        parked.eventLoop.execute {
            parked.continuation(verdict, decider)
        }
        return true
    }
}

extension Verdict {
    /// A held command runs on `forward` (an edit of its text is not applied: the keystrokes were already sent).
    var allowsCommand: Bool {
        if case .forward = self { return true }
        return false
    }
}
