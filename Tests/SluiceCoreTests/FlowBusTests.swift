import NIOConcurrencyHelpers
import SluiceModel
import Testing

@testable import SluiceCore

@Suite struct FlowBusTests {
    /// A subscriber that is backed up until told to drain, like a store writer behind a slow disk.
    final class CongestedSubscriber: FlowBusSubscriber {
        private let state = NIOLockedValueBox((backedUp: true, waiting: [@Sendable () -> Void]()))

        func receive(_ event: ProxyEvent) {}

        var isBackedUp: Bool { state.withLockedValue { $0.backedUp } }

        func whenDrained(_ callback: @escaping @Sendable () -> Void) {
            let now = state.withLockedValue { state -> Bool in
                if state.backedUp { state.waiting.append(callback) }
                return !state.backedUp
            }
            if now { callback() }
        }

        func drain() {
            let waiting = state.withLockedValue { state in
                state.backedUp = false
                defer { state.waiting = [] }
                return state.waiting
            }
            for callback in waiting { callback() }
        }
    }

    @Test func aWaitingReaderIsWokenWhenTheStoreDrains() {
        let store = CongestedSubscriber()
        let bus = FlowBus(subscribers: [store])
        let woken = NIOLockedValueBox(0)
        bus.whenDrained { woken.withLockedValue { $0 += 1 } }
        #expect(bus.isBackedUp)
        #expect(woken.withLockedValue { $0 } == 0)
        store.drain()
        #expect(woken.withLockedValue { $0 } == 1)
    }

    @Test func afterStopNoWaitingReaderIsWoken() {
        // The engine stops the bus before its event loops go: a relay parked on the store must not be scheduled on
        // a loop that is gone (SwiftNIO reports it, and means to crash for it).
        let store = CongestedSubscriber()
        let bus = FlowBus(subscribers: [store])
        let woken = NIOLockedValueBox(0)
        bus.whenDrained { woken.withLockedValue { $0 += 1 } }
        bus.stop()
        store.drain()
        bus.whenDrained { woken.withLockedValue { $0 += 1 } }
        #expect(woken.withLockedValue { $0 } == 0)
    }
}
