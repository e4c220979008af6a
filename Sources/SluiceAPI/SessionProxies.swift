import NIOConcurrencyHelpers
import SluiceCore
import SluiceModel
import SluiceStore

/// What a session's proxy speaks, as `POST /api/sessions/{id}/proxy` names it.
public enum ProxyProtocol: String, CaseIterable, Sendable {
    case ssh, postgres, mysql, tcp, http

    /// The listen scheme that serves it: an `http` proxy is a reverse proxy to its target.
    var schemeName: String { self == .http ? "reverse+http" : rawValue }
}

/// A proxy the control API opened for a session: a listener of the engine (its id is the listener's) bound to a
/// port of `api.proxy_ports`, whose flows name the session.
public struct SessionProxy: Sendable, Equatable {
    public var id: Int
    public var session: SessionID
    public var host: String
    public var port: Int
    public var proxyProtocol: ProxyProtocol
    public var target: Endpoint
}

/// The sessions open in this run and the proxies each has open. A session's row is stored first (through the
/// store's writer, `SessionRecording`); its proxies are listeners of the engine carrying the session's id, so their
/// flows name it. Ending a session stops all its proxies; their open connections go on, as a stopped listener's do.
///
/// Ports are bound to learn whether they are free: a port in use (by anything) is skipped, a bounded number of
/// times, and the ports this registry holds or is binding right now are never tried twice at once, so concurrent
/// requests do not race for one port.
public final class SessionProxies: Sendable {
    public struct Settings: Sendable {
        /// The address proxies bind to (`api.proxy_host`).
        public var host: String
        /// The ports they are opened on (`api.proxy_ports`).
        public var ports: PortRange
        /// Ports tried for one proxy before the answer is that none is free.
        public var maxAttempts: Int

        public init(host: String, ports: PortRange, maxAttempts: Int = 256) {
            self.host = host
            self.ports = ports
            self.maxAttempts = maxAttempts
        }
    }

    private let engine: Engine
    private let recording: any SessionRecording
    /// Read to tell an ended session (409) from an unknown one (404).
    private let store: Store?
    public let settings: Settings
    private let state: NIOLockedValueBox<State>

    private struct State {
        /// The open sessions' proxies, by session and proxy id.
        var open: [SessionID: [Int: SessionProxy]] = [:]
        var picker: ProxyPortPicker
        /// Ports a proxy holds, or a request is binding now.
        var claimed: Set<Int> = []
    }

    public init(engine: Engine, recording: any SessionRecording, store: Store?, settings: Settings) {
        self.engine = engine
        self.recording = recording
        self.store = store
        self.settings = settings
        self.state = NIOLockedValueBox(State(picker: ProxyPortPicker(range: settings.ports)))
    }

    /// Stores a new session and opens it for proxies.
    public func open(user: String, resource: String) throws(APIFailure) -> StoredSession {
        let session: StoredSession
        do {
            session = try recording.openSession(user: user, resource: resource)
        } catch {
            throw APIFailure(503, "the session cannot be stored: \(error)")
        }
        state.withLockedValue { $0.open[session.id] = [:] }
        return session
    }

    /// Ends session `id`: stops its proxies, then stores its end.
    /// - Returns: the session as stored, and the proxies stopped.
    /// - Throws: 404 for an unknown session, 409 for one that is over already, 503 when the store cannot write.
    public func end(_ id: SessionID) throws(APIFailure) -> (session: StoredSession, stopped: [SessionProxy]) {
        guard let proxies = state.withLockedValue({ $0.open.removeValue(forKey: id) }) else { throw notOpen(id) }
        let stopped = proxies.values.sorted { $0.id < $1.id }
        for proxy in stopped { engine.stopListening(proxy.id) }
        state.withLockedValue { $0.claimed.subtract(stopped.map(\.port)) }
        let session: StoredSession?
        do {
            session = try recording.endSession(id)
        } catch {
            throw APIFailure(503, "session \(id)'s proxies are stopped, but its end cannot be stored: \(error)")
        }
        guard let session else { throw APIFailure(404, "no session \(id)") }
        return (session, stopped)
    }

    /// Whether session `id` is open in this run.
    public func isOpen(_ id: SessionID) -> Bool {
        state.withLockedValue { $0.open[id] != nil }
    }

