import SluiceModel

/// A named rule: a risk level for the commands or statements it matches, and optionally its own action.
public struct PolicyRule: Sendable, Equatable {
    /// Stable, so a user's rule of the same name replaces a built-in one and the store can record it.
    public let name: String
    public let risk: RiskLevel
    /// Overrides the action of the rule's risk level.
    public let action: PolicyAction?
    /// Any one of these matches a shell command (`shell:` is a mapping or a list of mappings).
    let shell: [ShellMatcher]
    /// Any one of these matches an SQL statement.
    let sql: [SQLMatcher]
    /// The rule as YAML, as it was written (one mapping, without comments), for `Policy.yaml`.
    let definition: String

    init(
        name: String, risk: RiskLevel, action: PolicyAction?, shell: [ShellMatcher], sql: [SQLMatcher],
        definition: String = ""
    ) {
        self.name = name
        self.risk = risk
        self.action = action
        self.shell = shell
        self.sql = sql
        self.definition = definition
    }

    /// Two rules are the same when they match the same way; how their YAML was spelt does not count.
    public static func == (lhs: PolicyRule, rhs: PolicyRule) -> Bool {
        lhs.name == rhs.name && lhs.risk == rhs.risk && lhs.action == rhs.action && lhs.shell == rhs.shell
            && lhs.sql == rhs.sql
    }

    var matchesForkBombs: Bool { shell.contains { $0.forkBomb } }
}
