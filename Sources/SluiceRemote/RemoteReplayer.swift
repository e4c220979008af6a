import Dispatch
import NIOCore
import SluiceModel
import SluiceTUI

/// The TUI's `r` when attached: the recorder replays the flow, or re-runs one statement of a database session, in
/// its own engine (`POST /api/flows/{id}/replay`), so the replay is recorded there as a new flow linked to the
/// original and judged by its policy. The request waits for the replay to finish, off the UI thread.
public struct RemoteReplayer: FlowReplaying {
    let client: APIClient
    /// How long a replay may take: a statement the recorder's policy holds waits for an operator first.
    let timeout: Int64

    public init(client: APIClient, timeoutSeconds: Int64 = 180) {
        self.client = client
        self.timeout = timeoutSeconds
    }

    public func replay(_ flowID: FlowID, completion: @escaping @Sendable (String, Bool) -> Void) {
        let client = client
        let timeout = timeout
        DispatchQueue.global().async {
            do {
                let reply = try client.request(.POST, "/api/flows/\(flowID.rawValue)/replay", json: "{}", timeout: .seconds(timeout))
                completion(reply.succeeded ? "replayed flow \(flowID): \(reply.message)" : reply.message, !reply.succeeded)
            } catch {
                completion("replay of flow \(flowID) failed: \(error)", true)
            }
        }
    }

    public func rerun(_ statement: StatementRerun, password: String?, completion: @escaping @Sendable (RerunOutcome) -> Void) {
        let client = client
        let timeout = timeout
        DispatchQueue.global().async {
            // The password goes to the recorder's replay and no further: it neither logs nor stores it.
            let body = JSONObject().int("statement", statement.index).optionalString("password", password).line
            let name = "statement \(statement.index + 1) of flow \(statement.flowID)"
            do {
                let reply = try client.request(.POST, "/api/flows/\(statement.flowID.rawValue)/replay", json: body, timeout: .seconds(timeout))
                let details = (reply.data as? [String: Any])?["details"] as? [String] ?? []
                let failed = !reply.succeeded || !details.isEmpty
                let line = reply.succeeded ? "re-ran \(name): " + ([reply.message] + details).joined(separator: "; ") : reply.message
                completion(RerunOutcome(line: line, failed: failed, loginRefused: reply.status == 403))
            } catch {
                completion(RerunOutcome(line: "re-run of \(name) failed: \(error)", failed: true))
            }
        }
    }
}
