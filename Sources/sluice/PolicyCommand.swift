import ArgumentParser
import Foundation
import SluiceCore
import SluiceModel
import SluicePolicy

/// `sluice policy`: try the risk policy out before deploying it.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Check texts against the risk policy, or show the policy in effect.",
        subcommands: [PolicyCheckCommand.self, PolicyShowCommand.self]
    )
}

/// Which policy `sluice policy` reads; the same order as a running Sluice.
struct PolicyOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions

    @Option(
        name: .long,
        help: ArgumentHelp("A policy file. Wins over the policy: of --config or <data-dir>/sluice.yaml, which wins over the built-in rules.", valueName: "file")
    )
    var policy: String?

    /// The policy, or exit status 2 after one line naming the file and line that is wrong.
    func load() throws -> (policy: Policy, origin: String) {
        do {
            return try PolicySource(file: policy, store: store).load()
        } catch {
            throw fail(error, status: 2)
        }
    }
}

/// `sluice policy check TEXT...`: how the policy rates each text, one line each.
struct PolicyCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Rate shell commands or SQL statements as the policy would.",
        discussion: """
            Prints LEVEL ACTION RULE TEXT for each text (RULE is - when no rule matched), or with --json one \
            object a line: {"text", "kind", "risk", "action", "rule", "reason"}. With no TEXT, judges each line of \
            standard input. Quote each text as one argument; put -- before texts that begin with a dash.

            The policy is the --policy file if given, else the policy: of the config file (--config, else \
            <data-dir>/sluice.yaml), else the built-in rules. Exit status: 0 once every text is judged, whatever \
            its risk; 2 when the policy cannot be read (one line names the file and line).

            Examples:
              sluice policy check 'sudo rm -rf /' 'rm -rf ./build'
              sluice policy check --sql 'DELETE FROM users'
              sluice policy check --policy policy.yaml --json < commands.txt
            """
    )

    @OptionGroup var source: PolicyOptions

    @Flag(name: .long, help: "The texts are SQL (several statements may be split on ;), not shell lines.")
    var sql = false

    @Flag(name: .long, help: "One JSON object per line.")
    var json = false

    @Argument(help: ArgumentHelp("Texts to judge; none: read lines from standard input.", valueName: "text"))
    var texts: [String] = []

    func run() throws {
        let (policy, _) = try source.load()
        let kind: CommandKind = sql ? .sql : .shell
        let printer = JudgementPrinter(json: json, kind: kind, ruleWidth: policy.rules.map(\.name.count).max() ?? 1)
        if texts.isEmpty {
            while let line = readLine(strippingNewline: true) {
                // A pasted file's blank lines say nothing.
                guard line.contains(where: { !$0.isWhitespace }) else { continue }
                print(printer.line(line, policy.judge(line, kind: kind)))
            }
        } else {
            for text in texts { print(printer.line(text, policy.judge(text, kind: kind))) }
        }
    }
}

/// One judged text as `sluice policy check` prints it. Widths come from the policy, not from the texts, so lines
/// read from a pipe print aligned as they come.
struct JudgementPrinter {
    let json: Bool
    let kind: CommandKind
    let ruleWidth: Int

    static let levelWidth = RiskLevel.allCases.map(\.rawValue.count).max() ?? 8
    static let actionWidth = PolicyAction.allCases.map(\.rawValue.count).max() ?? 5

    func line(_ text: String, _ judgement: Judgement) -> String {
        if json {
            return JSONObject()
                .string("text", text).string("kind", kind.rawValue).string("risk", judgement.risk.rawValue)
                .string("action", judgement.action.rawValue).optionalString("rule", judgement.rule)
                .string("reason", judgement.reason)
                .line
        }
        func padded(_ cell: String, _ width: Int) -> String {
            cell + String(repeating: " ", count: max(width - cell.count, 0))
        }
        return [
            padded(judgement.risk.rawValue, Self.levelWidth), padded(judgement.action.rawValue, Self.actionWidth),
            padded(judgement.rule ?? "-", max(ruleWidth, 1)), text.visible,
        ].joined(separator: "  ")
    }
}

/// `sluice policy show`: the effective policy as one policy file.
struct PolicyShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print the policy in effect (actions and every rule) as YAML.",
        discussion: """
            The output is a complete policy file (include_builtin: false): built-in rules merged with the file's, \
            in the order they are tried. It reads back as the same policy, e.g. as a starting point for --policy.
            The policy is chosen as for `sluice policy check`; a comment on the first line says which.
            """
    )

    @OptionGroup var source: PolicyOptions

    func run() throws {
        let (policy, origin) = try source.load()
        print("# the policy in effect, from \(origin.visible)")
        print(policy.yaml, terminator: "")
    }
}
