import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

/// `sluice flows`: the recorded flows as a table, or JSON Lines.
struct FlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows", abstract: "List recorded flows.",
        discussion: """
            --filter takes a filter expression as the TUI's `f` does (mitmproxy's operators and Sluice's own) and \
            lists the flows among the newest --limit that match it.

            Examples:
              sluice flows --filter '~m POST & ~u /api'
              sluice flows --json --filter '~websocket | ~tcp'
            """
    )

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "One JSON object per line instead of a table.")
    var json = false

    @Option(name: .long, help: "Show the newest N flows.")
    var limit = 100

    @Option(name: .long, help: ArgumentHelp("Only flows matching this filter, e.g. '~c 404 | ~e'.", valueName: "EXPR"))
    var filter: String?

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        var selection: Filter?
        if let filter {
            do {
                selection = try Filter(filter)
            } catch {
                throw fail("filter '\(filter)': \(error)")
            }
        }
        var flows: [StoredFlow]
        do {
            let configuration = try store.loadConfiguration()
            let database = try Store(directory: store.dataDirectory(configuration))
            flows = try database.flows(limit: limit)
            if let selection {
                // One flow's messages at a time: payload operators need them, and a store can be large.
                flows = try flows.filter { flow in
                    let messages = try database.messages(of: flow.id)
                    let commands = try database.commands(flow: flow.id, limit: Int.max)
                    return selection.matches(flow.filterSubject(messages: messages, commands: commands))
                }
            }
        } catch {
            throw fail(error)
        }
        if json {
            for flow in flows { print(FlowListing.json(flow)) }
        } else {
            print(FlowListing.table(flows), terminator: "")
        }
    }
}

/// How flows are printed by the CLI.
enum FlowListing {
    static let headers = ["ID", "START (UTC)", "KIND", "CLIENT", "SERVER", "UP", "DOWN", "DURATION", "STATE", "SUMMARY"]

    static func table(_ flows: [StoredFlow]) -> String {
        let rows = flows.map { flow in
            [
                flow.id.description,
                Timestamp.iso8601(flow.startedAt).prefix(19).replacingOccurrences(of: "T", with: " "),
                flow.kind, flow.origin, flow.server,
                Formatting.bytes(flow.bytesUp), Formatting.bytes(flow.bytesDown),
                flow.duration.map { Formatting.duration(seconds: $0) } ?? "-",
                flow.state, summary(flow),
            ]
        }
        let widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        let numeric: Set<Int> = [0, 5, 6, 7]
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return numeric.contains(column) ? padding + cell : cell + padding
            }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        }
        return ([headers] + rows).map(render).joined()
    }

    /// For HTTP: method, URL and status, as mitmproxy's list shows them.
    static func summary(_ flow: StoredFlow) -> String {
        guard let http = flow.http else { return "" }
        let url = http.url.count > 80 ? http.url.prefix(79) + "…" : Substring(http.url)
        return "\(http.method) \(url)" + (http.status.map { " \($0)" } ?? "")
    }

    static func json(_ flow: StoredFlow) -> String {
        StoredJSON.flow(flow)
    }
}
