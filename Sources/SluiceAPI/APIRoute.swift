import Foundation
import SluiceModel

/// One request as a route sees it: the method, the path's segments, the query, the body.
public struct APIRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var body: [UInt8]

    public init(method: String, target: String, body: [UInt8] = []) {
        self.method = method
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "")
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let item = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(item[0]).removingPercentEncoding ?? String(item[0])
                let raw = item.count == 2 ? String(item[1]).replacingOccurrences(of: "+", with: " ") : ""
                query[name] = raw.removingPercentEncoding ?? raw
            }
        }
        self.query = query
        self.body = body
    }

    /// The body as a JSON object with only `allowed` fields.
    /// - Throws: 400 for bad JSON, a body that is not an object, or a field not in `allowed`.
    public func jsonObject(allowed: Set<String>) throws(APIFailure) -> [String: Any] {
        guard !body.isEmpty else { throw APIFailure(400, "the body must be a JSON object") }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(body))
        } catch {
            throw APIFailure(400, "the body is not JSON: \(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else { throw APIFailure(400, "the body must be a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIFailure(400, "unknown field '\(unknown)' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        return object
    }

    /// The body as a JSON object with only `allowed` fields, or an empty one when there is no body (routes whose
    /// fields are all optional).
    public func optionalJSONObject(allowed: Set<String>) throws(APIFailure) -> [String: Any] {
        let blank: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t")]
        guard !body.allSatisfy(blank.contains) else { return [:] }
        return try jsonObject(allowed: allowed)
    }

    /// A query parameter as a risk level (`risk=high`: at least high).
    public func riskLevel(_ name: String) throws(APIFailure) -> RiskLevel? {
        guard let text = query[name] else { return nil }
        guard let level = RiskLevel(rawValue: text) else { throw APIFailure(400, "\(name) must be low, medium, high or critical") }
        return level
    }

    /// A query parameter as an id (`flow=12`, `session=3`).
    public func identifier(_ name: String) throws(APIFailure) -> Int64? {
        guard let text = query[name] else { return nil }
        guard let id = Int64(text), id >= 0 else { throw APIFailure(400, "\(name) must be an id (a whole number)") }
        return id
    }

    /// A query parameter as true or false.
    public func flag(_ name: String) throws(APIFailure) -> Bool? {
        switch query[name] {
        case nil: return nil
        case "true": return true
        case "false": return false
        default: throw APIFailure(400, "\(name) must be true or false")
        }
    }

    /// A query parameter as a whole number in `range`.
    public func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(APIFailure) -> Int {
        guard let text = query[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIFailure(400, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }
}

/// A path parameter (`{id}`) as an id: a whole number, not negative.
func pathIdentifier(_ parameters: [String: String], _ name: String = "id") throws(APIFailure) -> Int64 {
    guard let text = parameters[name], let id = Int64(text), id >= 0 else {
        let what = name == "id" ? "id" : name + " id"
        throw APIFailure(400, "the \(what) in the path must be a whole number, got '\(parameters[name] ?? "")'")
    }
    return id
}

/// A body field that must be a string, of at most `maxLength` characters; nil when absent and not `required`.
func stringField(_ body: [String: Any], _ name: String, required: Bool, maxLength: Int = 1024) throws(APIFailure) -> String? {
    guard let value = body[name] else {
        if required { throw APIFailure(400, "field '\(name)' is required") }
        return nil
    }
    guard let text = value as? String, !text.isEmpty, text.count <= maxLength else {
        throw APIFailure(400, "field '\(name)' must be a string of 1 to \(maxLength) characters")
    }
    return text
}

/// What a route answers: JSON `data` in the envelope, or the live event stream.
public enum APIResult: Sendable {
    /// `{"success": true, "message": …, "data": <json>}`; `json` is the data's JSON text.
    case data(String, message: String = "ok", status: Int = 200)
    /// `text/event-stream`: the connection stays open and receives events.
    case events
    /// A file as it is on disk (a recording), sent from the file without reading it into memory.
    case file(path: String, contentType: String)
}

/// A request refused: its HTTP status and the message of the envelope.
public struct APIFailure: Error, Sendable, Equatable {
    public var status: Int
    public var message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// A method and a path pattern (`/api/flows/{id}`) with the handler that serves them. The table of routes is what
/// the server serves and what `openapi.yaml` must describe: a test holds one against the other.
public struct APIRoute: Sendable {
    public var method: String
    public var pattern: String
    public var summary: String
    /// Throws `APIFailure` for a refusal; anything else it throws is a 500.
    public var handler: @Sendable (APIRequest, [String: String]) throws -> APIResult

    public init(
        _ method: String, _ pattern: String, _ summary: String,
        handler: @escaping @Sendable (APIRequest, [String: String]) throws -> APIResult
    ) {
        self.method = method
        self.pattern = pattern
        self.summary = summary
        self.handler = handler
    }

    /// The path's parameters when `path` fits the pattern (`{id}` takes one segment), else nil.
    func match(_ path: String) -> [String: String]? {
        let want = pattern.split(separator: "/")
        let have = path.split(separator: "/")
        guard want.count == have.count else { return nil }
        var parameters: [String: String] = [:]
        for (pattern, segment) in zip(want, have) {
            if pattern.hasPrefix("{") && pattern.hasSuffix("}") {
                parameters[String(pattern.dropFirst().dropLast())] = String(segment).removingPercentEncoding ?? String(segment)
            } else if pattern != segment {
                return nil
            }
        }
        return parameters
    }
}

/// Finds the route for a request: 404 for an unknown path, 405 for a known path with another method.
public struct APIRouter: Sendable {
    public let routes: [APIRoute]

    public init(routes: [APIRoute]) {
        self.routes = routes
    }

    public func answer(_ request: APIRequest) throws(APIFailure) -> APIResult {
        var pathKnown = false
        for route in routes {
            guard let parameters = route.match(request.path) else { continue }
            pathKnown = true
            guard route.method == request.method else { continue }
            do {
                return try route.handler(request, parameters)
            } catch let failure as APIFailure {
                throw failure
            } catch {
                throw APIFailure(500, "\(request.method) \(request.path) failed: \(error)")
            }
        }
        throw pathKnown
            ? APIFailure(405, "\(request.method) is not allowed on \(request.path)")
            : APIFailure(404, "no such resource: \(request.path)")
    }
}

/// The envelope every JSON answer comes in.
public enum APIEnvelope {
    public static func success(_ data: String, message: String) -> String {
        #"{"success":true,"message":"# + quote(message) + #","data":"# + data + "}"
    }

    public static func failure(_ message: String) -> String {
        #"{"success":false,"message":"# + quote(message) + #","data":null}"#
    }

    static func quote(_ text: String) -> String { JSONObject.quote(text) }
}
