import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SluiceAPI
import SluiceCore
import SluiceModel
import SluiceTUI

/// A running recorder's engine as the TUI drives it from another process, through the control API. What the screen
/// reads every frame (connections, listeners, the held queue) comes from a copy refreshed once a second
/// (`refresh`), never from a request on the UI thread; what the operator does (a verdict, a kill, a listener)
/// is one request, answered in a millisecond by a local recorder.
public final class RemoteEngine: EngineControl {
    public let client: APIClient
    let queue: RemoteIntercept
    private let cache = NIOLockedValueBox(Cache())

    private struct Cache {
        var connections: [OpenConnection] = []
        var listeners: [RunningListener] = []
        var schemes: [ListenScheme] = []
        /// The last refresh's failure; nil when the recorder answers.
        var problem: String?
    }

    public init(client: APIClient) {
        self.client = client
        self.queue = RemoteIntercept(client: client)
    }

    public var intercept: any InterceptQueue { queue }

    public var openConnections: [OpenConnection] { cache.withLockedValue { $0.connections } }
    public var listeners: [RunningListener] { cache.withLockedValue { $0.listeners } }
    public var listenSchemes: [ListenScheme] { cache.withLockedValue { $0.schemes } }
    /// Why the recorder cannot be read now; nil while it can.
    public var problem: String? { cache.withLockedValue { $0.problem } }

    @discardableResult
    public func listen(_ spec: ListenSpec) throws(EngineError) -> RunningListener {
        let reply: APIReply
        do {
            reply = try client.request(.POST, "/api/listeners", json: JSONObject().string("spec", spec.description).line)
        } catch {
            throw EngineError(message: error.message)
        }
        guard reply.succeeded, let object = reply.data as? [String: Any], let listener = Self.listener(object, schemes: listenSchemes) else {
            throw EngineError(message: reply.message)
        }
        cache.withLockedValue { $0.listeners.append(listener) }
        return listener
    }

    @discardableResult
    public func stopListening(_ id: Int) -> RunningListener? {
        guard let reply = try? client.request(.DELETE, "/api/listeners/\(id)"), reply.succeeded else { return nil }
        return cache.withLockedValue { cache in
            guard let index = cache.listeners.firstIndex(where: { $0.id == id }) else {
                return (reply.data as? [String: Any]).flatMap { Self.listener($0, schemes: cache.schemes) }
            }
            return cache.listeners.remove(at: index)
        }
    }

    @discardableResult
    public func kill(_ flowID: FlowID) -> Bool {
        guard let reply = try? client.request(.POST, "/api/flows/\(flowID.rawValue)/kill") else { return false }
        return reply.succeeded
    }

    @discardableResult
    public func send(_ data: Data, kind: MessageKind, direction: Direction, into flowID: FlowID) -> Bool {
        let body = JSONObject().string("direction", direction.rawValue).string("kind", kind == .binary ? "binary" : "text")
            .base64("base64", data).line
        guard let reply = try? client.request(.POST, "/api/flows/\(flowID.rawValue)/send", json: body) else { return false }
        return reply.succeeded
    }

    // MARK: Kept up to date

    /// Reads the listen schemes, then the open connections, listeners, held queue and filter again. Throws when
    /// the recorder cannot be reached (the copies stay as they were).
    public func refresh() throws(RemoteError) {
        do {
            if listenSchemes.isEmpty {
                let reply = try read("/api/schemes")
                let schemes = (reply.data as? [[String: Any]] ?? []).compactMap(Self.scheme)
                cache.withLockedValue { $0.schemes = schemes }
            }
            let connections = try read("/api/connections")
            let listeners = try read("/api/listeners")
            try queue.reload()
            cache.withLockedValue { cache in
                cache.connections = (connections.data as? [[String: Any]] ?? []).compactMap(Self.connection)
                cache.listeners = (listeners.data as? [[String: Any]] ?? []).compactMap { Self.listener($0, schemes: cache.schemes) }
                cache.problem = nil
            }
        } catch {
            cache.withLockedValue { $0.problem = error.message }
            throw error
        }
    }

    /// A GET that must succeed: a refusal (a wrong token's 401) is as much a failure as no answer.
    private func read(_ path: String) throws(RemoteError) -> APIReply {
        let reply = try client.request(.GET, path)
        guard reply.succeeded else { throw RemoteError("the recorder refused GET \(path): HTTP \(reply.status), \(reply.message)") }
        return reply
    }

    // MARK: Reading the API's JSON

    static func connection(_ object: [String: Any]) -> OpenConnection? {
        guard let flow = (object["flow"] as? NSNumber)?.int64Value, let kind = (object["kind"] as? String).flatMap(FlowKind.init(rawValue:)),
            let client = object["client"] as? String, let server = object["server"] as? String,
            let opened = (object["opened"] as? String).flatMap(Timestamp.parseISO8601)
        else { return nil }
        return OpenConnection(
            flowID: FlowID(flow), kind: kind, client: Endpoint(parsing: client), server: Endpoint(parsing: server), openedAt: opened,
            bytesUp: (object["bytes_up"] as? NSNumber)?.int64Value ?? 0, bytesDown: (object["bytes_down"] as? NSNumber)?.int64Value ?? 0
        )
    }

    static func listener(_ object: [String: Any], schemes: [ListenScheme]) -> RunningListener? {
        guard let id = (object["id"] as? NSNumber)?.intValue, let text = object["spec"] as? String,
            let spec = try? ListenSpec(parsing: text, schemes: schemes)
        else { return nil }
        var address: SocketAddress?
        if let bound = object["address"] as? String {
            let endpoint = Endpoint(parsing: bound)
            address = try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port)
        }
        return RunningListener(id: id, spec: spec, address: address)
    }

    static func scheme(_ object: [String: Any]) -> ListenScheme? {
        guard let name = object["name"] as? String else { return nil }
        let target: ListenScheme.TargetForm
        switch object["target"] as? String {
        case "none": target = .none
        case "endpoint": target = .endpoint
        case "url": target = .url
        default: return nil
        }
        let options = (object["options"] as? [String: [String]] ?? [:]).mapValues(Set.init)
        return ListenScheme(name: name, target: target, options: options)
    }
}
