import Foundation
import SluiceModel
import Testing
import Yams

@testable import SluicePolicy

/// Policy files and the `policy:` section: extending and replacing the built-ins, and one clear line for each mistake.
@Suite struct PolicyParsingTests {
    @Test func builtInParsesAndHasTheNamedRules() {
        let names = Policy.builtIn.rules.map(\.name)
        for name in [
            "rm-root", "mkfs", "dd-to-disk", "fork-bomb", "drop-database", "truncate", "delete-without-where",
            "update-without-where", "shutdown", "iptables-flush", "chmod-777-root", "drop-table", "alter-drop", "sudo",
            "su", "passwd", "pipe-to-shell", "grant", "create-user",
        ] {
            #expect(names.contains(name), "\(name)")
        }
        #expect(Set(names).count == names.count)
        #expect(Policy.builtIn.actions == LevelActions())
    }

    /// `samples/policy.yaml` restates every built-in rule; they must say the same thing.
    @Test func sampleRestatesTheBuiltIns() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples/policy.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let sample = try Policy.parse(yaml: text, source: "policy.yaml")
        for rule in Policy.builtIn.rules {
            #expect(sample.rules.first { $0.name == rule.name } == rule, "\(rule.name)")
        }
        // The sample's own example rule works.
        let judgement = sample.judge("terraform destroy -auto-approve", kind: .shell)
        #expect(judgement.rule == "terraform-destroy")
        #expect(judgement.action == .block)
    }

    @Test func emptyFileIsTheBuiltIns() throws {
        let policy = try Policy.parse(yaml: "", source: "p.yaml")
        #expect(policy.rules == Policy.builtIn.rules)
    }

    @Test func userRulesExtendReplaceAndDisable() throws {
        let policy = try Policy.parse(
            yaml: """
                actions:
                  medium: hold
                rules:
                  - name: sudo
                    disabled: true
                  - name: reboot-ok
                    risk: low
                    shell:
                      program: [reboot]
                  - name: shutdown
                    risk: medium
                    action: allow
                    shell:
                      program: [shutdown]
                  - name: kubectl-delete
                    risk: high
                    shell:
                      program: [kubectl]
                      args_all: [delete, "namespace|ns"]
                """,
            source: "policy.yaml"
        )
        #expect(policy.rules.count == Policy.builtIn.rules.count + 1)
        #expect(policy.judge("sudo ls", kind: .shell).risk == .low)
        // A user rule of the same name replaces the built-in one, in its place.
        let shutdown = policy.judge("shutdown -h now", kind: .shell)
        #expect(shutdown.risk == .medium)
        #expect(shutdown.action == .allow)
        #expect(policy.judge("reboot", kind: .shell).risk == .low)
        #expect(policy.judge("kubectl delete ns prod", kind: .shell).rule == "kubectl-delete")
        #expect(policy.judge("kubectl delete pod x", kind: .shell).risk == .low)
        #expect(policy.judge("passwd", kind: .shell).action == .hold)
        #expect(policy.judge("rm -rf /", kind: .shell).rule == "rm-root")
    }

    @Test func withoutBuiltInsOnlyTheFileCounts() throws {
        let policy = try Policy.parse(
            yaml: """
                include_builtin: false
                rules:
                  - name: no-select-star
                    risk: medium
                    sql:
                      statement: [SELECT]
                      contains: ["FROM"]
                """,
            source: "p.yaml"
        )
        #expect(policy.rules.map(\.name) == ["no-select-star"])
        #expect(policy.judge("rm -rf /", kind: .shell).risk == .low)
        #expect(policy.judge("select * from t", kind: .sql).rule == "no-select-star")
        #expect(policy.judge("select 1", kind: .sql).risk == .low)
    }

    @Test func theSectionInsideSluiceYAML() throws {
        let config = """
            listen: [http://127.0.0.1:8080]
            policy:
              actions:
                critical: hold
              rules:
                - name: rm-root
                  risk: critical
                  action: alert
                  shell:
                    program: [rm]
                    flags_all: ["-r|--recursive", "f|force"]
                    args_any: ["/"]
            """
        let root = try #require(try Yams.compose(yaml: config))
        let section = try #require(root.mapping?["policy"])
        let policy = try Policy.parse(node: section, source: "sluice.yaml")
        #expect(policy.judge("rm -rf /", kind: .shell).action == .alert)
        #expect(policy.judge("rm -r /", kind: .shell).risk == .low)
        #expect(policy.judge("mkfs /dev/sda", kind: .shell).action == .hold)
    }

    @Test func aFileMayWrapItsRulesInAPolicyKey() throws {
        let policy = try Policy.parse(yaml: "policy:\n  actions:\n    low: alert\n", source: "p.yaml")
        #expect(policy.judge("ls", kind: .shell).action == .alert)
    }

    @Test(arguments: [
        ("foo: 1", "p.yaml:1: unknown key 'foo' (known: include_builtin, actions, rules)"),
        ("- a", "p.yaml:1: expected a mapping of keys (include_builtin, actions, rules)"),
        ("include_builtin: maybe", "p.yaml:1: include_builtin: expected true or false"),
        (
            "actions:\n  severe: block",
            "p.yaml:2: actions: unknown risk level 'severe' (known: low, medium, high, critical)"
        ),
        ("actions:\n  low: ignore", "p.yaml:2: actions.low: expected one of allow, alert, hold, block"),
        ("rules: x", "p.yaml:1: rules: expected a list of rules"),
        ("rules:\n  - risk: low", "p.yaml:2: rules[0]: missing 'name'"),
        (
            "rules:\n  - name: a b\n    risk: low",
            "p.yaml:2: rules[0]: name: expected a word of letters, digits, '-', '_' or '.'"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    foo: 1\n    shell: {program: [a]}",
            "p.yaml:4: rule 'x': unknown key 'foo' (known: name, risk, action, disabled, shell, sql)"
        ),
        (
            "rules:\n  - name: x\n    shell: {program: [a]}",
            "p.yaml:2: rule 'x': missing 'risk' (low, medium, high, critical)"
        ),
        (
            "rules:\n  - name: x\n    risk: severe\n    shell: {program: [a]}",
            "p.yaml:3: rule 'x': risk: expected one of low, medium, high, critical"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    action: stop\n    shell: {program: [a]}",
            "p.yaml:4: rule 'x': action: expected one of allow, alert, hold, block"
        ),
        (
            "rules:\n  - name: x\n    risk: low",
            "p.yaml:2: rule 'x': needs 'shell:' or 'sql:' to say what it matches (or 'disabled: true')"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    shell:\n      program: [a]\n      argz: [b]",
            "p.yaml:6: rule 'x': shell: unknown key 'argz' (known: program, flags_all, flags_any, args_any, args_all, args_none, redirects_any, pipe_to, shape)"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    shell:\n      program: []",
            "p.yaml:5: rule 'x': shell.program: expected a string or a list of strings"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    shell:\n      flags_all: [-rf]",
            "p.yaml:5: rule 'x': shell.flags_all: '-rf': one dash is one letter; write --rf for a long option"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    shell:\n      shape: spiral",
            "p.yaml:5: rule 'x': shell.shape: expected one of fork-bomb"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    shell:\n      shape: fork-bomb\n      program: [a]",
            "p.yaml:5: rule 'x': shell: 'shape' stands alone; it cannot be combined with other keys"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    shell: [1]",
            "p.yaml:4: rule 'x': shell: expected a mapping of match keys"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    sql:\n      statement: [DROP, \"DATA BASE\"]",
            "p.yaml:5: rule 'x': sql.statement: 'DATA BASE' is not an SQL keyword (letters, digits and _; '|' between alternatives)"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    sql:\n      statement: [\"OR?\"]",
            "p.yaml:5: rule 'x': sql.statement: needs at least one keyword that is not optional"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    sql:\n      where: [a]",
            "p.yaml:5: rule 'x': sql: unknown key 'where' (known: statement, contains, without)"
        ),
        (
            "rules:\n  - name: nope\n    disabled: true",
            "p.yaml:2: rule 'nope': disabled, but there is no rule of that name to turn off"
        ),
        (
            "rules:\n  - name: x\n    risk: low\n    sql: {statement: [A]}\n  - name: x\n    risk: low\n    sql: {statement: [B]}",
            "p.yaml:5: rule 'x': defined twice in this policy"
        ),
        ("rules: [\n", "p.yaml:2: not valid YAML: while parsing a flow node did not find expected node content"),
    ])
    func errorsNameFileLineAndProblem(_ yaml: String, _ expected: String) {
        do {
            _ = try Policy.parse(yaml: yaml, source: "p.yaml")
            Issue.record("parsed: \(yaml)")
        } catch {
            #expect(error.description == expected)
            #expect(error.line != nil)
            #expect(!error.description.contains("\n"))
        }
    }
}
