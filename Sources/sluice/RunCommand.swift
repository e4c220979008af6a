import ArgumentParser
import Foundation

/// `sluice`: the terminal UI, or with `--headless` the recorder.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start the proxy with the terminal UI (or --headless).",
        shouldDisplay: false
    )

    @OptionGroup var options: EngineOptions

    @Flag(name: .long, help: "No terminal UI: relay and record, one line per event on stderr.")
    var headless = false

    func run() throws {
        guard headless else {
            FileHandle.standardError.write(
                Data("sluice: the terminal UI is not part of this build yet; run `sluice --headless --listen SPEC` (or `sluice record`)\n".utf8)
            )
            throw ExitCode(2)
        }
        try HeadlessSession.run(options)
    }
}

/// `sluice record`: the same as `sluice --headless`.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Relay and record without a terminal UI (same as --headless)."
    )

    @OptionGroup var options: EngineOptions

    func run() throws {
        try HeadlessSession.run(options)
    }
}
