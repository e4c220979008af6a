import NIOConcurrencyHelpers

/// Bytes that peers can make Sluice keep in memory beyond socket buffers (a WebSocket message being assembled),
/// counted across every connection against one limit, so that a few hostile peers cannot exhaust memory between
/// them even when each stays under its own per-message limit.
///
/// A connection reserves before it buffers and releases what it holds however it ends. Shared by every event
/// loop; reservations are per frame, not per byte, so one lock is cheap enough.
public final class ByteBudget: Sendable {
    public let limit: Int
    private let used = NIOLockedValueBox(0)

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Bytes reserved right now.
    public var inUse: Int { used.withLockedValue { $0 } }

    /// Takes `bytes` from the budget, or nothing when that would pass the limit.
    public func reserve(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        return used.withLockedValue { used in
            guard bytes <= limit - used else { return false }
            used += bytes
            return true
        }
    }

    /// Gives back `bytes` that an earlier `reserve` took.
    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.withLockedValue { $0 = max(0, $0 - bytes) }
    }
}
