import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

/// `sluice search WORDS…`: the flows whose recorded text holds every word, from the full-text index.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Find the flows whose recorded text holds every word (full-text search of all history).",
        discussion: """
            Searches HTTP heads, text bodies, WebSocket text, raw TCP and SSH text, commands, SQL and flow errors. A \
            word matches whole words and words that start with it, case and accents aside (`passw` finds \
            `Password`); a word with punctuation is a phrase (`example.com`). The index (<data-dir>/search.sqlite) \
            is kept by the recorder behind its writes; this command first adds whatever it has not indexed yet, \
            which builds the whole index for a store recorded before it existed.

            Examples:
              sluice search password
              sluice search --json 'DROP TABLE' customers
            """
    )

    @OptionGroup var store: StoreOptions

    @Argument(help: "Words that must all appear in one piece of a flow's recorded text.")
    var words: [String]

    @Flag(name: .long, help: "One JSON object per line instead of a table.")
    var json = false

    @Option(name: .long, help: "Show the newest N matching flows.")
    var limit = 100

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        guard !words.isEmpty else { throw ValidationError("give at least one word to search for") }
    }

    func run() throws {
        var flows: [StoredFlow] = []
        do {
            let configuration = try store.loadConfiguration()
            let directory = store.dataDirectory(configuration)
            let database = try Store(directory: directory)
            let index = try SearchIndex(directory: directory, create: true)
            let indexer = try SearchIndexer(
                directory: directory, index: index, settings: SearchIndexer.Settings(maxPayloadBytes: configuration.searchBytes)
            )
            try indexer.catchUp()
            for id in try index.flows(matching: words, limit: limit) {
                if let flow = try database.flow(id) { flows.append(flow) }
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
