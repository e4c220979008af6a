import Foundation
import NIOConcurrencyHelpers
import SluiceAPI
import SluiceCore
import SluiceModel

/// A recorder's intercept queue worked through its API: what is held is kept here from the event stream (`hold`,
/// `hold_released`) and read whole again on every (re)connection and poll; verdicts and the filter go to the
/// recorder. Several operators may work one queue: the first verdict wins, and a later one finds the message gone.
public final class RemoteIntercept: InterceptQueue {
    private let client: APIClient
    private let state = NIOLockedValueBox(State())

    private struct State {
        var held: [Int64: HeldMessage] = [:]
        var filter: Filter?
    }

    init(client: APIClient) {
        self.client = client
    }

    /// The recorder's filter as last read or set. Setting it sends it; when the recorder cannot be reached the
    /// filter stays as it was (the header keeps showing the one in force).
    public var filter: Filter? {
        get { state.withLockedValue { $0.filter } }
        set {
            let body = JSONObject().optionalString("filter", newValue?.text).line
            guard let reply = try? client.request(.PUT, "/api/intercept/filter", json: body), reply.succeeded else { return }
            state.withLockedValue { $0.filter = newValue }
        }
    }

    public var held: [HeldMessage] {
        state.withLockedValue { Array($0.held.values) }.sorted { $0.id < $1.id }
    }

    @discardableResult
    public func resolve(_ id: Int64, _ verdict: Verdict) -> Bool {
        guard let reply = try? client.request(.POST, "/api/intercept/\(id)", json: Self.verdictJSON(verdict)) else { return false }
        // Decided here, or before by someone else: either way it is held no more.
        if reply.succeeded || reply.status == 404 { noteReleased(id) }
        return reply.succeeded
    }

    public func resolveAll(_ verdict: Verdict) {
        for message in held { resolve(message.id, verdict) }
    }

    /// The body of `POST /api/intercept/{id}`.
    static func verdictJSON(_ verdict: Verdict) -> String {
        switch verdict {
        case .forward(let edited):
            var object = JSONObject().string("verdict", "forward")
            if let edited { object = object.base64("edited", edited) }
            return object.line
        case .drop: return JSONObject().string("verdict", "drop").line
        case .block(let message): return JSONObject().string("verdict", "block").string("message", message).line
        case .kill: return JSONObject().string("verdict", "kill").line
        }
    }

    // MARK: Kept up to date

    func noteHeld(_ message: HeldMessage) {
        state.withLockedValue { $0.held[message.id] = message }
    }

    func noteReleased(_ id: Int64) {
        _ = state.withLockedValue { $0.held.removeValue(forKey: id) }
    }

    /// A held command was decided (commands are released as decisions, not as `hold_released`).
    func noteDecided(flowID: FlowID, index: Int64) {
        state.withLockedValue { state in
            state.held = state.held.filter { _, message in
                !(message.flowID == flowID && message.command?.index == index)
            }
        }
    }

    /// Reads the queue and the filter again.
    func reload() throws(RemoteError) {
        let queue = try client.request(.GET, "/api/intercept")
        let filter = try client.request(.GET, "/api/intercept/filter")
        guard queue.succeeded, let items = queue.data as? [[String: Any]] else {
            throw RemoteError("the recorder's intercept queue cannot be read: \(queue.message)")
        }
        let held = items.compactMap(APIEventCoding.held)
        let filterText = (filter.data as? [String: Any])?["filter"] as? String
        state.withLockedValue { state in
            state.held = Dictionary(held.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            if filter.succeeded { state.filter = filterText.flatMap { try? Filter($0) } }
        }
    }
}
