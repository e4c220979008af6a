import ArgumentParser
import Foundation

/// `sluice`: the terminal UI, or with `--headless` the recorder.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start the proxy with the terminal UI, or with --headless without it."
    )

    @OptionGroup var options: EngineOptions

    @Option(name: .long, help: "TUI theme: dark, light, mono, or <data-dir>/themes/NAME.yaml.")
    var theme: String?

    @Flag(name: .long, help: "No terminal UI: relay and record, one line per event on stderr.")
    var headless = false

    func run() throws {
        if headless {
            try Session.run(options, frontEnd: .headless(quiet: options.quiet))
        } else {
            guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else {
                throw fail("the terminal UI needs a terminal; use --headless (or `sluice record`) without one")
            }
            try Session.run(options, frontEnd: .terminal(theme: theme))
        }
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
        try Session.run(options, frontEnd: .headless(quiet: options.quiet))
    }
}
