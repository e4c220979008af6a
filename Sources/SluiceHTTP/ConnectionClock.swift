import NIOCore

/// The one timer of a client connection, for whatever it waits on now: a request head, the next request on an idle
/// kept-alive connection, or its server's answer (`timeouts.request_head`, `keep_alive`, `server`).
///
/// Each wait is a deadline, set with a clock read and a store. The timer is scheduled only when a deadline comes
/// before the time it is set for; when it fires early it is set again for the current deadline. So an exchange on
/// a kept-alive connection costs no timer operation at all, where a timer per wait cost a schedule and a cancel (a
/// heap insert, a promise, a lock) each time.
final class ConnectionClock {
    enum Wait: Equatable {
        case requestHead
        case keepAlive
        case server
    }

    /// What the connection waits on now, if anything.
    private(set) var waiting: Wait?
    private var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerFires: NIODeadline?
    private let eventLoop: EventLoop
    /// Called on the event loop when the deadline of a wait has passed (the wait is over by then).
    private let expired: (Wait) -> Void

    init(eventLoop: EventLoop, expired: @escaping (Wait) -> Void) {
        self.eventLoop = eventLoop
        self.expired = expired
    }

    func wait(_ wait: Wait, seconds: Double, from start: NIODeadline = .now()) {
        let deadline = start + .fromSeconds(seconds)
        waiting = wait
        self.deadline = deadline
        if let fires = timerFires, fires <= deadline { return }  // it will look again when it fires
        schedule(deadline)
    }

    /// Nothing is awaited any more. The timer, when it fires, finds nothing to do.
    func stop() {
        waiting = nil
        deadline = nil
    }

    /// The connection is done with its clock.
    func cancel() {
        stop()
        timer?.cancel()
        timer = nil
        timerFires = nil
    }

    private func schedule(_ deadline: NIODeadline) {
        timer?.cancel()
        timerFires = deadline
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in self?.rang() }
    }

    private func rang() {
        timer = nil
        timerFires = nil
        guard let waiting, let deadline else { return }
        if NIODeadline.now() < deadline {
            schedule(deadline)
            return
        }
        stop()
        expired(waiting)
    }
}

@available(*, unavailable)
extension ConnectionClock: Sendable {}
