import Foundation
import NIOCore
import SluiceCore
import SluiceModel
import SluicePolicy

/// The commands of one SSH connection: each judged by the policy of the moment, numbered within the flow, and
/// published as `Command` events (with an `Alert` when the policy asks for more than `allow`). Shared by the
/// connection's channels, on its event loop.
final class SSHCommandLog {
    let flowID: FlowID
    let target: String
    private let bus: FlowBus
    private let policy: SharedPolicy
    let gate: InterceptGate
    /// Who logged in; set once the target accepted the login.
    var user = "?"
    private var nextIndex: Int64 = 0

    init(flowID: FlowID, target: Endpoint, bus: FlowBus, policy: SharedPolicy, gate: InterceptGate) {
        self.flowID = flowID
        self.target = "\(target)"
        self.bus = bus
        self.policy = policy
        self.gate = gate
    }

    /// Judges `text` and publishes it. Allowed and alerted commands are decided by the policy at once, blocked
    /// ones too; a held one is pending until the gate decides.
    func capture(_ text: String, kind: CommandKind, at time: Date = Date()) -> (Command, Judgement) {
        let judgement = policy.judge(text, kind: kind)
        let decision: CommandDecision
        switch judgement.action {
        case .allow, .alert: decision = .allowed
        case .block: decision = .blocked
        case .hold: decision = .pending
        }
        let command = Command(
            flowID: flowID, index: nextIndex, time: time, kind: kind, text: text, user: user, target: target,
            risk: judgement.risk, action: judgement.action, rule: judgement.rule, decision: decision,
            decidedBy: decision == .pending ? nil : .policy
        )
        nextIndex += 1
        bus.publish(.command(command))
        if judgement.action != .allow {
            let verb: String
            switch judgement.action {
            case .allow, .alert: verb = "ran"
            case .hold: verb = "held"
            case .block: verb = "blocked"
            }
            alert(level: judgement.risk, rule: judgement.rule ?? "policy", "\(user)@\(target) \(verb): \(text)", command: command.index, at: time)
        }
        return (command, judgement)
    }

    func finished(_ index: Int64, _ outcome: CommandOutcome) {
        bus.publish(.commandFinished(CommandFinished(flowID: flowID, index: index, time: Date(), outcome: outcome)))
    }

    func alert(level: RiskLevel, rule: String, _ message: String, command: Int64? = nil, at time: Date = Date()) {
        bus.publish(.alert(Alert(flowID: flowID, commandIndex: command, time: time, level: level, rule: rule, message: message)))
    }
}
