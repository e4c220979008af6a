import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

/// `sluice commands`: the recorded shell lines, exec commands and SQL statements with their risk and what became
/// of them, as a table or JSON Lines.
struct CommandsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commands", abstract: "List recorded commands (SSH shell lines and exec, SQL) with their risk.",
        discussion: """
            Reads the store, whether or not a Sluice is running. ACTION is what the policy asked for and what became \
            of the command (allow/allowed, hold/blocked(operator), block/blocked); text is shown with control \
            characters written out (\\e, \\n).

            Examples:
              sluice commands --risk high
              sluice commands --flow 42 --json
            """
    )

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "One JSON object per line (every field) instead of a table.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Only this flow's commands.", valueName: "ID"))
    var flow: Int64?

    @Option(name: .long, help: ArgumentHelp("Only commands of this risk or above: low, medium, high, critical.", valueName: "LEVEL"))
    var risk: String?

    @Option(name: .long, help: "Show the newest N commands.")
    var limit = 100

    func run() throws {
        guard limit > 0 else { throw fail("--limit must be at least 1") }
        var minimumRisk: RiskLevel?
        if let risk {
            guard let level = RiskLevel(rawValue: risk.lowercased()) else {
                throw fail("--risk: unknown level '\(risk.visible)' (one of \(RiskLevel.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            minimumRisk = level
        }
        let commands: [StoredCommand]
        do {
            let configuration = try store.loadConfiguration()
            let database = try Store(directory: store.dataDirectory(configuration))
            commands = try database.commands(flow: flow.map { FlowID($0) }, minimumRisk: minimumRisk, limit: limit)
        } catch {
            throw fail(error)
        }
        if json {
            for command in commands { print(CommandListing.json(command)) }
        } else {
            print(CommandListing.table(commands), terminator: "")
        }
    }
}

/// How commands are printed by the CLI.
enum CommandListing {
    static let layout = TextTable(headers: ["TIME (UTC)", "FLOW", "USER@TARGET", "RISK", "ACTION", "RULE", "TEXT"], rightAligned: [1])

    /// Longer texts (a pasted script, a big SQL batch) are cut in the table; `--json` has them whole.
    static let maxText = 200

    static func table(_ commands: [StoredCommand]) -> String {
        layout.render(
            commands.map { command in
                [
                    tableTime(command.time), command.flowID.description,
                    "\(command.user)@\(command.target)".visible, command.risk.rawValue, outcome(command),
                    command.rule ?? "-", shortened(command.text.visible),
                ]
            }
        )
    }

    /// `action/decision`, with who decided when it was not the policy on its own: `hold/allowed(operator)`.
    static func outcome(_ command: StoredCommand) -> String {
        var text = "\(command.action.rawValue)/\(command.decision.rawValue)"
        if let decider = command.decidedBy, decider != .policy { text += "(\(decider.rawValue))" }
        return text
    }

    static func json(_ command: StoredCommand) -> String {
        StoredJSON.command(command)
    }

    /// `2026-12-05 10:00:01`, as `sluice flows` shows times.
    static func tableTime(_ date: Date) -> String {
        Timestamp.iso8601(date).prefix(19).replacingOccurrences(of: "T", with: " ")
    }

    static func shortened(_ text: String) -> String {
        text.count > maxText ? String(text.prefix(maxText - 1)) + "…" : text
    }
}
