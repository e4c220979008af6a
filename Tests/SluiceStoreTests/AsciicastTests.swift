import Foundation
import SluiceModel
import Testing

@testable import SluiceStore

/// The asciicast writer and reader: what `asciinema play` and `sluice play` read back is what the terminal showed.
@Suite struct AsciicastTests {
    private func lines(_ build: (inout AsciicastEncoder, inout ByteSink) -> Void) -> [String] {
        var encoder = AsciicastEncoder(header: AsciicastHeader(width: 80, height: 24))
        var sink = ByteSink()
        build(&encoder, &sink)
        return String(decoding: sink.array, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private func temporaryPath() -> String {
        NSTemporaryDirectory() + "sluice-cast-test-\(UUID().uuidString)"
    }

    @Test func headerHasVersionSizeTimestampAndEnv() throws {
        let header = AsciicastHeader(
            width: 120, height: 40, timestamp: 1_700_000_000, term: "xterm-256color", shell: "/bin/bash",
            title: "alice@db1"
        )
        var sink = ByteSink()
        AsciicastEncoder(header: header).appendHeader(to: &sink)
        #expect(
            String(decoding: sink.array, as: UTF8.self)
                == #"{"version":2,"width":120,"height":40,"timestamp":1700000000,"#
                + #""env":{"TERM":"xterm-256color","SHELL":"/bin/bash"},"title":"alice@db1"}"# + "\n"
        )
        let parsed = try AsciicastReader.parse(Data(sink.array))
        #expect(parsed.header == header)
    }

    @Test func eventsEscapeControlCharactersAndKeepSixDecimals() {
        let result = lines { encoder, sink in
            encoder.output(Array("a\u{1b}[1mb\r\n\"\\\t\u{7}".utf8), at: 0.1234567, to: &sink)
            encoder.input([0x03], at: 2, to: &sink)
            encoder.resize(columns: 100, rows: 30, at: 2.5, to: &sink)
            encoder.marker("rm -rf /", at: 3.000001, to: &sink)
        }
        #expect(
            result == [
                #"[0.123457,"o","a\u001b[1mb\r\n\"\\\t\u0007"]"#,
                #"[2.0,"i","\u0003"]"#,
                #"[2.5,"r","100x30"]"#,
                #"[3.000001,"m","rm -rf /"]"#,
            ]
        )
    }

    @Test func timesNeverGoBackwards() {
        let result = lines { encoder, sink in
            encoder.output(Array("a".utf8), at: 5, to: &sink)
            encoder.output(Array("b".utf8), at: 4, to: &sink)
            encoder.output(Array("c".utf8), at: .nan, to: &sink)
        }
        #expect(result == [#"[5.0,"o","a"]"#, #"[5.0,"o","b"]"#, #"[5.0,"o","c"]"#])
    }

    @Test func aCharacterSplitAtAnyByteIsWrittenWholeInTheSecondEvent() throws {
        let text = "é€𝄞 ok ñ日本"
        let bytes = Array(text.utf8)
        for split in 0...bytes.count {
            var encoder = AsciicastEncoder(header: AsciicastHeader(width: 80, height: 24))
            var sink = ByteSink()
            encoder.appendHeader(to: &sink)
            encoder.output(bytes[..<split], at: 1, to: &sink)
            encoder.output(bytes[split...], at: 2, to: &sink)
            encoder.finish(at: 3, to: &sink)
            let parsed = try AsciicastReader.parse(Data(sink.array))
            #expect(parsed.events.map(\.data).joined() == text, "split at \(split)")
            #expect(!parsed.events.contains { $0.data.contains("\u{FFFD}") }, "split at \(split)")
        }
    }

    @Test func everyByteAtATimeStillDecodes() throws {
        let text = "€𝄞é"
        var encoder = AsciicastEncoder(header: AsciicastHeader(width: 80, height: 24))
        var sink = ByteSink()
        encoder.appendHeader(to: &sink)
        for (index, byte) in text.utf8.enumerated() { encoder.output([byte], at: Double(index), to: &sink) }
        let parsed = try AsciicastReader.parse(Data(sink.array))
        #expect(parsed.events.map(\.data) == ["€", "𝄞", "é"])
    }