    /// Session `id`'s proxies, oldest first; nil when it is not open.
    public func proxies(of id: SessionID) -> [SessionProxy]? {
        state.withLockedValue { $0.open[id] }.map { $0.values.sorted { $0.id < $1.id } }
    }

    /// Every open session's proxies.
    public var all: [SessionID: [SessionProxy]] {
        state.withLockedValue { $0.open }.mapValues { $0.values.sorted { $0.id < $1.id } }
    }

    /// Opens a proxy for session `id` on a free port of the range.
    /// - Throws: 400 for a protocol this sluice does not serve, 404 / 409 for a session that is not open, 503 when
    ///   no port of the range is free (or binding fails for another reason).
    public func openProxy(
        for id: SessionID, speaking proxyProtocol: ProxyProtocol, to target: Endpoint
    ) throws(APIFailure) -> SessionProxy {
        guard let scheme = engine.listenSchemes.first(where: { $0.name == proxyProtocol.schemeName }) else {
            let served = ProxyProtocol.allCases.filter { wanted in engine.listenSchemes.contains { $0.name == wanted.schemeName } }
            let names = served.map(\.rawValue).joined(separator: ", ")
            throw APIFailure(400, "field 'protocol': this sluice serves no \(proxyProtocol.rawValue) proxies (it serves: \(names))")
        }
        guard isOpen(id) else { throw notOpen(id) }
        var attempts = 0
        var lastProblem: String?
        while attempts < settings.maxAttempts {
            let port: Int? = state.withLockedValue { state in
                guard let port = state.picker.next(excluding: state.claimed) else { return nil }
                state.claimed.insert(port)
                return port
            }
            guard let port else { break }
            attempts += 1
            let spec = ListenSpec(scheme: scheme, listen: Endpoint(host: settings.host, port: port), target: target)
            let listener: RunningListener
            do {
                listener = try engine.listen(spec, session: id)
            } catch {
                _ = state.withLockedValue { $0.claimed.remove(port) }
                if error.addressInUse {
                    lastProblem = error.message
                    continue
                }
                throw APIFailure(503, error.message)
            }
            let proxy = SessionProxy(
                id: listener.id, session: id, host: settings.host, port: port, proxyProtocol: proxyProtocol, target: target
            )
            // The session may have ended while the port was bound: then the new listener goes too.
            let kept = state.withLockedValue { state -> Bool in
                guard state.open[id] != nil else {
                    state.claimed.remove(port)
                    return false
                }
                state.open[id]?[proxy.id] = proxy
                return true
            }
            guard kept else {
                engine.stopListening(listener.id)
                throw notOpen(id)
            }
            return proxy
        }
        let tried = attempts == 0 ? "every port is taken by this sluice's proxies" : "\(attempts) tried, all in use"
        throw APIFailure(
            503, "no free port in api.proxy_ports \(settings.ports) (\(tried))" + (lastProblem.map { "; last: \($0)" } ?? "")
        )
    }

    /// Stops proxy `proxyID` of session `id`.
    /// - Throws: 404 when the session is not open or has no such proxy.
    public func closeProxy(_ proxyID: Int, of id: SessionID) throws(APIFailure) -> SessionProxy {
        let removed = state.withLockedValue { state -> SessionProxy? in
            guard let proxy = state.open[id]?.removeValue(forKey: proxyID) else { return nil }
            state.claimed.remove(proxy.port)
            return proxy
        }
        guard let removed else { throw APIFailure(404, "session \(id) has no proxy \(proxyID)") }
        engine.stopListening(removed.id)
        return removed
    }

    /// Forgets the proxy that listener `id` was, stopped by other means (`DELETE /api/listeners/{id}`).
    func forget(listener id: Int) {
        state.withLockedValue { state in
            for session in state.open.keys {
                if let proxy = state.open[session]?.removeValue(forKey: id) { state.claimed.remove(proxy.port) }
            }
        }
    }

    private func notOpen(_ id: SessionID) -> APIFailure {
        guard let session = try? store?.session(id) else { return APIFailure(404, "no open session \(id)") }
        return APIFailure(409, "session \(id) is \(session.state.rawValue): open a new session for new proxies")
    }
}
