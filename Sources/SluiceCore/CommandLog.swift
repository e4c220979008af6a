import Foundation
import SluiceModel
import SluicePolicy

/// The commands of one flow (an SSH connection's shell lines and execs, a database session's statements): each
/// judged by the policy of the moment, numbered within the flow, and published as `Command` events (with an
/// `Alert` when the policy asks for more than `allow`). Used on the flow's event loop.
public final class CommandLog {
    public let flowID: FlowID
    public let target: String
    private let bus: FlowBus
    private let policy: SharedPolicy
    public let gate: InterceptGate
    /// Who logged in; set once the target accepted the login (or, for a database, from the startup message).
    public var user = "?"
    /// The database a session works in, for SQL.
    public var database: String?
    private var nextIndex: Int64 = 0
    /// Judgements of recent texts under the policy of `cacheGeneration`: a session sends the same statements again
    /// and again (health checks, an application's queries), and judging one reads it whole.
    private var cache: [CacheKey: Judgement] = [:]
    private var cacheGeneration = -1
    private struct CacheKey: Hashable {
        var text: String
        var isSQL: Bool
        /// `text` is an SQL statement's shape (`SQLShape`), under which only judgements that matched no rule are kept.
        var isShape = false
    }
    /// Texts kept in the cache at most; it starts over when full. Longer texts are judged every time.
    static let cacheSize = 256
    static let maxCachedTextBytes = 4096

    public init(flowID: FlowID, target: Endpoint, bus: FlowBus, policy: SharedPolicy, gate: InterceptGate) {
        self.flowID = flowID
        self.target = "\(target)"
        self.bus = bus
        self.policy = policy
        self.gate = gate
    }

    /// Judges `text` and publishes it. Allowed and alerted commands are decided by the policy at once, blocked
    /// ones too; a held one is pending until the gate decides.
    public func capture(_ text: String, kind: CommandKind, at time: Date = Date()) -> (Command, Judgement) {
        let judgement = judge(text, kind: kind)
        return (record(text, kind: kind, judgement: judgement, at: time), judgement)
    }

    /// What the policy says of `text`, without recording anything (a prepared statement is judged once, when
    /// prepared, and its executions are recorded with that judgement).
    public func judge(_ text: String, kind: CommandKind) -> Judgement {
        let (policy, generation) = self.policy.snapshot
        guard text.utf8.count <= Self.maxCachedTextBytes else { return policy.judge(text, kind: kind) }
        if generation != cacheGeneration {
            cache.removeAll()
            cacheGeneration = generation
        }
        let key = CacheKey(text: text, isSQL: kind.isSQL)
        if let judged = cache[key] { return judged }
        // The same statement with other numbers (`WHERE id = 7`, `= 8`, …) matches the same rules: when it matched
        // none, its judgement says nothing of the text, and the shape finds it.
        let shape = kind.isSQL ? SQLShape.of(text) : text
        let shapeKey = CacheKey(text: shape, isSQL: true, isShape: true)
        if shape != text, let judged = cache[shapeKey] { return judged }
        let judgement = policy.judge(text, kind: kind)
        if cache.count >= Self.cacheSize - 1 { cache.removeAll(keepingCapacity: true) }
        cache[key] = judgement
        if shape != text && judgement.rule == nil { cache[shapeKey] = judgement }
        return judgement
    }

    /// Publishes a command the policy has judged already.
    /// - Parameters:
    ///   - alerting: raise the alert its action asks for; false for the later executions of a prepared statement
    ///     whose preparation raised it.
    ///   - settled: the decision so far when it is not the judgement's own: how an earlier hold of the same
    ///     statement was decided (for its later executions), or pending for a statement the intercept filter holds.
    @discardableResult
    public func record(
        _ text: String, kind: CommandKind, judgement: Judgement, parameters: [String]? = nil, alerting: Bool = true,
        settled: (decision: CommandDecision, by: Decider?)? = nil, at time: Date = Date()
    ) -> Command {
        var decision: CommandDecision
        var decider: Decider?
        switch judgement.action {
        case .allow, .alert: decision = .allowed
        case .block: decision = .blocked
        case .hold: decision = .pending
        }
        decider = decision == .pending ? nil : .policy
        if let settled {
            decision = settled.decision
            decider = settled.by
        }
        let command = Command(
            flowID: flowID, index: nextIndex, time: time, kind: kind, text: text, user: user, target: target,
            risk: judgement.risk, action: judgement.action, rule: judgement.rule, decision: decision,
            decidedBy: decider, database: database, parameters: parameters
        )
        nextIndex += 1
        bus.publish(.command(command))
        if alerting, judgement.action != .allow {
            let verb: String
            switch judgement.action {
            case .allow, .alert: verb = "ran"
            case .hold: verb = "held"
            case .block: verb = "blocked"
            }
            let who = database.map { "\(user)@\($0) on \(target)" } ?? "\(user)@\(target)"
            alert(level: judgement.risk, rule: judgement.rule ?? "policy", "\(who) \(verb): \(text)", command: command.index, at: time)
        }
        return command
    }

    public func finished(_ index: Int64, _ outcome: CommandOutcome) {
        bus.publish(.commandFinished(CommandFinished(flowID: flowID, index: index, time: Date(), outcome: outcome)))
    }

    public func alert(level: RiskLevel, rule: String, _ message: String, command: Int64? = nil, at time: Date = Date()) {
        bus.publish(.alert(Alert(flowID: flowID, commandIndex: command, time: time, level: level, rule: rule, message: message)))
    }
}
