import SluiceModel

extension Policy {
    /// The policy in effect as one self-contained policy file: the actions of every level and every rule that
    /// counts, built-in or not, in the order they are tried (`include_builtin: false`, so it means the same
    /// wherever it is loaded). What `sluice policy show` prints; parsing it gives this policy back.
    public var yaml: String {
        var out = "include_builtin: false\nactions:\n"
        for level in RiskLevel.allCases {
            out += "  \(level.rawValue): \(actions[level].rawValue)\n"
        }
        guard !rules.isEmpty else { return out + "rules: []\n" }
        out += "rules:\n"
        for rule in rules {
            let lines = rule.definition.split(separator: "\n", omittingEmptySubsequences: false)
                .drop { $0.isEmpty }.reversed().drop { $0.isEmpty }.reversed()
            for (number, line) in lines.enumerated() {
                out += (number == 0 ? "  - " : "    ") + line + "\n"
            }
        }
        return out
    }
}
