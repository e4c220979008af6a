import SluiceModel

/// What the policy says about one text: how risky it is, what to do, and why in one line.
public struct Judgement: Sendable, Equatable {
    public var risk: RiskLevel
    public var action: PolicyAction
    /// The rule that matched; nil when none did (the text is low risk).
    public var rule: String?
    /// One line for the operator and the user: what matched and which rule, e.g. `rm -rf / (rule rm-root)`.
    public var reason: String

    public init(risk: RiskLevel, action: PolicyAction, rule: String?, reason: String) {
        self.risk = risk
        self.action = action
        self.rule = rule
        self.reason = reason
    }
}
