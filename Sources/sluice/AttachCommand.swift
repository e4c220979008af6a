import ArgumentParser
import Foundation
import SluiceAPI
import SluiceCore
import SluiceRemote
import SluiceStore
import SluiceTUI

/// `sluice attach`: the TUI on a recorder that runs without one (`sluice --headless --api …`), from another
/// terminal: the recorder's history from its store (read-only), live flows, commands and holds from its event
/// stream, and verdicts, kills and listeners sent back through its API. Quitting leaves the recorder running;
/// several operators may attach at once, and the first verdict on a hold wins.
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach", abstract: "Open the TUI on a running headless recorder, through its control API."
    )

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "The recorder's API: http://HOST:PORT or unix:PATH. Default: the one the recorder wrote in <data-dir>/api-address.")
    var api: String?

    @Option(name: .customLong("token-file"), help: "The API's token file. Default: <data-dir>/api-token.")
    var tokenFile: String?

    @Option(name: .long, help: "TUI theme: dark, light, mono.")
    var theme: String?

    func run() throws {
        guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else { throw fail("the terminal UI needs a terminal") }
        let client: APIClient
        let chosenTheme: Theme
        let directory: DataDirectory
        do {
            let configuration = try store.loadConfiguration()
            directory = store.dataDirectory(configuration)
            chosenTheme = try Theme.named(theme ?? configuration.theme, searching: (directory.path as NSString).appendingPathComponent("themes"))
            guard let addressText = api ?? APIAddressFile.read(inDirectory: directory.path) ?? configuration.apiListen else {
                throw fail(
                    "no recorder serves its API from \(directory.path) (start one with `sluice --headless --api 127.0.0.1:8081`, or give --api)"
                )
            }
            let tokenPath = tokenFile.map(Configuration.expandTilde) ?? (directory.path as NSString).appendingPathComponent("api-token")
            guard let tokenData = FileManager.default.contents(atPath: tokenPath) else {
                throw fail("cannot read the API token \(tokenPath) (the recorder makes it when its API starts; give --token-file)")
            }
            let token = String(decoding: tokenData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            client = APIClient(address: try APIListenAddress(parsing: addressText), token: token)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(error)
        }

        let attachment = RecorderAttachment(client: client)
        do {
            try attachment.start()
        } catch {
            attachment.stop()
            throw fail(error)
        }
        defer { attachment.stop() }

        // The recorder's history: its own store, read-only (it names the file, so --api alone finds it).
        let recorder = (try? client.request(.GET, "/api/recorder"))?.data as? [String: Any]
        let storePath = recorder?["store"] as? String
        let history = storePath.flatMap { try? Store(file: $0) }
        let recorderDirectory = (recorder?["data_dir"] as? String).map { DataDirectory(path: $0) } ?? directory
        let app = App(
            engine: attachment.engine, store: history, feed: attachment.feed, dataDirectory: recorderDirectory,
            title: "Sluice (attached to \(client.address))"
        )
        app.connectionProblem = { attachment.problem }
        app.replayer = RemoteReplayer(client: client)
        // The recorder keeps its search index up to date; the TUI only reads it.
        app.searchIndex = try? SearchIndex(directory: recorderDirectory, create: false)
        if history == nil {
            app.setStatus("the recorder's store \(storePath ?? "(none)") cannot be read here: live flows only", isError: true)
        } else {
            app.setStatus("attached to the recorder at \(client.address)")
        }
        TerminalUI.run(app, theme: chosenTheme)
    }
}
