import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

/// `sluice play ID|FILE`: a recorded terminal session (asciicast) played back with its recorded pauses.
struct PlayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "play", abstract: "Play a recorded terminal session (an SSH flow's recording, or a .cast file).",
        discussion: """
            ID is a flow id: its recording is <data-dir>/recordings/ID.cast. Anything else is an asciicast file (v2 \
            or v3), which asciinema plays too.

            Keys while playing: space pauses and resumes, . shows the next output while paused, q quits. When \
            stdout is not a terminal, the output is written at once, without pauses.

            Examples:
              sluice play 42
              sluice play 42 --speed 4 --idle-limit 0.5
              sluice play session.cast > session.txt
            """
    )

    @OptionGroup var store: StoreOptions

    @Argument(help: ArgumentHelp("A flow id or a .cast file.", valueName: "ID|FILE"))
    var recording: String

    @Option(name: .long, help: "Play this many times faster (default 1).")
    var speed: Double = 1

    @Option(name: .customLong("idle-limit"), help: "Longest pause in seconds; longer ones are cut to it (default 2).")
    var idleLimit: Double = 2

    func run() throws {
        guard speed.isFinite, speed > 0, speed <= 1_000_000 else { throw fail("--speed must be a number above 0") }
        guard idleLimit.isFinite, idleLimit >= 0 else { throw fail("--idle-limit must be 0 or more seconds") }
        let path = try resolvePath()
        let parsed: AsciicastReader.Recording
        do {
            parsed = try AsciicastReader.read(path: path)
        } catch {
            throw fail(error.line == nil ? error.message : "\(path): \(error)")
        }
        if parsed.tornLastLine {
            let note = "sluice: \(path) ends in a torn line (the recording was cut); playing what is whole\n"
            FileHandle.standardError.write(Data(note.utf8))
        }
        let playback = AsciicastPlayback(parsed, speed: speed, idleLimit: idleLimit)
        guard isatty(STDOUT_FILENO) != 0 else {
            for frame in playback.frames { FileHandle.standardOutput.write(Data(frame.text.utf8)) }
            return
        }
        TerminalPlayer(frames: playback.frames).run()
    }

    /// The recording's file: a flow's, when the argument is a flow id and no file of that name exists.
    private func resolvePath() throws -> String {
        if let id = Int64(recording), !FileManager.default.fileExists(atPath: recording) {
            let directory: DataDirectory
            do {
                directory = store.dataDirectory(try store.loadConfiguration())
            } catch {
                throw fail(error)
            }
            let path = directory.recordingPath(FlowID(id))
            guard FileManager.default.fileExists(atPath: path) else {
                throw fail("no recording for flow \(id) (\(path) does not exist; only SSH sessions are recorded)")
            }
            return path
        }
        guard FileManager.default.fileExists(atPath: recording) else {
            throw fail("\(recording): no such file, and not a flow id")
        }
        return recording
    }
}

/// Plays frames on the terminal with their pauses, reading keys from stdin (raw mode, restored at the end).
private struct TerminalPlayer {
    let frames: [AsciicastPlayback.Frame]

    func run() {
        let interactive = isatty(STDIN_FILENO) != 0
        var saved = termios()
        if interactive {
            tcgetattr(STDIN_FILENO, &saved)
            var raw = saved
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
            tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        }
        defer { if interactive { tcsetattr(STDIN_FILENO, TCSANOW, &saved) } }
        var paused = false
        var index = 0
        while index < frames.count {
            var remaining = frames[index].delay
            var step = false
            while paused || remaining > 0 {
                let started = Date()
                let timeout = paused ? -1 : Int32(min(remaining * 1000, Double(Int32.max)).rounded(.up))
                guard interactive, let key = readKey(timeout: timeout) else {
                    if !interactive { usleep(UInt32(min(remaining, 4000) * 1_000_000)) }
                    remaining = 0
                    break
                }
                if !paused { remaining -= Date().timeIntervalSince(started) }
                switch key {
                case UInt8(ascii: "q"), 0x03:
                    return
                case UInt8(ascii: " "):
                    paused.toggle()
                case UInt8(ascii: ".") where paused:
                    step = true
                default:
                    break
                }
                if step { break }
            }
            FileHandle.standardOutput.write(Data(frames[index].text.utf8))
            index += 1
        }
    }

    /// One key, or nil when `timeout` milliseconds pass first (-1: wait as long as it takes).
    private func readKey(timeout: Int32) -> UInt8? {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeout) > 0 else { return nil }
        var byte: UInt8 = 0
        guard read(STDIN_FILENO, &byte, 1) == 1 else { return nil }
        return byte
    }
}
