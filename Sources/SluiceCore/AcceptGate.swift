import Foundation
import NIOCore
import NIOPosix

/// Sits in a listener's pipeline and decides when it accepts: not while `max_connections` client connections are
/// open, and not for a second after accepting failed for want of file descriptors (accepting again at once would
/// spin on the same error). Each pause is said once in the log, and so is its end.
///
/// A listener accepts by reading; holding back the read leaves new connections waiting in the kernel's backlog,
/// to be accepted when a connection closes, instead of accepting them only to fail them.
///
/// One descriptor is kept in reserve. NIO keeps polling a listener whose accept failed until an accept succeeds,
/// so out of descriptors it would spin on `EMFILE`; giving up the reserve lets that one accept succeed (the
/// connection then fails for want of a server connection, recorded as such) and the polling stop until the
/// backoff is over and the reserve is taken back.
final class AcceptGate: ChannelDuplexHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel
    typealias OutboundIn = Never

    enum Pause: Equatable {
        case atCapacity
        case outOfDescriptors
    }

    private let listener: String
    private let admits: @Sendable () -> Bool
    private let accepted: @Sendable (Channel) -> Void
    private let log: @Sendable (String) -> Void
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var backoff: Scheduled<Void>?
    private(set) var paused: Pause?
    private var spare: CInt = -1

    static let backoffAfterError = TimeAmount.seconds(1)

    /// - Parameters:
    ///   - admits: whether one more client connection may be accepted now.
    ///   - accepted: counts a connection the moment it is accepted (before its own event loop sets it up, so
    ///     that the next `admits` already sees it).
    ///   - log: where a pause and its end are said.
    init(
        listener: String, admits: @escaping @Sendable () -> Bool, accepted: @escaping @Sendable (Channel) -> Void,
        log: @escaping @Sendable (String) -> Void
    ) {
        self.listener = listener
        self.admits = admits
        self.accepted = accepted
        self.log = log
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        takeSpare()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        backoff?.cancel()
        if spare >= 0 { Glibc.close(spare) }
        spare = -1
        self.context = nil
    }

    private func takeSpare() {
        if spare < 0 { spare = open("/dev/null", O_RDONLY | O_CLOEXEC) }
    }

    func read(context: ChannelHandlerContext) {
        readPending = true
        acceptIfAdmitted()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // An accept made with the reserve's descriptor does not mean descriptors are back.
        if paused == .outOfDescriptors && spare >= 0 {
            paused = nil
            log("accepting on \(listener) again")
        }
        accepted(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    /// A connection closed somewhere: accept again if this listener was waiting for room.
    func roomFreed() {
        acceptIfAdmitted()
    }

    private func acceptIfAdmitted() {
        guard readPending, backoff == nil, let context else { return }
        guard admits() else {
            if paused != .atCapacity {
                paused = .atCapacity
                log("max_connections reached: \(listener) accepts no more until a connection closes")
            }
            return
        }
        if paused == .atCapacity {
            paused = nil
            log("accepting on \(listener) again")
        }
        readPending = false
        context.read()
    }

    /// Out of file descriptors (or kernel memory): wait a second before trying again, rather than spin.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let ioError = error as? IOError, Self.isResourceShortage(ioError.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        if paused != .outOfDescriptors {
            paused = .outOfDescriptors
            log(
                "cannot accept on \(listener): \(String(cString: strerror(ioError.errnoCode))) "
                    + "(open files limit \(FileDescriptorLimit.current)); trying again every second"
            )
        }
        if spare >= 0 {
            Glibc.close(spare)
            spare = -1
        }
        backoff?.cancel()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        backoff = context.eventLoop.scheduleTask(in: Self.backoffAfterError) {
            let gate = loopBound.value
            gate.backoff = nil
            gate.takeSpare()
            gate.acceptIfAdmitted()
        }
    }

    static func isResourceShortage(_ code: CInt) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }
}

@available(*, unavailable)
extension AcceptGate: Sendable {}

/// The process's limit on open files (`ulimit -n`), which bounds how many connections Sluice can hold.
public enum FileDescriptorLimit {
    /// Descriptors kept for everything but connections: listeners, the store, logs, certificates, event loops.
    static let reserve = 64

    /// The soft limit now.
    public static var current: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(clamping: min(limit.rlim_cur, UInt(Int32.max)))
    }

    /// Raises the soft limit to the hard one, as haproxy and nginx do: the default soft limit (1024) is far below
    /// what a proxy needs, and the hard limit is what the administrator allows.
    public static func raiseToHardLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Client connections that fit: each may need two descriptors (its own and its server's), beside the reserve.
    public static var connectionCapacity: Int {
        max(1, (min(current, 1 << 24) - reserve) / 2)
    }
}
