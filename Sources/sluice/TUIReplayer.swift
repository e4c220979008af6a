import Dispatch
import Foundation
import SluiceCore
import SluiceHTTP
import SluiceModel
import SluiceStore
import SluiceTUI

/// The TUI's `r`: reads the flow's request or statement from the store (off the UI thread) and sends it again through
/// the running engine, so the replay is recorded as a new flow linked to the original.
struct TUIReplayer: FlowReplaying {
    let replayer: HTTPReplayer
    let databases: DatabaseReplayer
    let store: Store
    /// How long a re-run statement the policy holds waits for the operator.
    let holdTimeout: TimeInterval

    func replay(_ flowID: FlowID, completion: @escaping @Sendable (String, Bool) -> Void) {
        DispatchQueue.global().async {
            let request: ReplayRequest?
            do {
                request = try ReplayPlan.request(flowID, store: store)
            } catch {
                completion("cannot read flow \(flowID): \(error)", true)
                return
            }
            guard let request else {
                completion("flow \(flowID) is not an HTTP request; only HTTP flows can be replayed", true)
                return
            }
            replayer.replay(request) { result in
                if let error = result.error {
                    completion("replay of flow \(flowID) failed: \(error)", true)
                } else {
                    let new = result.flowID.map { "#\($0)" } ?? "a new flow"
                    let status = result.status.map(String.init) ?? "no status"
                    completion(
                        "replayed flow \(flowID) as \(new): \(status), \(Formatting.bytes(result.bytes)), "
                            + Formatting.duration(seconds: result.milliseconds / 1000),
                        false
                    )
                }
            }
        }
    }

    func rerun(_ statement: StatementRerun, password: String?, completion: @escaping @Sendable (RerunOutcome) -> Void) {
        DispatchQueue.global().async {
            let session: DatabaseSessionReplay
            do {
                session = try DatabaseSessionReplay.loadWhenStored {
                    try DatabaseSessionReplay.load(
                        statement.flowID, store: store, only: statement.index, target: nil, credentials: DatabaseCredentials(password: password)
                    )
                }
            } catch {
                completion(RerunOutcome(line: "cannot re-run: \(error)", failed: true))
                return
            }
            let name = "statement \(statement.index + 1) of flow \(statement.flowID)"
            databases.replay(
                session.original, on: session.spec, login: session.login, statements: session.statements, holdTimeout: holdTimeout
            ).whenSuccess { result in
                let new = result.flowID.map { " as #\($0)" } ?? ""
                if let outcome = result.outcomes.first {
                    let answer = outcome.error.map { "error \($0)" } ?? outcome.summary
                    completion(RerunOutcome(line: "re-ran \(name)\(new): \(answer)", failed: outcome.error != nil))
                } else {
                    completion(
                        RerunOutcome(
                            line: "re-run of \(name)\(new) failed: \(result.failure ?? "no answer")", failed: true,
                            loginRefused: result.loginRefused
                        )
                    )
                }
            }
        }
    }
}
