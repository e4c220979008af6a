import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceTestSupport
import Testing

@testable import SluiceHTTP

/// The connection clock on a real event loop: a later deadline is kept without a new timer, an earlier one takes
/// the timer over, a stopped wait never expires.
@Suite(.ownThread) struct ConnectionClockTests {
    private final class Box: @unchecked Sendable {
        // @unchecked: touched only on the one event loop.
        var clock: ConnectionClock?
    }

    private func run(_ steps: @escaping @Sendable (ConnectionClock) -> Void, waitFor seconds: Double) async throws -> [(ConnectionClock.Wait, Double)] {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let expired = NIOLockedValueBox<[(ConnectionClock.Wait, Double)]>([])
        let start = NIODeadline.now()
        let box = Box()
        try await loop.submit {
            let clock = ConnectionClock(eventLoop: loop) { wait in
                expired.withLockedValue { $0.append((wait, Double((NIODeadline.now() - start).nanoseconds) / 1e9)) }
            }
            box.clock = clock
            steps(clock)
        }.get()
        try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        try await loop.submit { box.clock?.cancel() }.get()
        try await group.shutdownGracefully()
        return expired.withLockedValue { $0 }
    }

    @Test func aLaterDeadlineIsHonouredWhenTheTimerFiresEarly() async throws {
        let expired = try await run({ clock in
            clock.wait(.keepAlive, seconds: 0.2)
            clock.wait(.server, seconds: 0.5)  // later: the timer set for 0.2 s looks again then
        }, waitFor: 2)
        #expect(expired.map(\.0) == [.server])
        #expect((expired.first?.1 ?? 0) >= 0.45)
    }

    @Test func anEarlierDeadlineTakesTheTimerOver() async throws {
        let expired = try await run({ clock in
            clock.wait(.keepAlive, seconds: 5)
            clock.wait(.requestHead, seconds: 0.2)
        }, waitFor: 2)
        #expect(expired.map(\.0) == [.requestHead])
        #expect((expired.first?.1 ?? 9) < 2)
    }

    @Test func aStoppedWaitNeverExpires() async throws {
        let expired = try await run({ clock in
            clock.wait(.server, seconds: 0.1)
            clock.stop()
        }, waitFor: 0.4)
        #expect(expired.isEmpty)
    }
}
