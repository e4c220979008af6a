import Foundation

/// CPU time the calling thread has used, in seconds. The guards against a blowup in this target count it instead of
/// the wall clock, so that a machine busy with the rest of the suite (which may keep this thread waiting) does not
/// fail them.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// The thread's CPU time `work` took, in seconds.
func cpuSeconds(_ work: () -> Void) -> Double {
    let started = threadCPUSeconds()
    work()
    return threadCPUSeconds() - started
}
