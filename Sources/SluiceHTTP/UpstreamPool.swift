import NIOCore
import NIOPosix
import SluiceCore

/// Idle server connections left by client connections that have gone, kept for the next client connection on the
/// same event loop: a new CONNECT tunnel (or a new client of the plain proxy) to a server Sluice has just talked to
/// reuses one instead of a new TCP connect and TLS handshake, as haproxy's `http-reuse` does.
///
/// Only connections that ended an exchange cleanly with keep-alive come here, never one that carried
/// connection-bound authentication (NTLM, Negotiate), and only when the proxy has no users: with proxy
/// authentication each client connection keeps its own. An idle connection leaves the pool when the server closes it
/// or after `idleSeconds`. One pool per event loop thread, touched only from that thread, so it needs no lock.
final class UpstreamPool {
    // Unchecked because each thread only ever sees its own value.
    nonisolated(unsafe) private static let perThread = ThreadSpecificVariable<UpstreamPool>()

    /// The calling event loop thread's pool.
    static var current: UpstreamPool {
        if let pool = perThread.currentValue { return pool }
        let pool = UpstreamPool()
        perThread.currentValue = pool
        return pool
    }

    /// Whether `connection`'s idle server connections may serve other client connections: not when the proxy
    /// authenticates its users.
    static func shares(_ connection: ClientConnection) -> Bool {
        !connection.configuration.access.requiresProxyAuthentication
    }

    let idleSeconds: Int64 = 30
    let maximumPerServer = 16
    let maximumTotal = 512

    private struct Entry {
        let upstream: Upstream
        /// Tells this stay in the pool from a later one of the same connection, for the idle timer.
        let stay: Int
    }

    private var idle: [Upstream.Key: [Entry]] = [:]
    private var total = 0
    private var stays = 0

    /// An idle connection to the server of `key` that is still open, taken out of the pool.
    func take(_ key: Upstream.Key) -> Upstream? {
        while var list = idle[key], let entry = list.popLast() {
            idle[key] = list.isEmpty ? nil : list
            total -= 1
            if entry.upstream.channel.isActive { return entry.upstream }
            entry.upstream.close()
        }
        return nil
    }

    /// Keeps `upstream` for a later client, or closes it when the pool is full.
    func put(_ upstream: Upstream) {
        guard upstream.channel.isActive, total < maximumTotal, (idle[upstream.key]?.count ?? 0) < maximumPerServer else {
            upstream.close()
            return
        }
        stays += 1
        let stay = stays
        idle[upstream.key, default: []].append(Entry(upstream: upstream, stay: stay))
        total += 1
        upstream.watchWhileIdle(in: self)
        let channel = upstream.channel
        channel.eventLoop.assumeIsolated().scheduleTask(in: .seconds(idleSeconds)) { [self] in
            remove(channel, stay: stay)?.close()
        }
    }

    /// The server closed an idle connection (or spoke out of turn on it).
    func closed(_ channel: Channel) {
        remove(channel)
    }

    /// Takes the connection out of the pool (only its stay `stay`, when given).
    @discardableResult
    private func remove(_ channel: Channel, stay: Int? = nil) -> Upstream? {
        for (key, list) in idle {
            guard let index = list.firstIndex(where: { $0.upstream.channel === channel && (stay == nil || $0.stay == stay) })
            else { continue }
            var rest = list
            let entry = rest.remove(at: index)
            idle[key] = rest.isEmpty ? nil : rest
            total -= 1
            return entry.upstream
        }
        return nil
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}
