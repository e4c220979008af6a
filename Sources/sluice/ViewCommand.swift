import ArgumentParser
import Foundation
import SluiceCore
import SluiceStore
import SluiceTUI

/// `sluice view [PATH]`: a store in the TUI, read-only, with no listeners.
struct ViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "view", abstract: "Open a store (or a file saved with w) read-only in the TUI.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "A store file (.sqlite) or data directory; default: the data directory.")
    var path: String?

    @Option(name: .long, help: "TUI theme: dark, light, mono.")
    var theme: String?

    func run() throws {
        guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else { throw fail("the terminal UI needs a terminal") }
        let opened: Store
        let chosenTheme: Theme
        let directory: DataDirectory
        /// The data directory viewed, when it is one (a saved file has no index beside it).
        var viewed: DataDirectory?
        var searchBytes = Configuration().searchBytes
        do {
            let configuration = try store.loadConfiguration()
            directory = store.dataDirectory(configuration)
            searchBytes = configuration.searchBytes
            if let path {
                var isDirectory: ObjCBool = false
                let expanded = Configuration.expandTilde(path)
                if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDirectory), isDirectory.boolValue {
                    viewed = DataDirectory(path: expanded)
                    opened = try Store(directory: DataDirectory(path: expanded))
                } else {
                    opened = try Store(file: expanded)
                }
            } else {
                viewed = directory
                opened = try Store(directory: directory)
            }
            chosenTheme = try Theme.named(theme ?? configuration.theme, searching: (directory.path as NSString).appendingPathComponent("themes"))
        } catch {
            throw fail(error)
        }
        // Read-only: no engine, and marks stay in memory; `w` still saves, under the data directory's exports/.
        let app = App(engine: nil, store: opened, feed: nil, dataDirectory: directory, title: "Sluice (read-only)")
        // The store stays read-only; its search index (a file of its own) is brought up to date behind the screen,
        // which builds it for a store recorded before it existed.
        var indexer: SearchIndexer?
        if let viewed, searchBytes > 0, let index = try? SearchIndex(directory: viewed, create: true) {
            app.searchIndex = index
            indexer = try? SearchIndexer(directory: viewed, index: index, settings: SearchIndexer.Settings(maxPayloadBytes: searchBytes))
            indexer?.start()
        }
        defer { indexer?.stop() }
        TerminalUI.run(app, theme: chosenTheme)
    }
}
