import ArgumentParser
import Foundation
import SluiceModel

@main
struct Sluice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "An interactive intercepting proxy: relay, record, hold, edit and replay traffic.",
        discussion: """
            With no subcommand, sluice runs the proxy with the terminal UI (`sluice run`; `sluice help run` lists its listeners, timeouts and limits), by default an explicit HTTP(S) proxy on 127.0.0.1:8080.

            Examples:
              sluice                # the TUI, with a proxy on 127.0.0.1:8080
              sluice --listen 'reverse+http://127.0.0.1:8000=>http://10.0.0.5:8080'
              sluice --headless --listen 'tcp://127.0.0.1:9000=>10.0.0.5:7000'
              sluice flows --limit 20
              sluice show 42 --hex
              sluice play 42        # a recorded SSH session
              sluice commands --risk high
              sluice policy check 'sudo rm -rf /'
            """,
        version: SluiceVersion.current,
        subcommands: [
            RunCommand.self, RecordCommand.self, FlowsCommand.self, ShowCommand.self, ReplayCommand.self, ViewCommand.self,
            CACommand.self, ExportCommand.self, PlayCommand.self, CommandsCommand.self, AlertsCommand.self, PolicyCommand.self,
            AttachCommand.self, SearchCommand.self, TransparentCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )
}

/// Prints `sluice: <message>` on stderr and exits 1 (or `status`): every failure the operator can cause ends in
/// one line, never a stack trace.
func fail(_ message: Any, status: Int32 = 1) -> ExitCode {
    FileHandle.standardError.write(Data("sluice: \(message)\n".utf8))
    return ExitCode(status)
}
