import NIOConcurrencyHelpers
import SluiceModel

/// Something that takes the engine's events: the store, the headless log, later the TUI.
///
/// `receive` is called on event-loop threads, in order per flow, and must not block. A subscriber that must not
/// lose events (the store) reports `isBackedUp` when its backlog is large; the relay then stops reading from the
/// network until `whenDrained` fires, so a slow disk slows the connections instead of growing memory.
public protocol FlowBusSubscriber: AnyObject, Sendable {
    func receive(_ event: ProxyEvent)
    /// True while this subscriber wants the engine to stop producing.
    var isBackedUp: Bool { get }
    /// Calls `callback` once, from any thread, when the backlog has fallen back (at once if it is not backed up).
    func whenDrained(_ callback: @escaping @Sendable () -> Void)
    /// Why the engine must accept no new connections right now (a store that cannot record), or nil.
    var refusal: String? { get }
}

extension FlowBusSubscriber {
    /// Subscribers that may fall behind or coalesce never ask the engine to wait.
    public var isBackedUp: Bool { false }
    public func whenDrained(_ callback: @escaping @Sendable () -> Void) { callback() }
    public var refusal: String? { nil }
}

/// Fans every event out to a fixed set of subscribers. The set is fixed at start, so publishing takes no lock.
public final class FlowBus: Sendable {
    private let subscribers: [any FlowBusSubscriber]
    /// False once the engine stops: drain callbacks still waiting then (a relay parked on a full store) would
    /// schedule work on event loops that are gone.
    private let running = NIOLockedValueBox(true)

    public init(subscribers: [any FlowBusSubscriber]) {
        self.subscribers = subscribers
    }

    public func publish(_ event: ProxyEvent) {
        for subscriber in subscribers {
            subscriber.receive(event)
        }
    }

    /// True while any subscriber asks the engine to stop reading.
    public var isBackedUp: Bool {
        subscribers.contains { $0.isBackedUp }
    }

    /// Why no new connection may be accepted now, when a subscriber says so.
    public var refusal: String? {
        for subscriber in subscribers {
            if let refusal = subscriber.refusal { return refusal }
        }
        return nil
    }

    /// Calls `callback` once no subscriber is backed up, unless `stop()` came first.
    public func whenDrained(_ callback: @escaping @Sendable () -> Void) {
        guard let congested = subscribers.first(where: { $0.isBackedUp }) else {
            // Under the lock, so that once `stop()` returns no callback is running or will run.
            running.withLockedValue { running in
                if running { callback() }
            }
            return
        }
        congested.whenDrained { [self] in
            self.whenDrained(callback)
        }
    }

    /// Drops every drain callback from here on. The engine calls it before its event loops shut down; callbacks
    /// only schedule work on those loops and must not block.
    public func stop() {
        running.withLockedValue { $0 = false }
    }
}
