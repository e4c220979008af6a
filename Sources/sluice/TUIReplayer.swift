import Dispatch
import Foundation
import SluiceHTTP
import SluiceModel
import SluiceStore
import SluiceTUI

/// The TUI's `r`: reads the flow's request from the store (off the UI thread) and replays it through the running
/// engine, so the replay is recorded as a new flow linked to the original.
struct TUIReplayer: FlowReplaying {
    let replayer: HTTPReplayer
    let store: Store

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
}
