import Foundation
import SluiceTestSupport
import Testing

/// The trait that keeps long computing tests off the cooperative pool does move them, and keeps what an async test
/// expects of its task (its checks count for it; an await comes back).
@Suite(.ownThread) struct OwnThreadTests {
    @Test func aSynchronousTestRunsOnItsOwnThread() {
        #expect(onOwnThread())
    }

    @Test func anAsynchronousTestComesBackToItsThreadAfterAnAwait() async throws {
        try await Task.sleep(for: .milliseconds(10))
        #expect(onOwnThread())
        async let child = onOwnThread()
        #expect(await child, "its child tasks prefer its thread too")
        let unstructured = await Task { onOwnThread() }.value
        #expect(!unstructured, "a task of its own (a test's server) runs on the pool")
    }
}

/// Read synchronously: `Thread.current` is not for async code.
private func onOwnThread() -> Bool {
    ThreadExecutor.isCurrent
}
