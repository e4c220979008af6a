import SluiceCore
import SluiceModel
import SluiceStore

/// The routes of sessions and their proxies (`/api/sessions…`): what a bastion's front end calls to let one user
/// reach one resource through Sluice, and to read back what they did there.
struct SessionRoutes: Sendable {
    /// Nil when this sluice has no store writer to keep sessions in (those routes answer 503).
    let sessions: SessionProxies?
    let store: Store?

    var routes: [APIRoute] {
        [
            APIRoute("POST", "/api/sessions", "Open a session: {\"user\": \"alice\", \"resource\": \"db-prod\"}") { request, _ in
                try open(request)
            },
            APIRoute("GET", "/api/sessions", "Sessions, newest last, with their open proxies (limit)") { request, _ in try list(request) },
            APIRoute("GET", "/api/sessions/{id}", "One session: its proxies, flows and commands counted") { _, parameters in
                try show(parameters)
            },
            APIRoute("DELETE", "/api/sessions/{id}", "End a session: all its proxies stop") { _, parameters in try end(parameters) },
            APIRoute("POST", "/api/sessions/{id}/proxy", "Open a proxy: {\"protocol\": \"ssh|postgres|mysql|tcp|http\", \"target\": \"host:port\"}") {
                request, parameters in try openProxy(request, parameters)
            },
            APIRoute("GET", "/api/sessions/{id}/proxy", "A session's open proxies") { _, parameters in try proxies(parameters) },
            APIRoute("DELETE", "/api/sessions/{id}/proxy/{proxy}", "Stop one of a session's proxies") { _, parameters in
                try closeProxy(parameters)
            },
            APIRoute("GET", "/api/sessions/{id}/commands", "The commands run through a session's proxies (risk, limit)") {
                request, parameters in try commands(request, parameters)
            },
        ]
    }

    // MARK: Routes

    private func open(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let body = try request.jsonObject(allowed: ["user", "resource"])
        let user = try stringField(body, "user", required: true) ?? ""
        let resource = try stringField(body, "resource", required: true) ?? ""
        let session = try registry().open(user: user, resource: resource)
        return .data(Self.json(session, proxies: []), message: "session \(session.id) open", status: 201)
    }

    private func list(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let limit = try request.integer("limit", default: 100, in: 1...10_000)
        let store = try readable()
        let found: [StoredSession]
        do {
            found = try store.sessions(limit: limit)
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
        let open = sessions?.all ?? [:]
        let items = found.map { Self.json($0, proxies: open[$0.id] ?? []) }
        return .data("[" + items.joined(separator: ",") + "]", message: "\(found.count) sessions")
    }

    private func show(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = SessionID(try pathIdentifier(parameters))
        let store = try readable()
        let found: StoredSession?
        let activity: (flows: Int, commands: Int)
        do {
            found = try store.session(id)
            activity = try store.activity(of: id)
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
        guard let found else { throw APIFailure(404, "no session \(id)") }
        return .data(Self.json(found, proxies: sessions?.proxies(of: id) ?? [], activity: activity))
    }

    private func end(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = SessionID(try pathIdentifier(parameters))
        let (session, stopped) = try registry().end(id)
        return .data(
            Self.json(session, proxies: []),
            message: "session \(id) ended; \(stopped.count) prox\(stopped.count == 1 ? "y" : "ies") stopped (open connections go on)"
        )
    }

    private func openProxy(_ request: APIRequest, _ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = SessionID(try pathIdentifier(parameters))
        let body = try request.jsonObject(allowed: ["protocol", "target"])
        let name = try stringField(body, "protocol", required: true, maxLength: 16) ?? ""
        guard let proxyProtocol = ProxyProtocol(rawValue: name) else {
            let known = ProxyProtocol.allCases.map(\.rawValue).joined(separator: ", ")
            throw APIFailure(400, "field 'protocol' must be one of \(known), got '\(name)'")
        }
        let text = try stringField(body, "target", required: true, maxLength: 300) ?? ""
        let target: Endpoint
        do {
            target = try ListenSpec.target(parsing: text)
        } catch {
            throw APIFailure(400, "field 'target' must be HOST:PORT ([v6]:PORT), port 1-65535: \(error.reason)")
        }
        let proxy = try registry().openProxy(for: id, speaking: proxyProtocol, to: target)
        return .data(Self.json(proxy), message: "proxy open on \(Endpoint(host: proxy.host, port: proxy.port))", status: 201)
    }

    private func proxies(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = SessionID(try pathIdentifier(parameters))
        guard let proxies = try registry().proxies(of: id) else { throw notOpen(id) }
        return .data("[" + proxies.map(Self.json).joined(separator: ",") + "]", message: "\(proxies.count) proxies")
    }

    private func closeProxy(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = SessionID(try pathIdentifier(parameters))
        let proxyID = try pathIdentifier(parameters, "proxy")
        guard let proxyID = Int(exactly: proxyID) else { throw APIFailure(404, "session \(id) has no proxy \(proxyID)") }
        let proxy = try registry().closeProxy(proxyID, of: id)
        return .data(Self.json(proxy), message: "proxy \(proxy.id) stopped; its open connections go on")
    }

    private func commands(_ request: APIRequest, _ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = SessionID(try pathIdentifier(parameters))
        let limit = try request.integer("limit", default: 100, in: 1...10_000)
        let risk = try request.riskLevel("risk")
        let store = try readable()
        do {
            guard try store.session(id) != nil else { throw APIFailure(404, "no session \(id)") }
            let found = try store.commands(session: id, minimumRisk: risk, limit: limit)
            return .data("[" + found.map(StoredJSON.command).joined(separator: ",") + "]", message: "\(found.count) commands")
        } catch let failure as APIFailure {
            throw failure
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
    }

    // MARK: Helpers

    private func registry() throws(APIFailure) -> SessionProxies {
        guard let sessions else { throw APIFailure(503, "sessions need the store's writer, which this sluice does not have") }
        return sessions
    }

    private func readable() throws(APIFailure) -> Store {
        guard let store else { throw APIFailure(503, "the store cannot be read") }
        return store
    }

    /// 404 for a session the store does not have, 409 for one that is over.
    private func notOpen(_ id: SessionID) -> APIFailure {
        guard let session = try? readable().session(id) else { return APIFailure(404, "no open session \(id)") }
        return APIFailure(409, "session \(id) is \(session.state.rawValue)")
    }

    static func json(_ session: StoredSession, proxies: [SessionProxy], activity: (flows: Int, commands: Int)? = nil) -> String {
        let list = Array(("[" + proxies.map(json).joined(separator: ",") + "]").utf8)
        let object = StoredJSON.session(session).json("proxies", list)
        guard let activity else { return object.line }
        return object.int("flows", Int64(activity.flows)).int("commands", Int64(activity.commands)).line
    }

    static func json(_ proxy: SessionProxy) -> String {
        JSONObject().int("id", Int64(proxy.id)).int("session", proxy.session.rawValue).string("host", proxy.host)
            .int("port", Int64(proxy.port)).string("protocol", proxy.proxyProtocol.rawValue).string("target", proxy.target.description).line
    }
}
