import Testing

@testable import SluiceStore

@Suite struct CPUYieldTests {
    /// A clock the test moves, and a count of the yields.
    final class Fake: @unchecked Sendable {
        var now: UInt64 = 1_000
        var yields = 0
    }

    private func courtesy(_ fake: Fake, interval: UInt64 = 100) -> CPUYield {
        CPUYield(interval: interval, clock: { fake.now }, yield: { fake.yields += 1 })
    }

    @Test func yieldsOnceEachIntervalOfWork() {
        let fake = Fake()
        var courtesy = courtesy(fake)
        for step in [10, 50, 99] as [UInt64] {
            fake.now = 1_000 + step
            courtesy.tick()
        }
        #expect(fake.yields == 0)
        fake.now = 1_100
        courtesy.tick()
        #expect(fake.yields == 1)
        // The interval counts from the yield, not from the last tick.
        fake.now = 1_150
        courtesy.tick()
        #expect(fake.yields == 1)
        fake.now = 1_200
        courtesy.tick()
        #expect(fake.yields == 2)
    }

    @Test func aLongPieceOfWorkYieldsOnceNotOncePerInterval() {
        let fake = Fake()
        var courtesy = courtesy(fake)
        fake.now = 1_000 + 1_000
        courtesy.tick()
        #expect(fake.yields == 1)
        fake.now += 10
        courtesy.tick()
        #expect(fake.yields == 1)
    }

    @Test func neverYieldsWhileOff() {
        let fake = Fake()
        var courtesy = courtesy(fake)
        courtesy.isOn = false
        for _ in 0..<10 {
            fake.now += 500
            courtesy.tick()
        }
        #expect(fake.yields == 0)
        courtesy.isOn = true
        courtesy.tick()
        #expect(fake.yields == 1)
    }

    @Test func theRealClockMovesForward() {
        let first = CPUYield.monotonicNanoseconds()
        let second = CPUYield.monotonicNanoseconds()
        #expect(second >= first)
        #expect(first > 0)
    }
}
