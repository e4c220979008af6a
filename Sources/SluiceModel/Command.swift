import Foundation

/// What sort of text a command is: a line typed at an interactive shell, the command of an SSH `exec` request,
/// or an SQL statement.
public enum CommandKind: String, Sendable, CaseIterable, Codable {
    case shell
    case exec
    case sql

    /// The policy reads shell lines and exec commands the same way; SQL has its own rules.
    public var isSQL: Bool { self == .sql }
}

/// What the policy says to do with a command. Ordered by severity: `allow < alert < hold < block`.
public enum PolicyAction: String, Sendable, CaseIterable, Codable, Comparable {
    /// Let it through; recorded as every command is.
    case allow
    /// Let it through and raise an alert.
    case alert
    /// Stop it until the operator decides (or the hold times out and the default verdict applies).
    case hold
    /// Never let it reach the server.
    case block

    private var rank: Int {
        switch self {
        case .allow: return 0
        case .alert: return 1
        case .hold: return 2
        case .block: return 3
        }
    }

    public static func < (lhs: PolicyAction, rhs: PolicyAction) -> Bool { lhs.rank < rhs.rank }
}

/// Who settled a held message or command.
public enum Decider: String, Sendable, CaseIterable, Codable {
    /// The operator, in the TUI (or through the control surface).
    case `operator`
    /// A policy rule, without a hold.
    case policy
    /// Nobody decided before the hold's deadline; the default verdict applied.
    case timeout
    /// The connection ended while the decision was pending.
    case closed
}

/// Whether a command reached the server.
public enum CommandDecision: String, Sendable, CaseIterable, Codable {
    /// Waiting for the operator.
    case pending
    case allowed
    case blocked
}

/// A command as captured and judged: an SSH shell line or exec command, or an SQL statement.
public struct Command: Sendable, Equatable {
    public var flowID: FlowID
    /// Position among the flow's commands, from 0.
    public var index: Int64
    public var time: Date
    public var kind: CommandKind
    public var text: String
    /// Who ran it: the SSH or database user.
    public var user: String
    /// Where it ran, e.g. `10.0.0.7:22`.
    public var target: String
    public var risk: RiskLevel
    /// What the policy asked for.
    public var action: PolicyAction
    /// The rule that set the risk and action; nil when no rule matched (low risk, the low level's action).
    public var rule: String?
    /// What became of it so far, and who settled it (nil while pending).
    public var decision: CommandDecision
    public var decidedBy: Decider?
    /// The database an SQL statement ran in.
    public var database: String?
    /// An SQL statement's bind parameters, as text (binary ones in hex; redacted ones replaced), in order.
    public var parameters: [String]?

    public init(
        flowID: FlowID, index: Int64, time: Date, kind: CommandKind, text: String, user: String, target: String,
        risk: RiskLevel, action: PolicyAction, rule: String?, decision: CommandDecision, decidedBy: Decider?,
        database: String? = nil, parameters: [String]? = nil
    ) {
        self.flowID = flowID
        self.index = index
        self.time = time
        self.kind = kind
        self.text = text
        self.user = user
        self.target = target
        self.risk = risk
        self.action = action
        self.rule = rule
        self.decision = decision
        self.decidedBy = decidedBy
        self.database = database
        self.parameters = parameters
    }
}

/// A held command was allowed or blocked.
public struct CommandDecided: Sendable, Equatable {
    public var flowID: FlowID
    public var index: Int64
    public var time: Date
    public var decision: CommandDecision
    public var decidedBy: Decider

    public init(flowID: FlowID, index: Int64, time: Date, decision: CommandDecision, decidedBy: Decider) {
        self.flowID = flowID
        self.index = index
        self.time = time
        self.decision = decision
        self.decidedBy = decidedBy
    }
}

/// How a command ended, when the protocol says: an exec's exit status or signal, an SQL statement's result.
public struct CommandOutcome: Sendable, Equatable, Codable {
    public var exitStatus: Int?
    public var exitSignal: String?
    /// An SQL command tag (`SELECT 3`, `UPDATE 1`) or rows affected.
    public var result: String?
    public var error: String?

    public init(exitStatus: Int? = nil, exitSignal: String? = nil, result: String? = nil, error: String? = nil) {
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.result = result
        self.error = error
    }
}

public struct CommandFinished: Sendable, Equatable {
    public var flowID: FlowID
    public var index: Int64
    public var time: Date
    public var outcome: CommandOutcome

    public init(flowID: FlowID, index: Int64, time: Date, outcome: CommandOutcome) {
        self.flowID = flowID
        self.index = index
        self.time = time
        self.outcome = outcome
    }
}

/// Something the operator should see: a command the policy flagged, or a condition of the recorder itself.
public struct Alert: Sendable, Equatable {
    public var flowID: FlowID?
    /// The command that raised it, by its index in the flow.
    public var commandIndex: Int64?
    public var time: Date
    public var level: RiskLevel
    public var rule: String
    public var message: String

    public init(flowID: FlowID?, commandIndex: Int64?, time: Date, level: RiskLevel, rule: String, message: String) {
        self.flowID = flowID
        self.commandIndex = commandIndex
        self.time = time
        self.level = level
        self.rule = rule
        self.message = message
    }
}
