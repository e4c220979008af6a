import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// The control API's resources over the running engine and its store. Every route is listed in `routes`, which
/// the server serves and `openapi.yaml` describes. Store reads happen on the server's request queue, never on an
/// event loop of the proxy.
public struct APIResources: Sendable {
    let engine: Engine
    let store: Store?
    let progress: (any StoreWriteProgress)?
    let schemes: [ListenScheme]
    /// Where the recordings are (`recordings/<flow>.cast`); nil without a data directory.
    let directory: DataDirectory?
    /// The open sessions and their proxies; nil without a store writer.
    let sessions: SessionProxies?
    /// Where acknowledgements of alerts are written; nil without a store writer.
    let acknowledging: (any AlertAcknowledging)?
    /// Replays flows through the engine; nil when this sluice cannot (no store).
    let replayer: (any APIFlowReplaying)?

    /// - Parameters:
    ///   - store: the store read back for flows, commands and alerts; nil when it cannot be opened (those routes
    ///     answer 503).
    ///   - schemes: the listen schemes new listeners may use (the executable's).
    ///   - sessions, acknowledging, replayer: the services behind the routes that change the store or send traffic;
    ///     a route whose service is nil answers 503.
    public init(
        engine: Engine, store: Store?, progress: (any StoreWriteProgress)?, schemes: [ListenScheme], directory: DataDirectory? = nil,
        sessions: SessionProxies? = nil, acknowledging: (any AlertAcknowledging)? = nil, replayer: (any APIFlowReplaying)? = nil
    ) {
        self.directory = directory
        self.engine = engine
        self.store = store
        self.progress = progress
        self.schemes = schemes
        self.sessions = sessions
        self.acknowledging = acknowledging
        self.replayer = replayer
    }

    public var routes: [APIRoute] {
        [
            APIRoute("GET", "/api/stats", "Open connections, their bytes, stored flows by kind, the store's backlog") { _, _ in try stats() },
            APIRoute("GET", "/api/flows", "Stored flows, newest last (filter: the filter language; session; limit)") { request, _ in
                try flows(request)
            },
            APIRoute("GET", "/api/flows/{id}", "One stored flow") { _, parameters in try flow(parameters) },
            APIRoute("POST", "/api/flows/{id}/replay", "Replay an HTTP or SQL flow: {\"target\", \"password\", \"statement\"} (all optional)") {
                request, parameters in try replay(request, parameters)
            },
            APIRoute("GET", "/api/commands", "Recorded commands (flow, session, risk: minimum level, limit)") { request, _ in
                try commands(request)
            },
            APIRoute("GET", "/api/alerts", "Recorded alerts (level: minimum, acknowledged, limit)") { request, _ in try alerts(request) },
            APIRoute("POST", "/api/alerts/{id}/ack", "Acknowledge an alert: {\"by\": \"name\"} (optional); the first acknowledgement stays") {
                request, parameters in try acknowledge(request, parameters)
            },
            APIRoute("GET", "/api/listeners", "The listeners running") { _, _ in listeners() },
            APIRoute("POST", "/api/listeners", "Start a listener: {\"spec\": \"tcp://127.0.0.1:9000=>10.0.0.5:7000\"}") { request, _ in
                try addListener(request)
            },
            APIRoute("DELETE", "/api/listeners/{id}", "Stop a listener; its open connections go on") { _, parameters in
                try stopListener(parameters)
            },
            APIRoute("GET", "/api/intercept", "Messages and commands held for a verdict") { _, _ in held() },
            APIRoute("POST", "/api/intercept/{id}", "Decide a hold: {\"verdict\": \"forward|drop|block|kill\", \"message\", \"edited\"}") {
                request, parameters in try decide(request, parameters)
            },
            APIRoute("GET", "/api/recordings", "Terminal session recordings: flow, size, last written") { _, _ in try recordings() },
            APIRoute("GET", "/api/recordings/{id}", "A recording's asciicast header and size") { _, parameters in
                try recording(parameters)
            },
            APIRoute("GET", "/api/recordings/{id}/cast", "A recording as asciicast v2 (application/x-asciicast)") { _, parameters in
                try recordingFile(parameters)
            },
            APIRoute("GET", "/api/events", "Server-Sent Events: flows, commands, alerts and holds as they happen") { _, _ in .events },
        ] + operatorRoutes + SessionRoutes(sessions: sessions, store: store).routes
    }

    // MARK: Routes

    private func stats() throws(APIFailure) -> APIResult {
        let open = engine.openConnections
        var byKind: [String: Int] = [:]
        if let store {
            do {
                byKind = try store.flowCountsByKind()
            } catch {
                throw APIFailure(503, "the store cannot be read: \(error)")
            }
        }
        let kinds = "{" + byKind.sorted { $0.key < $1.key }.map { "\(JSONObject.quote($0.key)):\($0.value)" }.joined(separator: ",") + "}"
        let backlog = progress.map { Int64($0.eventsReceived - $0.eventsWritten) }
        let data = JSONObject()
            .int("connections", Int64(open.count))
            .int("bytes_up", open.reduce(0) { $0 + $1.bytesUp }).int("bytes_down", open.reduce(0) { $0 + $1.bytesDown })
            .json("flows_by_kind", Array(kinds.utf8)).optionalInt("store_backlog", backlog)
            .optionalString("store_failure", progress?.failure).int("listeners", Int64(engine.listeners.count)).line
        return .data(data)
    }