    @Test func invalidBytesBecomeReplacementCharacters() {
        var output: [UInt8] = []
        var decoder = IncrementalUTF8()
        // A lone continuation, an overlong form, a surrogate, a truncated sequence followed by ASCII, then F5.
        decoder.decode([0x80, 0x41, 0xC0, 0xAF, 0xED, 0xA0, 0x80, 0xE2, 0x82, 0x42, 0xF5], into: &output)
        #expect(
            String(decoding: output, as: UTF8.self)
                == String(decoding: [0x80, 0x41, 0xC0, 0xAF, 0xED, 0xA0, 0x80, 0xE2, 0x82, 0x42, 0xF5], as: UTF8.self))
        #expect(decoder.tail.isEmpty)
    }

    @Test func finishFlushesAnIncompleteTailAsReplacement() {
        let result = lines { encoder, sink in
            encoder.output([0x61, 0xE2, 0x82], at: 1, to: &sink)
            encoder.finish(at: 2, to: &sink)
        }
        #expect(result == [#"[1.0,"o","a"]"#, #"[2.0,"o","\#u{FFFD}"]"#])
    }

    @Test func aRecordingRoundTripsThroughItsFileWithMode0600() throws {
        let directory = DataDirectory(path: temporaryPath())
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        let recording = try AsciicastRecording(
            directory: directory, flow: FlowID(42), header: AsciicastHeader(width: 80, height: 24, term: "xterm"),
            start: start
        )
        try recording.output(Array("$ ".utf8), at: start.addingTimeInterval(0.5))
        try recording.input(Array("ls\r".utf8), at: start.addingTimeInterval(1))
        try recording.output([0x6C, 0x73, 0xE2], at: start.addingTimeInterval(1.01))
        try recording.output([0x82, 0xAC, 0x0D, 0x0A], at: start.addingTimeInterval(1.02))
        try recording.resize(columns: 100, rows: 50, at: start.addingTimeInterval(2))
        try recording.marker("ls", at: start.addingTimeInterval(2))
        try recording.close(at: start.addingTimeInterval(3))
        try recording.output(Array("ignored".utf8))

        let path = directory.recordingPath(FlowID(42))
        #expect(path.hasSuffix("/recordings/42.cast"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let directoryAttributes = try FileManager.default.attributesOfItem(atPath: directory.recordingsPath)
        #expect((directoryAttributes[.posixPermissions] as? Int) == 0o700)

        let parsed = try AsciicastReader.read(path: path)
        #expect(parsed.header == AsciicastHeader(width: 80, height: 24, timestamp: 1_700_000_000, term: "xterm"))
        #expect(
            parsed.events == [
                AsciicastEvent(time: 0.5, code: .output, data: "$ "),
                AsciicastEvent(time: 1, code: .input, data: "ls\r"),
                AsciicastEvent(time: 1.01, code: .output, data: "ls"),
                AsciicastEvent(time: 1.02, code: .output, data: "€\r\n"),
                AsciicastEvent(time: 2, code: .resize, data: "100x50"),
                AsciicastEvent(time: 2, code: .marker, data: "ls"),
            ]
        )
        #expect(!parsed.tornLastLine)
    }

    @Test func aRecordingThatCannotBeCreatedIsOneLineError() throws {
        // A FIFO in place of the file: open() must not wait for a reader (it would hold the connection's event loop).
        let fifo = temporaryPath() + "-fifo.cast"
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        var messages: [String] = []
        for path in ["/dev/null", temporaryPath() + "/missing/1.cast", fifo] {
            do {
                _ = try AsciicastRecording(path: path, header: AsciicastHeader(width: 80, height: 24))
            } catch {
                messages.append(error.message)
            }
        }
        #expect(messages.count == 3)
        #expect(messages.first == "cannot record to /dev/null: not a regular file")
        #expect(messages.dropFirst().first?.hasSuffix("1.cast: no such file or directory") == true)
        #expect(messages.last == "cannot create recording \(fifo): no such device or address")
    }

    @Test func linesReachTheFileAfterTheFlushIntervalWithoutClose() throws {
        let path = temporaryPath()
        defer { unlink(path) }
        let start = Date()
        let recording = try AsciicastRecording(path: path, header: AsciicastHeader(width: 80, height: 24), start: start)
        try recording.output(Array("first".utf8), at: start)
        #expect(recording.hasPendingLines)
        #expect(try AsciicastReader.read(path: path).events.isEmpty, "buffered, not yet written")
        try recording.output(Array("second".utf8), at: start.addingTimeInterval(AsciicastRecording.flushInterval))
        #expect(!recording.hasPendingLines)
        #expect(try AsciicastReader.read(path: path).events.map(\.data) == ["first", "second"])
        try recording.output(Array("third".utf8), at: start.addingTimeInterval(1))
        try recording.flush()
        #expect(try AsciicastReader.read(path: path).events.count == 3)
    }

    @Test func aTornLastLineIsLeftOutAndTheRestPlays() throws {
        let text = #"{"version":2,"width":80,"height":24}"# + "\n" + #"[0.5,"o","hello"]"# + "\n" + #"[1.0,"o","wor"#
        let parsed = try AsciicastReader.parse(Data(text.utf8))
        #expect(parsed.events == [AsciicastEvent(time: 0.5, code: .output, data: "hello")])
        #expect(parsed.tornLastLine)
    }

    @Test func aBadLineInTheMiddleIsAnErrorNamingIt() {
        let text =
            #"{"version":2,"width":80,"height":24}"# + "\n" + #"[0.5,"o","hello"]"# + "\n" + "garbage\n"
            + #"[1.0,"o","x"]"# + "\n"
        #expect(throws: AsciicastError(line: 3, "not an event: expected [time, code, data]")) {
            try AsciicastReader.parse(Data(text.utf8))
        }
        #expect(throws: AsciicastError(line: 2, "event time is not a number of seconds")) {
            try AsciicastReader.parse(Data((#"{"version":2,"width":80,"height":24}"# + "\n[-1,\"o\",\"x\"]\n").utf8))
        }
        #expect(throws: AsciicastError(line: 1, "asciicast version 1 is not supported (2 and 3 are)")) {
            try AsciicastReader.parse(Data(#"{"version":1,"width":80,"height":24}"#.utf8 + [0x0A]))
        }
        #expect(throws: AsciicastError(line: nil, "empty file: no asciicast header")) {
            try AsciicastReader.parse(Data())
        }
    }

    @Test func version3IntervalsAddUpAndTermGivesTheSize() throws {
        let text = """
            {"version": 3, "term": {"cols": 100, "rows": 30, "type": "xterm-256color"}, "timestamp": 1700000000}
            # a comment
            [0.5, "o", "a"]
            [0.25, "o", "b"]
            [1.0, "x", "0"]

            """
        let parsed = try AsciicastReader.parse(Data(text.utf8))
        #expect(parsed.header.version == 3)
        #expect(parsed.header.width == 100 && parsed.header.height == 30 && parsed.header.term == "xterm-256color")
        #expect(parsed.events.map(\.time) == [0.5, 0.75, 1.75])
        #expect(parsed.events.map(\.code) == [.output, .output, .exit])
    }

    @Test func playbackCapsPausesBeforeTheSpeedAppliesAndShowsOnlyOutput() {
        let recording = AsciicastReader.Recording(
            header: AsciicastHeader(width: 80, height: 24),
            events: [
                AsciicastEvent(time: 1, code: .output, data: "a"),
                AsciicastEvent(time: 1.5, code: .input, data: "x"),
                AsciicastEvent(time: 11, code: .output, data: "b"),
                AsciicastEvent(time: 11.5, code: .marker, data: "m"),
                AsciicastEvent(time: 12, code: .output, data: "c"),
            ],
            tornLastLine: false
        )
        let playback = AsciicastPlayback(recording, speed: 2, idleLimit: 2)
        #expect(
            playback.frames == [
                AsciicastPlayback.Frame(delay: 0.5, text: "a"), AsciicastPlayback.Frame(delay: 1, text: "b"),
                AsciicastPlayback.Frame(delay: 0.5, text: "c"),
            ]
        )
        #expect(AsciicastPlayback(recording, speed: 1, idleLimit: nil).duration == 12)
    }

    @Test(.enabled(if: Asciinema.path != nil, "asciinema (PyPI) is not installed; scripts/setup --test installs it"))
    func asciinemaReadsWhatTheRecordingWrote() throws {
        let path = temporaryPath() + ".cast"
        defer { unlink(path) }
        let start = Date()
        let recording = try AsciicastRecording(path: path, header: AsciicastHeader(width: 80, height: 24), start: start)
        let chunks: [[UInt8]] = [
            Array("$ echo h".utf8), [0xC3], [0xA9, 0x6C, 0x6C, 0x6F, 0x0D, 0x0A],
            Array("\u{1b}[1mhéllo\u{1b}[0m\r\n$ ".utf8),
        ]
        for (index, chunk) in chunks.enumerated() {
            try recording.output(chunk, at: start.addingTimeInterval(Double(index) * 0.01))
        }
        try recording.marker("echo héllo", at: start.addingTimeInterval(0.02))
        try recording.close(at: start.addingTimeInterval(0.05))
        for command in [["cat", path], ["play", "-s", "100", "-i", "0.1", path]] {
            let played = try Asciinema.run(command)
            #expect(played.status == 0, "asciinema \(command[0]): \(played.stderr)")
            #expect(played.stdout == Array(chunks.joined()), "asciinema \(command[0])")
        }
    }
}

/// The asciinema command line, when it is installed.
enum Asciinema {
    static let path: String? = {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/asciinema"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    /// Runs asciinema with a 30 s limit: a player that waits for a terminal must not hang the suite.
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path ?? "/nonexistent")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = DispatchTime.now() + 30
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: deadline, execute: killer)
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        return (process.terminationStatus, [UInt8](stdout), String(decoding: stderr, as: UTF8.self))
    }
}
