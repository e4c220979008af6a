import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP
import SluiceModel
import SluiceStore

/// The control API's `POST /api/flows/{id}/replay`: the same replays as `sluice replay ID` and the TUI's `r`, through
/// the running engine. An HTTP flow is sent again as its request (`ReplayPlan.request`, `HTTPReplayer`); a PostgreSQL
/// or MySQL flow as its session, a login and its statements (`DatabaseSessionReplay`, `DatabaseReplayer`). Each is
/// recorded as a new flow naming the original; the answer is `sluice replay`'s line for it.
struct APIReplayer: APIFlowReplaying {
    let http: HTTPReplayer
    let databases: DatabaseReplayer
    let store: Store
    /// How long a replayed statement the policy holds waits for the operator.
    let holdTimeout: TimeInterval

    func replay(_ id: FlowID, statement: Int64?, target: String?, password: String?) throws(APIFailure) -> APIReplayed {
        let flow: StoredFlow?
        do {
            flow = try store.flow(id)
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
        guard let flow else { throw APIFailure(404, "no flow \(id)") }
        if DatabaseSessionReplay.kinds.contains(flow.kind) {
            return try replaySession(id, statement: statement, target: target, password: password)
        }
        guard statement == nil else { throw APIFailure(400, "field 'statement': flow \(id) is \(flow.kind), not a database session") }
        guard flow.kind == FlowKind.http.rawValue, flow.http != nil else {
            throw APIFailure(409, "flow \(id) is \(flow.kind): only HTTP requests and PostgreSQL or MySQL sessions can be replayed")
        }
        return try replayRequest(id, target: target)
    }

    private func replayRequest(_ id: FlowID, target: String?) throws(APIFailure) -> APIReplayed {
        let override: URLOverride?
        do {
            override = try target.map { text throws(RequestTargetError) in try URLOverride(parsing: text) }
        } catch {
            throw APIFailure(400, "field 'target': an HTTP flow goes to http://HOST:PORT or https://HOST:PORT: \(error)")
        }
        let request: ReplayRequest?
        do {
            request = try ReplayPlan.request(id, store: store)
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
        guard let request else { throw APIFailure(409, "flow \(id) has no recorded request to send again") }
        let result: ReplayResult
        do {
            // Off the event loops: the API runs its routes on a queue of their own.
            result = try http.replay(request, target: override).wait()
        } catch {
            throw APIFailure(502, "the replay of flow \(id) was lost: \(error)")
        }
        let line = ReplayReport.line(result)
        if result.error != nil {
            // No new flow: it was refused before it started (what was recorded cannot be sent as it was).
            throw APIFailure(result.flowID == nil ? 409 : 502, line)
        }
        return APIReplayed(flow: result.flowID, replayOf: id, summary: line)
    }

    private func replaySession(_ id: FlowID, statement: Int64?, target: String?, password: String?) throws(APIFailure) -> APIReplayed {
        var destination: Endpoint?
        if let target {
            guard let parsed = DatabaseTarget.parse(target) else {
                throw APIFailure(400, "field 'target': a database session goes to HOST:PORT, got '\(target)'")
            }
            destination = parsed
        }
        let session: DatabaseSessionReplay
        do {
            session = try DatabaseSessionReplay.loadWhenStored {
                try DatabaseSessionReplay.load(
                    id, store: store, only: statement, target: destination, credentials: DatabaseCredentials(password: password)
                )
            }
        } catch let error as DatabaseReplayError {
            throw APIFailure(409, error.description)
        } catch {
            throw APIFailure(503, "the store cannot be read: \(error)")
        }
        let replayed = databases.replay(
            session.original, on: session.spec, login: session.login, statements: session.statements, holdTimeout: holdTimeout
        )
        // The replayer reports every failure in its result; its future itself never fails.
        let result = (try? replayed.wait()) ?? DatabaseReplayResult(original: id, failure: "the replay was lost")
        let lines = DatabaseReplayReport.lines(result, replay: session)
        let summary = lines.first ?? ""
        if result.failure != nil { throw APIFailure(result.loginRefused ? 403 : 502, lines.joined(separator: "; ")) }
        return APIReplayed(flow: result.flowID, replayOf: id, summary: summary, details: Array(lines.dropFirst()))
    }
}
