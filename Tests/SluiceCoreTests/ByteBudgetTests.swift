import SluiceCore
import Testing

@Suite struct ByteBudgetTests {
    @Test func reservationsStopAtTheLimitAndReleasesGiveBack() {
        let budget = ByteBudget(limit: 100)
        #expect(budget.reserve(60))
        #expect(!budget.reserve(41), "60 + 41 would pass 100")
        #expect(budget.inUse == 60, "a refused reservation takes nothing")
        #expect(budget.reserve(40))
        budget.release(70)
        #expect(budget.inUse == 30)
        budget.release(1_000)
        #expect(budget.inUse == 0, "never below zero")
        #expect(budget.reserve(0))
    }
}
