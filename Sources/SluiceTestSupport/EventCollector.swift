import NIOConcurrencyHelpers
import SluiceCore
import SluiceModel

/// A bus subscriber that keeps every event, for assertions. `backedUp` lets a test play a slow store.
public final class EventCollector: FlowBusSubscriber {
    private let state = NIOLockedValueBox(State())

    private struct State {
        var events: [ProxyEvent] = []
        var backedUp = false
        var waiters: [@Sendable () -> Void] = []
    }

    public init() {}

    public func receive(_ event: ProxyEvent) {
        state.withLockedValue { $0.events.append(event) }
    }

    public var events: [ProxyEvent] { state.withLockedValue { $0.events } }

    public var isBackedUp: Bool { state.withLockedValue { $0.backedUp } }

    public func whenDrained(_ callback: @escaping @Sendable () -> Void) {
        let now: Bool = state.withLockedValue { state in
            if state.backedUp {
                state.waiters.append(callback)
                return false
            }
            return true
        }
        if now { callback() }
    }

    /// Plays a store falling behind (`true`) or catching up (`false`, which runs the waiting callbacks).
    public func setBackedUp(_ backedUp: Bool) {
        let waiters: [@Sendable () -> Void] = state.withLockedValue { state in
            state.backedUp = backedUp
            guard !backedUp else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0() }
    }

    public var messages: [Message] {
        events.compactMap { if case .message(let message) = $0 { return message } else { return nil } }
    }

    public var closes: [FlowClosed] {
        events.compactMap { if case .flowClosed(let closed) = $0 { return closed } else { return nil } }
    }

    public var errors: [FlowError] {
        events.compactMap { if case .flowError(let error) = $0 { return error } else { return nil } }
    }

    public var opens: [FlowOpened] {
        events.compactMap { if case .flowOpened(let opened) = $0 { return opened } else { return nil } }
    }

    public var requests: [HTTPRequestStarted] {
        events.compactMap { if case .httpRequest(let request) = $0 { return request } else { return nil } }
    }

    public var responses: [HTTPResponseStarted] {
        events.compactMap { if case .httpResponse(let response) = $0 { return response } else { return nil } }
    }
}
