#if canImport(Glibc)
import Glibc
#endif

/// Lets the writer thread hand its core to whatever waits for it, once every `interval` of a batch's work.
///
/// A batch takes milliseconds to commit. The kernel's scheduler (EEVDF, with run-to-parity) lets a running thread
/// finish its time slice whatever its nice value, so a process of the relay's path woken onto the writer's core (a
/// client, a server, an event loop) waits for the rest of the slice: in the TCP round-trip benchmark, one round trip
/// in a thousand took 1–3 ms instead of 0.1. `sched_yield` every 100 µs of work lets it run at once, for about a
/// microsecond per yield.
///
/// Only while the writer keeps up (`isOn`): under a load that saturates the CPU, yielding would let every other
/// thread go first, the backlog would grow to the high-water mark, and then the relay itself would have to wait.
struct CPUYield {
    /// Nanoseconds of work between two yields.
    let interval: UInt64
    var isOn = true
    private var last: UInt64
    private let clock: () -> UInt64
    private let yield: () -> Void

    /// - Parameters: `clock` and `yield` are the monotonic clock in nanoseconds and `sched_yield`; tests pass their own.
    init(interval: UInt64 = 100_000, clock: @escaping () -> UInt64 = CPUYield.monotonicNanoseconds, yield: @escaping () -> Void = { sched_yield() }) {
        self.interval = interval
        self.clock = clock
        self.yield = yield
        self.last = clock()
    }

    /// Called between two pieces of work: yields when `interval` has passed since the last yield (or the start).
    mutating func tick() {
        guard isOn else { return }
        let now = clock()
        if now &- last >= interval {
            yield()
            last = clock()
        }
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
