import SluiceModel
import Yams

/// Rates shell commands and SQL statements low, medium, high or critical and says what to do with them. Pure and
/// synchronous: it reads the parsed shape of a text (programs, options, arguments, pipelines; SQL keywords outside
/// literals and comments), never a regular expression over the raw line, so quoting and wrapping tricks do not
/// hide a command. It is an audit and a guard against mistakes, not a security boundary: see the README's known
/// limitations.
public struct Policy: Sendable {
    /// In order: among rules of the same risk the first that matches names the judgement.
    public let rules: [PolicyRule]
    public let actions: LevelActions
    /// Positions in `rules` of the rules with SQL and with shell patterns, so a judgement looks only at those (and
    /// copies no rule): a database session judges every statement it sends.
    private let sqlRules: [Int]
    private let shellRules: [Int]

    /// Texts longer than this are judged on their first this many bytes (and the reason says so), which bounds the
    /// work hostile input can cause.
    public static let maxTextBytes = 64 * 1024

    init(rules: [PolicyRule], actions: LevelActions) {
        self.rules = rules
        self.actions = actions
        self.sqlRules = rules.indices.filter { !rules[$0].sql.isEmpty }
        self.shellRules = rules.indices.filter { !rules[$0].shell.isEmpty }
    }

    /// The built-in rules (`BuiltInPolicy.yaml`) with the default actions: low allow, medium alert, high hold,
    /// critical block.
    public static let builtIn: Policy = {
        do {
            return try PolicyParser(source: "built-in policy").policy(yaml: BuiltInPolicy.yaml, base: nil)
        } catch {
            // The built-in text is part of the program, not input; a test parses it on every run.
            preconditionFailure("the built-in policy does not parse: \(error)")
        }
    }()

    /// A policy file (`samples/policy.yaml` shows the shape). `source` names the file in errors.
    public static func parse(yaml: String, source: String) throws(PolicyError) -> Policy {
        try PolicyParser(source: source).policy(yaml: yaml, base: builtIn)
    }

    /// The `policy:` mapping inside `sluice.yaml`: the same keys as a policy file.
    public static func parse(node: Yams.Node, source: String) throws(PolicyError) -> Policy {
        try PolicyParser(source: source).policy(node: node, base: builtIn)
    }

    /// The action for a risk level, when no rule overrides it.
    public func action(for risk: RiskLevel) -> PolicyAction { actions[risk] }

    /// Judges one text: a shell line or exec command (`.shell`, `.exec`) or SQL (`.sql`, possibly several
    /// statements). The highest-risk matching rule decides; no match is low risk with no rule.
    public func judge(_ text: String, kind: CommandKind) -> Judgement {
        var judged = text
        var note = ""
        let size = text.utf8.count
        if size > Self.maxTextBytes {
            judged = String(decoding: text.utf8.prefix(Self.maxTextBytes), as: UTF8.self)
            note = " (judged on the first \(Self.maxTextBytes) of \(size) bytes)"
        }
        var best: (rule: Int, excerpt: String)?
        func consider(_ rule: Int, _ excerpt: @autoclosure () -> String) {
            if let current = best {
                let currentRisk = rules[current.rule].risk
                guard rules[rule].risk > currentRisk || (rules[rule].risk == currentRisk && rule < current.rule) else {
                    return
                }
            }
            best = (rule, excerpt())
        }
        if kind.isSQL {
            for dialect in SQLLexer.dialectsMayDiffer(judged) ? SQLLexer.Dialect.allCases : [.postgres] {
                for statement in SQLLexer.statements(judged, dialect: dialect) {
                    for index in sqlRules where rules[index].sql.contains(where: { $0.matches(statement) }) {
                        consider(index, statement.excerpt)
                    }
                }
            }
        } else {
            let analysis = ShellAnalysis(judged)
            for view in analysis.views {
                for index in shellRules where rules[index].shell.contains(where: { $0.matches(view) }) {
                    consider(index, view.excerpt)
                }
            }
            for name in analysis.forkBombs {
                for (index, rule) in rules.enumerated() where rule.matchesForkBombs {
                    consider(index, "\(name)(){ \(name)|\(name)& }")
                }
            }
        }
        guard let best else {
            return Judgement(risk: .low, action: actions.low, rule: nil, reason: "no rule matched" + note)
        }
        let rule = rules[best.rule]
        return Judgement(
            risk: rule.risk, action: rule.action ?? actions[rule.risk], rule: rule.name,
            reason: "\(Self.shorten(best.excerpt)) (rule \(rule.name))" + note
        )
    }

    /// One line of at most 80 characters: control characters shown as spaces, the rest cut with an ellipsis.
    static func shorten(_ text: String) -> String {
        var line = String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
        if line.count > 80 { line = String(line.prefix(79)) + "…" }
        return line
    }
}
