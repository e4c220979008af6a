#if canImport(Glibc)
import Glibc
#endif

/// The CPU a background thread of the store asks for.
enum ThreadPriority {
    /// `SCHED_IDLE` from `<sched.h>`, which Swift's Glibc module does not export.
    private static let idlePolicy: Int32 = 5

    /// Makes the calling thread a background one (Linux's `SCHED_IDLE`): it runs only on a core nothing else wants,
    /// and any other thread that wakes up takes the core from it at once. Even nice 19 does not do that: a thread at
    /// nice 19 keeps the core for the rest of its time slice when an event loop wakes up. For work that may wait as
    /// long as the machine is busy (the search index); the store's writer must not, so it stays at a nice value.
    /// Returns false when the kernel refuses (the thread then keeps its priority).
    @discardableResult
    static func runInBackground() -> Bool {
        var parameters = sched_param()
        parameters.sched_priority = 0
        return sched_setscheduler(0, idlePolicy, &parameters) == 0
    }
}
