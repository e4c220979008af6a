import Foundation
import SluiceCore
import SluiceModel

/// What an operator does to a running recorder besides reading it: the routes `sluice attach` drives (open
/// connections, kills, messages sent into a flow, the intercept filter, the listen schemes, where the store is).
extension APIResources {
    var operatorRoutes: [APIRoute] {
        [
            APIRoute("GET", "/api/recorder", "This recorder: version, process, data directory and store") { _, _ in recorder() },
            APIRoute("GET", "/api/connections", "Open connections: flow, kind, peers, bytes so far") { _, _ in connections() },
            APIRoute("POST", "/api/flows/{id}/kill", "Close an open flow's connections now") { _, parameters in try kill(parameters) },
            APIRoute("POST", "/api/flows/{id}/send", "Send a message into an open WebSocket flow: {\"direction\", \"kind\", \"text\" | \"base64\"}") {
                request, parameters in try send(request, parameters)
            },
            APIRoute("GET", "/api/intercept/filter", "The intercept filter (null: nothing is held)") { _, _ in interceptFilter() },
            APIRoute("PUT", "/api/intercept/filter", "Set the intercept filter: {\"filter\": \"~d example.com\" | null}") { request, _ in
                try setInterceptFilter(request)
            },
            APIRoute("GET", "/api/schemes", "The listen schemes a new listener may use, with their options") { _, _ in listenSchemes() },
        ]
    }

    private func recorder() -> APIResult {
        let data = JSONObject().string("version", SluiceVersion.current).int("pid", Int64(getpid()))
            .optionalString("data_dir", directory?.path).optionalString("store", directory?.databasePath).line
        return .data(data)
    }

    private func connections() -> APIResult {
        let items = engine.openConnections.sorted { $0.flowID.rawValue < $1.flowID.rawValue }.map { connection in
            JSONObject().int("flow", connection.flowID.rawValue).string("kind", connection.kind.rawValue)
                .endpoint("client", connection.client).endpoint("server", connection.server).time("opened", connection.openedAt)
                .int("bytes_up", connection.bytesUp).int("bytes_down", connection.bytesDown).line
        }
        return .data("[" + items.joined(separator: ",") + "]", message: "\(items.count) open")
    }

    private func kill(_ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = try flowIdentifier(parameters)
        guard engine.kill(FlowID(Int64(id))) else { throw APIFailure(404, "flow \(id) is not open") }
        return .data(#"{"flow":\#(id)}"#, message: "flow \(id) killed")
    }

    private func send(_ request: APIRequest, _ parameters: [String: String]) throws(APIFailure) -> APIResult {
        let id = try flowIdentifier(parameters)
        let body = try request.jsonObject(allowed: ["direction", "kind", "text", "base64"])
        guard let direction = (body["direction"] as? String).flatMap(Direction.init(rawValue:)) else {
            throw APIFailure(400, "field 'direction' must be up (to the server) or down (to the client)")
        }
        let kind: MessageKind
        switch body["kind"] as? String ?? "text" {
        case "text": kind = .text
        case "binary": kind = .binary
        default: throw APIFailure(400, "field 'kind' must be text or binary")
        }
        let data: Data
        switch (body["text"], body["base64"]) {
        case (let text as String, nil): data = Data(text.utf8)
        case (nil, let encoded as String):
            guard let decoded = Data(base64Encoded: encoded) else { throw APIFailure(400, "field 'base64' is not base64") }
            data = decoded
        default: throw APIFailure(400, "give the message as field 'text' or as field 'base64', not both")
        }
        guard engine.send(data, kind: kind, direction: direction, into: FlowID(Int64(id))) else {
            throw APIFailure(409, "flow \(id) is not an open WebSocket flow")
        }
        return .data(#"{"flow":\#(id),"size":\#(data.count)}"#, message: "sent")
    }

    private func interceptFilter() -> APIResult {
        .data(JSONObject().optionalString("filter", engine.gate.filter?.text).line)
    }

    private func setInterceptFilter(_ request: APIRequest) throws(APIFailure) -> APIResult {
        let body = try request.jsonObject(allowed: ["filter"])
        switch body["filter"] {
        case nil, is NSNull:
            engine.gate.filter = nil
            return .data(#"{"filter":null}"#, message: "intercept off")
        case let text as String where text.trimmingCharacters(in: .whitespaces).isEmpty:
            engine.gate.filter = nil
            return .data(#"{"filter":null}"#, message: "intercept off")
        case let text as String:
            do {
                engine.gate.filter = try Filter(text)
            } catch {
                throw APIFailure(400, "field 'filter': \(error)")
            }
            return .data(JSONObject().string("filter", text).line, message: "intercepting: \(text)")
        default:
            throw APIFailure(400, "field 'filter' must be a filter expression or null")
        }
    }

    private func listenSchemes() -> APIResult {
        let items = schemes.map { scheme in
            let target: String
            switch scheme.target {
            case .none: target = "none"
            case .endpoint: target = "endpoint"
            case .url: target = "url"
            }
            let options = "{" + scheme.options.keys.sorted().map { name in
                JSONObject.quote(name) + ":[" + (scheme.options[name] ?? []).sorted().map(JSONObject.quote).joined(separator: ",") + "]"
            }.joined(separator: ",") + "}"
            return JSONObject().string("name", scheme.name).string("target", target).json("options", Array(options.utf8)).line
        }
        return .data("[" + items.joined(separator: ",") + "]")
    }

    private func flowIdentifier(_ parameters: [String: String]) throws(APIFailure) -> Int {
        guard let text = parameters["id"], let id = Int(text), id >= 0 else { throw APIFailure(400, "the flow id must be a whole number") }
        return id
    }
}
