import SluiceModel
import Testing

@testable import SluicePolicy

/// `Policy.yaml` (`sluice policy show`): the effective policy as one file that reads back as the same policy.
@Suite struct PolicyYAMLTests {
    @Test func builtInRoundTrips() throws {
        let text = Policy.builtIn.yaml
        #expect(text.hasPrefix("include_builtin: false\nactions:\n  low: allow\n  medium: alert\n  high: hold\n  critical: block\nrules:\n"))
        let again = try Policy.parse(yaml: text, source: "shown.yaml")
        #expect(again.rules == Policy.builtIn.rules)
        #expect(again.actions == Policy.builtIn.actions)
        #expect(again.yaml == text, "showing what was shown changes nothing")
    }

    @Test func aUserPolicyShowsItsMergedRulesAndActions() throws {
        let policy = try Policy.parse(
            yaml: """
                actions:
                  high: block
                rules:
                  - name: sudo
                    disabled: true
                  - name: shutdown
                    risk: medium
                    action: allow
                    shell:
                      program: [shutdown]
                  - name: terraform-destroy
                    risk: high
                    shell:
                      - program: [terraform]
                        args_all: [destroy]
                      - program: ["tf*"]
                        args_any: ['*destroy*']
                  - name: no-comments
                    risk: low
                    sql:
                      statement: [COMMENT, "ON?"]
                """,
            source: "p.yaml"
        )
        let text = policy.yaml
        #expect(text.contains("  high: block\n"))
        #expect(!text.contains("name: sudo\n"))
        let again = try Policy.parse(yaml: text, source: "shown.yaml")
        #expect(again.rules == policy.rules)
        #expect(again.actions == policy.actions)
        #expect(again.rules.map(\.name) == policy.rules.map(\.name), "in the order they are tried")
        for (line, kind) in [("shutdown -h now", CommandKind.shell), ("tfx plan-destroy", .shell), ("sudo ls", .shell), ("COMMENT ON TABLE t IS 'x'", .sql)] {
            #expect(again.judge(line, kind: kind) == policy.judge(line, kind: kind), "\(line)")
        }
    }

    @Test func noRulesAtAll() throws {
        let empty = try Policy.parse(yaml: "include_builtin: false\n", source: "p.yaml")
        #expect(empty.yaml.hasSuffix("rules: []\n"))
        #expect(try Policy.parse(yaml: empty.yaml, source: "shown.yaml").rules.isEmpty)
    }
}
