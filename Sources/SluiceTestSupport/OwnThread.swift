import Foundation
import Testing

/// Runs each test it marks on a thread of its own rather than on Swift's cooperative thread pool.
///
/// The pool has one thread per core (two on the CI machine), and every async test needs one of them to take its next
/// step: to read a proxy's answer, to let an echo server answer, to notice a deadline. A synchronous test that computes
/// for seconds (the parser fuzzers) holds a pool thread all that time; two of them at once stopped every network test
/// in the run, long enough for their peers' timeouts to fire (a silent client closed by `request_head`, a relay closed
/// by `tunnel_idle`). On a thread of its own such a test is scheduled by the kernel beside the pool, and the pool stays
/// free. Mark the suites whose tests compute for long or block (sleep, wait on a semaphore), and those whose tests race
/// a timer against a peer, so that their steps never queue behind other tests'. Child tasks (`async let`, task groups)
/// run on the test's thread too, so a test that blocked its thread waiting for one would wait for itself; unstructured
/// tasks (`Task {}`, a test server's) run on the pool.
public struct OwnThread: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// Each test case (a test without arguments has one), never a suite as a whole.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let executor = ThreadExecutor()
        defer { executor.finish() }
        try await withTaskExecutorPreference(executor) {
            try await function()
        }
    }
}

extension Trait where Self == OwnThread {
    /// Each test on a thread of its own, off the cooperative pool (`OwnThread`).
    public static var ownThread: Self { OwnThread() }
}

/// A task executor with one thread, which runs the jobs given to it in order until `finish()`. A job that comes after
/// (a task the test left behind) goes to the global executor, so that nothing is dropped.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private static let marker = "sluice.ThreadExecutor"

    /// Whether the caller runs on the thread of a `ThreadExecutor`.
    public static var isCurrent: Bool {
        Thread.current.threadDictionary[marker] != nil
    }

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    init() {
        Thread { [self] in run() }.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        condition.lock()
        if finished {
            condition.unlock()
            globalConcurrentExecutor.enqueue(job)
            return
        }
        jobs.append(UnownedJob(job))
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread end once the jobs already given have run.
    func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        Thread.current.threadDictionary[Self.marker] = true
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            guard !jobs.isEmpty else {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
