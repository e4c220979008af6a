import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

/// `sluice alerts`: what the policy flagged (and the recorder's own alerts), as a table or JSON Lines.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "List recorded alerts: commands the policy flagged, recording problems.",
        discussion: """
            Reads the store, whether or not a Sluice is running. CMD is the command's position in its flow \
            (`sluice commands --flow ID --json` shows it as index); alerts of the recorder itself have no flow.
            """
    )

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "One JSON object per line instead of a table.")
    var json = false

    @Option(name: .long, help: "Show the newest N alerts.")
    var limit = 100

    func run() throws {
        guard limit > 0 else { throw fail("--limit must be at least 1") }
        let alerts: [StoredAlert]
        do {
            let configuration = try store.loadConfiguration()
            let database = try Store(directory: store.dataDirectory(configuration))
            alerts = try database.alerts(limit: limit)
        } catch {
            throw fail(error)
        }
        if json {
            for alert in alerts { print(AlertListing.json(alert)) }
        } else {
            print(AlertListing.table(alerts), terminator: "")
        }
    }
}

/// How alerts are printed by the CLI.
enum AlertListing {
    static let layout = TextTable(headers: ["TIME (UTC)", "FLOW", "CMD", "LEVEL", "RULE", "ACK", "MESSAGE"], rightAligned: [1, 2])

    static func table(_ alerts: [StoredAlert]) -> String {
        layout.render(
            alerts.map { alert in
                [
                    CommandListing.tableTime(alert.time), alert.flowID?.description ?? "-",
                    alert.commandIndex.map(String.init) ?? "-", alert.level.rawValue, alert.rule.visible,
                    acknowledged(alert), CommandListing.shortened(alert.message.visible),
                ]
            }
        )
    }

    /// Who acknowledged it (`POST /api/alerts/{id}/ack`), `yes` when they did not say, `-` when nobody has.
    static func acknowledged(_ alert: StoredAlert) -> String {
        guard let acknowledgement = alert.acknowledgement else { return "-" }
        return acknowledgement.by?.visible ?? "yes"
    }

    static func json(_ alert: StoredAlert) -> String {
        StoredJSON.alert(alert)
    }
}
