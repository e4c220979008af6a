import Dispatch
import Foundation
import Logging
import SluiceCore

/// SIGHUP reads the risk policy again from where it came from at start (`--policy`, else the config's `policy:`,
/// else the built-in rules) and gives it to the engine's connections; a policy that cannot be read leaves the
/// one in force, so a typo never drops the guard. Each reload says so in one log line.
struct PolicyReload: Sendable {
    let source: PolicySource
    let engine: Engine
    let logger: Logger

    /// Reloads now; returns the line it logged.
    @discardableResult
    func reload() -> String {
        do {
            let (policy, origin) = try source.load()
            engine.policy.replace(with: policy)
            let count = policy.rules.count
            let line = "policy reloaded from \(origin): \(count) rule\(count == 1 ? "" : "s")"
            logger.notice("\(line)")
            return line
        } catch {
            let line = "policy not reloaded, the previous one stays in force: \(error)"
            logger.error("\(line)")
            return line
        }
    }

    /// Reloads on every SIGHUP until the returned source is cancelled.
    func onHangUp() -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "sluice.policy-reload"))
        source.setEventHandler { reload() }
        source.resume()
        return source
    }
}
