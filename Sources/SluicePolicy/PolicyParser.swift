import SluiceModel
import Yams

/// Reads a policy from YAML (a policy file, or the `policy:` section of `sluice.yaml`) into rules, the way
/// `Configuration.parse` reads `sluice.yaml`: Yams' node API, so that every error names the file and the line.
/// Patterns are compiled here, once, so judging never parses one.
struct PolicyParser {
    let source: String

    static let topKeys = ["include_builtin", "actions", "rules"]
    static let ruleKeys = ["name", "risk", "action", "disabled", "shell", "sql"]
    static let shellKeys = [
        "program", "flags_all", "flags_any", "args_any", "args_all", "args_none", "redirects_any", "pipe_to", "shape",
    ]
    static let sqlKeys = ["statement", "contains", "without"]
    static let shapes = ["fork-bomb"]

    private func error(_ node: Node?, _ message: String) -> PolicyError {
        PolicyError(source: source, line: node?.mark?.line, message: message)
    }

    func policy(yaml: String, base: Policy?) throws(PolicyError) -> Policy {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw PolicyError(source: source, line: Self.line(of: error), message: Self.describe(error))
        }
        guard var root else { return base ?? Policy(rules: [], actions: LevelActions()) }
        // A file may also hold the section as it appears in sluice.yaml, under `policy:`.
        if let mapping = root.mapping, mapping.count == 1, let only = mapping.first, only.key.string == "policy" {
            root = only.value
        }
        return try policy(node: root, base: base)
    }

    func policy(node: Node, base: Policy?) throws(PolicyError) -> Policy {
        guard let mapping = node.mapping else {
            throw error(node, "expected a mapping of keys (\(Self.topKeys.joined(separator: ", ")))")
        }
        var includeBuiltIn = true
        var actions = base?.actions ?? LevelActions()
        var entries: [(node: Node, entry: RuleEntry)] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw error(keyNode, "keys must be plain words") }
            switch key {
            case "include_builtin":
                guard let flag = value.bool else { throw error(value, "include_builtin: expected true or false") }
                includeBuiltIn = flag
            case "actions":
                guard let levels = value.mapping else {
                    throw error(value, "actions: expected a mapping of risk levels to actions (low: allow, ...)")
                }
                for (levelNode, actionNode) in levels {
                    guard let name = levelNode.string, let level = RiskLevel(rawValue: name) else {
                        throw error(
                            levelNode, "actions: unknown risk level '\(levelNode.string ?? "")' (known: \(Self.levels))"
                        )
                    }
                    actions[level] = try action(actionNode, context: "actions.\(name)")
                }
            case "rules":
                guard let sequence = value.sequence else { throw error(value, "rules: expected a list of rules") }
                for (position, item) in sequence.enumerated() {
                    entries.append((item, try rule(item, position: position)))
                }
            default:
                throw error(keyNode, "unknown key '\(key)' (known: \(Self.topKeys.joined(separator: ", ")))")
            }
        }
        var rules = includeBuiltIn ? base?.rules ?? [] : []
        var seen = Set<String>()
        for (node, entry) in entries {
            guard seen.insert(entry.name).inserted else {
                throw error(node, "rule '\(entry.name)': defined twice in this policy")
            }
            let existing = rules.firstIndex { $0.name == entry.name }
            switch entry {
            case .disabled(let name):
                guard let existing else {
                    throw error(node, "rule '\(name)': disabled, but there is no rule of that name to turn off")
                }
                rules.remove(at: existing)
            case .rule(let rule):
                if let existing { rules[existing] = rule } else { rules.append(rule) }
            }
        }
        return Policy(rules: rules, actions: actions)
    }

    private enum RuleEntry {
        case rule(PolicyRule)
        case disabled(String)

        var name: String {
            switch self {
            case .rule(let rule): return rule.name
            case .disabled(let name): return name
            }
        }
    }

    private static let levels = RiskLevel.allCases.map(\.rawValue).joined(separator: ", ")
    private static let actionNames = PolicyAction.allCases.map(\.rawValue).joined(separator: ", ")

    private func action(_ node: Node, context: String) throws(PolicyError) -> PolicyAction {
        guard let name = node.string, let action = PolicyAction(rawValue: name) else {
            throw error(node, "\(context): expected one of \(Self.actionNames)")
        }
        return action
    }

    private func rule(_ node: Node, position: Int) throws(PolicyError) -> RuleEntry {
        guard let mapping = node.mapping else {
            throw error(node, "rules[\(position)]: expected a mapping (name:, risk:, ...)")
        }
        let nameNode = mapping["name"]
        guard let nameNode else { throw error(node, "rules[\(position)]: missing 'name'") }
        guard let name = nameNode.string, !name.isEmpty,
            name.utf8.allSatisfy({ ShellParser.isNameByte($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") })
        else {
            throw error(nameNode, "rules[\(position)]: name: expected a word of letters, digits, '-', '_' or '.'")
        }
        let context = "rule '\(name)'"
        var risk: RiskLevel?
        var action: PolicyAction?
        var disabled = false
        var shell: [ShellMatcher] = []
        var sql: [SQLMatcher] = []
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "name":
                continue
            case "risk":
                guard let text = value.string, let level = RiskLevel(rawValue: text) else {
                    throw error(value, "\(context): risk: expected one of \(Self.levels)")
                }
                risk = level
            case "action":
                action = try self.action(value, context: "\(context): action")
            case "disabled":
                guard let flag = value.bool else { throw error(value, "\(context): disabled: expected true or false") }
                disabled = flag
            case "shell":
                shell = try matchers(value, context: "\(context): shell", parse: shellMatcher)
            case "sql":
                sql = try matchers(value, context: "\(context): sql", parse: sqlMatcher)
            default:
                throw error(
                    keyNode, "\(context): unknown key '\(key)' (known: \(Self.ruleKeys.joined(separator: ", ")))")
            }
        }
        if disabled { return .disabled(name) }
        guard let risk else { throw error(node, "\(context): missing 'risk' (\(Self.levels))") }
        guard !shell.isEmpty || !sql.isEmpty else {
            throw error(node, "\(context): needs 'shell:' or 'sql:' to say what it matches (or 'disabled: true')")
        }
        // Kept as text (a Yams node is not Sendable) for `Policy.yaml`; the node composed, so it serializes.
        let definition = (try? Yams.serialize(node: node)) ?? "name: \(name)\n"
        return .rule(PolicyRule(name: name, risk: risk, action: action, shell: shell, sql: sql, definition: definition))
    }

    /// `shell:` / `sql:` is one mapping, or a list of them of which any may match.
    private func matchers<M>(
        _ node: Node, context: String, parse: (Node, String) throws(PolicyError) -> M
    ) throws(PolicyError) -> [M] {
        if node.mapping != nil { return [try parse(node, context)] }
        guard let sequence = node.sequence, !sequence.isEmpty else {
            throw error(node, "\(context): expected a mapping of match keys, or a list of them")
        }
        var result: [M] = []
        for item in sequence {
            guard item.mapping != nil else { throw error(item, "\(context): expected a mapping of match keys") }
            result.append(try parse(item, context))
        }
        return result
    }

    /// A string or a list of strings, each non-empty.
    private func strings(_ node: Node, context: String) throws(PolicyError) -> [String] {
        if let scalar = node.scalar {
            guard !scalar.string.isEmpty else { throw error(node, "\(context): expected a non-empty string") }
            return [scalar.string]
        }
        guard let sequence = node.sequence, !sequence.isEmpty else {
            throw error(node, "\(context): expected a string or a list of strings")
        }
        var result: [String] = []
        for item in sequence {
            guard let text = item.scalar?.string, !text.isEmpty else {
                throw error(item, "\(context): expected a non-empty string")
            }
            result.append(text)
        }
        return result
    }

    private func shellMatcher(_ node: Node, context: String) throws(PolicyError) -> ShellMatcher {
        var matcher = ShellMatcher()
        var keys = 0
        for (keyNode, value) in node.mapping.map(Array.init) ?? [] {
            let key = keyNode.string ?? ""
            let here = "\(context).\(key)"
            keys += 1
            switch key {
            case "program": matcher.programs = try strings(value, context: here).map(Glob.init)
            case "flags_all":
                matcher.flagsAll = try strings(value, context: here).map { (entry) throws(PolicyError) in
                    try flagSet(entry, node: value, context: here)
                }
            case "flags_any":
                var set = ShellMatcher.FlagSet()
                for entry in try strings(value, context: here) {
                    let more = try flagSet(entry, node: value, context: here)
                    set.short.formUnion(more.short)
                    set.long.formUnion(more.long)
                }
                matcher.flagsAny = set
            case "args_any": matcher.argsAny = try strings(value, context: here).map(Glob.init)
            case "args_all":
                matcher.argsAll = try strings(value, context: here).map {
                    $0.split(separator: "|").map { Glob(String($0)) }
                }
            case "args_none": matcher.argsNone = try strings(value, context: here).map(Glob.init)
            case "redirects_any": matcher.redirectsAny = try strings(value, context: here).map(Glob.init)
            case "pipe_to": matcher.pipeTo = try strings(value, context: here).map(Glob.init)
            case "shape":
                guard let shape = value.string, Self.shapes.contains(shape) else {
                    throw error(value, "\(here): expected one of \(Self.shapes.joined(separator: ", "))")
                }
                matcher.forkBomb = true
            default:
                throw error(
                    keyNode, "\(context): unknown key '\(key)' (known: \(Self.shellKeys.joined(separator: ", ")))")
            }
        }
        if matcher.forkBomb && keys > 1 {
            throw error(node, "\(context): 'shape' stands alone; it cannot be combined with other keys")
        }
        return matcher
    }

    /// `r|R|recursive`: one-letter names are short options, longer ones long options; leading dashes are allowed
    /// (`-r|--recursive`).
    private func flagSet(_ entry: String, node: Node, context: String) throws(PolicyError) -> ShellMatcher.FlagSet {
        var set = ShellMatcher.FlagSet()
        for alternative in entry.split(separator: "|") {
            let dashes = alternative.prefix { $0 == "-" }.count
            let name = alternative.dropFirst(dashes)
            guard !name.isEmpty, dashes <= 2, !name.contains(" "), !name.contains("=") else {
                throw error(node, "\(context): '\(alternative)' is not an option name (e.g. r, -r or --recursive)")
            }
            if name.utf8.count == 1 && dashes < 2 {
                set.short.insert(name.utf8[name.utf8.startIndex])
            } else if dashes == 1 {
                throw error(
                    node, "\(context): '\(alternative)': one dash is one letter; write --\(name) for a long option")
            } else {
                set.long.insert(String(name))
            }
        }
        return set
    }

    private func sqlMatcher(_ node: Node, context: String) throws(PolicyError) -> SQLMatcher {
        var matcher = SQLMatcher()
        for (keyNode, value) in node.mapping.map(Array.init) ?? [] {
            let key = keyNode.string ?? ""
            let here = "\(context).\(key)"
            switch key {
            case "statement":
                for entry in try strings(value, context: here) {
                    let optional = entry.hasSuffix("?")
                    let keywords = try keywordSet(
                        optional ? String(entry.dropLast()) : entry, node: value, context: here)
                    matcher.statement.append(SQLMatcher.Step(keywords: keywords, isOptional: optional))
                }
                if matcher.statement.allSatisfy(\.isOptional) {
                    throw error(value, "\(here): needs at least one keyword that is not optional")
                }
            case "contains":
                matcher.contains = try strings(value, context: here).map { (entry) throws(PolicyError) in
                    try keywordSet(entry, node: value, context: here)
                }
            case "without":
                for entry in try strings(value, context: here) {
                    matcher.without.formUnion(try keywordSet(entry, node: value, context: here))
                }
            default:
                throw error(
                    keyNode, "\(context): unknown key '\(key)' (known: \(Self.sqlKeys.joined(separator: ", ")))")
            }
        }
        return matcher
    }

    /// `DATABASE|SCHEMA`: keywords, compared uppercased.
    private func keywordSet(_ entry: String, node: Node, context: String) throws(PolicyError) -> Set<String> {
        var set = Set<String>()
        for keyword in entry.split(separator: "|", omittingEmptySubsequences: false) {
            guard !keyword.isEmpty, keyword.utf8.allSatisfy(ShellParser.isNameByte) else {
                throw error(
                    node,
                    "\(context): '\(keyword)' is not an SQL keyword (letters, digits and _; '|' between alternatives)")
            }
            set.insert(keyword.uppercased())
        }
        return set
    }

    private static func line(of error: Error) -> Int? {
        guard let yamlError = error as? YamlError else { return nil }
        switch yamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    private static func describe(_ error: Error) -> String {
        guard let yamlError = error as? YamlError else { return "not valid YAML" }
        switch yamlError {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            return "not valid YAML: "
                + [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        case .reader(let problem, _, _, _):
            return "cannot read YAML: \(problem)"
        default:
            return "not valid YAML"
        }
    }
}