    private func flows(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let limit = try request.integer("limit", default: 100, in: 1...10_000)
        let session = try request.identifier("session").map { SessionID($0) }
        var selection: Filter?
        if let text = request.query["filter"], !text.isEmpty {
            do {
                selection = try Filter(text)
            } catch {
                throw APIFailure(400, "filter '\(text)': \(error)")
            }
        }
        let store = try readable()
        do {
            var found = try store.flows(limit: limit, session: session)
            if let selection {
                found = try found.filter { flow throws(StoreError) in
                    let messages = try store.messages(of: flow.id)
                    let commands = try store.commands(flow: flow.id, limit: Int.max)
                    return selection.matches(flow.filterSubject(messages: messages, commands: commands))
                }
            }
            return .data("[" + found.map(StoredJSON.flow).joined(separator: ",") + "]", message: "\(found.count) flows")
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
    }

    private func flow(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = try identifier(parameters)
        let store = try readable()
        let found: StoredFlow?
        do {
            found = try store.flow(FlowID(Int64(id)))
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
        guard let found else { throw APIFailure(404, "no flow \(id)") }
        return .data(StoredJSON.flow(found))
    }

    private func commands(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let limit = try request.integer("limit", default: 100, in: 1...10_000)
        let flow = try request.identifier("flow").map { FlowID($0) }
        let session = try request.identifier("session").map { SessionID($0) }
        let risk = try request.riskLevel("risk")
        let store = try readable()
        do {
            let found = try store.commands(flow: flow, session: session, minimumRisk: risk, limit: limit)
            return .data("[" + found.map(StoredJSON.command).joined(separator: ",") + "]", message: "\(found.count) commands")
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
    }

    private func alerts(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let limit = try request.integer("limit", default: 100, in: 1...10_000)
        let level = try request.riskLevel("level")
        let acknowledged = try request.flag("acknowledged")
        let store = try readable()
        do {
            let found = try store.alerts(minimumLevel: level, acknowledged: acknowledged, limit: limit)
            return .data("[" + found.map(StoredJSON.alert).joined(separator: ",") + "]", message: "\(found.count) alerts")
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
    }

    private func acknowledge(_ request: APIRequest, _ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = try pathIdentifier(parameters)
        let by = try stringField(try request.optionalJSONObject(allowed: ["by"]), "by", required: false, maxLength: 200)
        guard let acknowledging else { throw APIFailure(503, "acknowledgements need the store's writer, which this sluice does not have") }
        let alert: StoredAlert?
        do {
            alert = try acknowledging.acknowledgeAlert(id, by: by)
        } catch {
            throw APIFailure(503, "the acknowledgement cannot be stored: \(error)")
        }
        guard let alert, let acknowledgement = alert.acknowledgement else { throw APIFailure(404, "no alert \(id)") }
        let who = acknowledgement.by.map { " by \($0)" } ?? ""
        return .data(StoredJSON.alert(alert), message: "acknowledged\(who) at \(Timestamp.iso8601(acknowledgement.time))")
    }

    private func replay(_ request: APIRequest, _ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = FlowID(try pathIdentifier(parameters))
        let body = try request.optionalJSONObject(allowed: ["target", "password", "statement"])
        let target = try stringField(body, "target", required: false, maxLength: 2048)
        // A password is never logged or stored: it goes to the replayer and no further.
        let password = try stringField(body, "password", required: false, maxLength: 1024)
        var statement: Int64?
        if let value = body["statement"] {
            guard let number = value as? Int, number >= 0 else {
                throw APIFailure(400, "field 'statement' must be a statement's index in its session (0, 1, …)")
            }
            statement = Int64(number)
        }
        guard let replayer else { throw APIFailure(503, "replays need the store, which this sluice cannot read") }
        let replayed = try replayer.replay(id, statement: statement, target: target, password: password)
        let details = replayed.details.map(JSONObject.quote).joined(separator: ",")
        return .data(
            JSONObject().optionalInt("flow", replayed.flow?.rawValue).int("replay_of", replayed.replayOf.rawValue)
                .string("summary", replayed.summary).json("details", Array("[\(details)]".utf8)).line,
            message: replayed.summary, status: 201
        )
    }

    private func listeners() -> APIResult {
        .data("[" + engine.listeners.map(Self.listenerJSON).joined(separator: ",") + "]")
    }

    private func addListener(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let body = try request.jsonObject(allowed: ["spec"])
        guard let text = body["spec"] as? String else { throw APIFailure(400, "field 'spec' must be a listen spec string") }
        let spec: ListenSpec
        do {
            spec = try ListenSpec(parsing: text, schemes: schemes)
        } catch {
            throw APIFailure(400, "spec: \(error)")
        }
        do {
            let listener = try engine.listen(spec)
            return .data(Self.listenerJSON(listener), message: "listening", status: 201)
        } catch {
            throw APIFailure(409, error.description)
        }
    }

    private func stopListener(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = try identifier(parameters)
        guard let stopped = engine.stopListening(id) else { throw APIFailure(404, "no listener \(id)") }
        sessions?.forget(listener: id)
        return .data(Self.listenerJSON(stopped), message: "stopped; its open connections go on")
    }

    private func held() -> APIResult {
        let held = engine.gate.held
        return .data("[" + held.map(APIEventCoding.heldJSON).joined(separator: ",") + "]", message: "\(held.count) held")
    }

    private func decide(_ request: APIRequest, _ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = try identifier(parameters)
        let body = try request.jsonObject(allowed: ["verdict", "message", "edited"])
        let message = body["message"] as? String ?? "blocked by the operator"
        var edited: Data?
        if let text = body["edited"] {
            guard let encoded = text as? String, let decoded = Data(base64Encoded: encoded) else {
                throw APIFailure(400, "field 'edited' must be the forwarded bytes in base64")
            }
            edited = decoded
        }
        guard edited == nil || body["verdict"] as? String == "forward" else {
            throw APIFailure(400, "field 'edited' goes only with the verdict forward")
        }
        let verdict: Verdict
        switch body["verdict"] as? String {
        case "forward": verdict = .forward(edited: edited)
        case "drop": verdict = .drop
        case "block": verdict = .block(message: message)
        case "kill": verdict = .kill
        default: throw APIFailure(400, "field 'verdict' must be forward, drop, block or kill")
        }
        // The first verdict wins: one given already (by an operator elsewhere, or the deadline) leaves nothing held.
        guard engine.gate.resolve(Int64(id), verdict) else { throw APIFailure(404, "nothing held with id \(id)") }
        return .data(#"{"id":\#(id)}"#, message: "decided: \(verdict.disposition)")
    }

    private func recordings() throws(APIFailure) -> APIResult {
        guard let directory else { return .data("[]") }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.recordingsPath)) ?? []
        let ids = names.compactMap { name -> Int64? in name.hasSuffix(".cast") ? Int64(name.dropLast(5)) : nil }.sorted()
        let items = ids.compactMap { id -> String? in
            let path = directory.recordingPath(FlowID(id))
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            return JSONObject().int("flow", id).int("size", (attributes[.size] as? Int64) ?? 0)
                .optionalString("modified", (attributes[.modificationDate] as? Date).map(Timestamp.iso8601)).line
        }
        return .data("[" + items.joined(separator: ",") + "]", message: "\(items.count) recordings")
    }

    private func recording(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let path = try recordingPath(parameters)
        // The header is the first line: read that much, never the whole recording.
        guard let file = FileHandle(forReadingAtPath: path) else { throw APIFailure(404, "no recording of flow \(parameters["id"] ?? "")") }
        defer { try? file.close() }
        let start = (try? file.read(upToCount: 64 * 1024)) ?? Data()
        let firstLine = start.prefix { $0 != UInt8(ascii: "\n") }
        let header: AsciicastHeader
        do {
            header = try AsciicastReader.parse(Data(firstLine) + Data("\n".utf8)).header
        } catch {
            throw APIFailure(500, "the recording's header cannot be read: \(error)")
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int64) ?? 0
        return .data(
            JSONObject().int("flow", Int64(parameters["id"] ?? "") ?? 0).int("size", size).int("width", Int64(header.width))
                .int("height", Int64(header.height)).optionalInt("timestamp", header.timestamp).optionalString("term", header.term)
                .optionalString("title", header.title).line
        )
    }

    private func recordingFile(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let path = try recordingPath(parameters)
        guard FileManager.default.fileExists(atPath: path) else { throw APIFailure(404, "no recording of flow \(parameters["id"] ?? "")") }
        return .file(path: path, contentType: "application/x-asciicast")
    }

    private func recordingPath(_ parameters: [String: String]) throws(APIFailure) -> String {
        let id = try identifier(parameters)
        guard let directory else { throw APIFailure(404, "no recording of flow \(id)") }
        return directory.recordingPath(FlowID(Int64(id)))
    }

    // MARK: Helpers

    private func readable() throws(APIFailure) -> Store {
        guard let store else { throw APIFailure(503, "the store cannot be read") }
        return store
    }

    private func identifier(_ parameters: [String: String]) throws(APIFailure) -> Int {
        guard let text = parameters["id"], let id = Int(text), id >= 0 else { throw APIFailure(400, "the id must be a whole number") }
        return id
    }

    static func listenerJSON(_ listener: RunningListener) -> String {
        JSONObject().int("id", Int64(listener.id)).string("spec", listener.spec.description)
            .string("scheme", listener.spec.scheme.name)
            .optionalString("address", listener.address.map { "\(Endpoint($0))" }).optionalInt("session", listener.session?.rawValue).line
    }

}
