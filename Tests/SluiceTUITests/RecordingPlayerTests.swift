import Foundation
import SluiceModel
import SluiceStore
import SluiceTerminal
import SluiceTestSupport
import Testing

@testable import SluiceTUI

/// The detail's recording player: a small cast written here, seeking to its command markers, playing with a clock
/// of the test's own, seek points that show what a replay from the start shows, and the Player screen reached from
/// the Commands view.
@Suite(.ownThread) struct RecordingPlayerTests {
    private static let start: Int64 = 1_796_080_701

    /// A session: a prompt, `echo hello` typed and run, a long silence, then `ls`.
    private static let cast = """
        {"version": 2, "width": 20, "height": 5, "timestamp": \(start), "env": {"TERM": "xterm"}}
        [0.1, "o", "$ "]
        [1.0, "o", "echo hello"]
        [1.2, "m", "echo hello"]
        [1.3, "o", "\\r\\nhello\\r\\n$ "]
        [20.0, "o", "ls"]
        [20.5, "m", "ls"]
        [20.6, "o", "\\r\\nfile.txt\\r\\n$ "]

        """

    private func timeline(_ text: String = cast) throws -> RecordingTimeline {
        RecordingTimeline(try AsciicastReader.parse(Data(text.utf8)))
    }

    @Test func seekingToMarkersShowsTheScreenAtEachCommand() throws {
        var player = RecordingPlayer(try timeline())
        #expect(player.duration == 20.6)
        #expect(player.timeline.markers.map(\.label) == ["echo hello", "ls"])
        #expect(player.screen.visibleText.first == "")
        player.nextMarker()
        #expect(player.position == 1.2)
        #expect(player.currentMarker == 0)
        #expect(player.screen.visibleText.prefix(2) == ["$ echo hello", ""], "at Enter: typed, not yet run")
        player.nextMarker()
        #expect(player.position == 20.5)
        #expect(player.screen.visibleText.prefix(3) == ["$ echo hello", "hello", "$ ls"])
        player.nextMarker()
        #expect(player.position == 20.6, "past the last marker: the end")
        #expect(player.screen.visibleText.prefix(5) == ["$ echo hello", "hello", "$ ls", "file.txt", "$ "])
        player.previousMarker()
        #expect(player.position == 20.5)
        player.previousMarker()
        #expect(player.position == 1.2)
        player.previousMarker()
        #expect(player.position == 0 && player.currentMarker == nil)
        player.seek(by: RecordingPlayer.seekStep)
        #expect(player.position == 5 && player.screen.visibleText.prefix(2) == ["$ echo hello", "hello"])
        player.seek(by: -RecordingPlayer.seekStep * 3)
        #expect(player.position == 0)
        player.seek(to: 1000)
        #expect(player.position == 20.6)
        #expect(player.positionText == "20.6 s / 20.6 s")
    }

    @Test func playingFollowsTheClockAndCutsLongSilences() throws {
        var player = RecordingPlayer(try timeline())
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        player.togglePlaying(now: t0)
        #expect(player.isPlaying)
        var changed = player.tick(now: t0.addingTimeInterval(1.5))
        #expect(changed)
        #expect(abs(player.position - 1.5) < 1e-6)
        #expect(player.screen.visibleText.prefix(3) == ["$ echo hello", "hello", "$ "])
        changed = player.tick(now: t0.addingTimeInterval(1.52))
        #expect(!changed, "the same tenth of a second: nothing to draw")
        // 18.7 s of silence after 1.3 s play as 2 s (the idle limit), then the recording goes on.
        _ = player.tick(now: t0.addingTimeInterval(3.2))
        #expect(abs(player.position - 3.2) < 1e-6)
        _ = player.tick(now: t0.addingTimeInterval(3.5))
        #expect(abs(player.position - 20.2) < 1e-6)
        #expect(player.screen.visibleText[2] == "$ ls")
        // Paused, the clock moves it no more.
        player.togglePlaying(now: t0.addingTimeInterval(3.5))
        changed = player.tick(now: t0.addingTimeInterval(10))
        #expect(!changed)
        #expect(abs(player.position - 20.2) < 1e-6)
        // Played to the end, it stops there; space again starts from the beginning.
        player.togglePlaying(now: t0.addingTimeInterval(10))
        changed = player.tick(now: t0.addingTimeInterval(11))
        #expect(changed)
        #expect(player.position == 20.6 && !player.isPlaying)
        player.togglePlaying(now: t0.addingTimeInterval(12))
        #expect(player.position == 0 && player.isPlaying)
        // Without an idle limit the silence plays in full.
        player.idleLimit = nil
        _ = player.tick(now: t0.addingTimeInterval(12 + 10))
        #expect(abs(player.position - 10) < 1e-6)
    }

    /// A long recording (many events, resizes, the alternate screen, scrolling) so that the timeline keeps seek
    /// points; every seek, forwards and backwards, shows what replaying from the start shows.
    @Test func seekingFromSeekPointsEqualsReplayingFromTheStart() throws {
        var generator = SplitMix(seed: 17)
        var lines = [#"{"version": 2, "width": 40, "height": 10}"#]
        var time = 0.0
        let pieces = [
            "line ", "\\r\\n", "\\u001b[2J", "\\u001b[H", "\\u001b[5;3H", "wide 漢字 ", "\\u001b[K", "\\u001b[?1049h",
            "\\u001b[?1049l", "\\u001b[2;8r", "\\u001bM", "\\b\\b", "\\t", "\\u001b[3P", "\\u001b[2@", "abcdefghijklmnop",
        ]
        for index in 0..<6000 {
            time += Double(generator.next() % 100) / 1000
            if index % 997 == 0 {
                lines.append("[\(time), \"r\", \"\(30 + generator.next() % 30)x\(5 + generator.next() % 10)\"]")
            } else if index % 50 == 0 {
                lines.append("[\(time), \"m\", \"command \(index)\"]")
            } else {
                let text = (0..<3).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }.joined()
                lines.append("[\(time), \"o\", \"\(text)\(index)\"]")
            }
        }
        let timeline = try timeline(lines.joined(separator: "\n") + "\n")
        #expect(timeline.seekPoints.count >= 5, "a seek point every \(RecordingTimeline.seekPointSteps) events")
        var player = RecordingPlayer(timeline)
        func same(_ a: TerminalScreen, _ b: TerminalScreen) -> Bool {
            a.visibleText == b.visibleText && a.cursorRow == b.cursorRow && a.cursorColumn == b.cursorColumn
                && a.columns == b.columns && a.rows == b.rows && a.isAlternateScreen == b.isAlternateScreen
        }
        for _ in 0..<60 {
            let target = Double(generator.next() % 1_000_000) / 1_000_000 * timeline.duration
            player.seek(to: target)
            #expect(same(player.screen, timeline.linearScreen(at: target)), "at \(target)")
            #expect(same(timeline.screen(applied: timeline.applied(at: target)), timeline.linearScreen(at: target)))
        }
        for _ in 0..<20 {
            player.nextMarker()
            #expect(same(player.screen, timeline.linearScreen(at: player.position)))
        }
    }

    @Test func aCommandIsFoundByItsMarkerOrElseByItsTime() throws {
        let repeated = """
            {"version": 2, "width": 20, "height": 5, "timestamp": \(Self.start)}
            [1.0, "m", "ls"]
            [2.0, "m", "pwd"]
            [3.0, "m", "ls"]
            [9.0, "o", "bye"]

            """
        let timeline = try timeline(repeated)
        let at = { (offset: Double) in Double(Self.start) + offset }
        #expect(timeline.moment(ofCommand: "ls", occurrence: 0, at: at(3.4)) == 1.0, "the first ls, whatever the clock says")
        #expect(timeline.moment(ofCommand: "ls", occurrence: 1, at: at(1.2)) == 3.0)
        #expect(timeline.moment(ofCommand: "ls", occurrence: 5, at: at(2.9)) == 3.0, "no such marker: the nearest ls")
        #expect(timeline.moment(ofCommand: "uname -a", occurrence: -1, at: at(4.5)) == 4.5, "an exec: its time")
        #expect(timeline.moment(ofCommand: "uname -a", occurrence: -1, at: at(99)) == 9.0)
    }

    // MARK: The Player screen

    private let opened = Date(timeIntervalSince1970: TimeInterval(start))

    private func sshSession() -> [ProxyEvent] {
        func command(_ index: Int64, _ text: String, at offset: Double) -> ProxyEvent {
            .command(
                Command(
                    flowID: FlowID(1), index: index, time: opened.addingTimeInterval(offset), kind: .shell, text: text,
                    user: "alice", target: "10.0.0.7:22", risk: .low, action: .allow, rule: nil, decision: .allowed,
                    decidedBy: .policy
                )
            )
        }
        return [
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(1), kind: .ssh, listener: "ssh://127.0.0.1:2222=>10.0.0.7:22",
                    client: Endpoint(host: "127.0.0.1", port: 40001), server: Endpoint(host: "10.0.0.7", port: 22), time: opened
                )
            ),
            command(0, "echo hello", at: 1.2), command(1, "ls", at: 20.5),
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(2), kind: .tcp, listener: "tcp://127.0.0.1:9000=>10.0.0.5:7000",
                    client: Endpoint(host: "127.0.0.1", port: 40002), server: Endpoint(host: "10.0.0.5", port: 7000), time: opened
                )
            ),
        ]
    }

    private func dataDirectory(withCast: Bool) throws -> DataDirectory {
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-player-test-\(UUID().uuidString)")
        try directory.prepareRecordings()
        if withCast { try Data(Self.cast.utf8).write(to: URL(fileURLWithPath: directory.recordingPath(FlowID(1)))) }
        return directory
    }

    private func screen(_ app: App, width: Int = 100, height: Int = 30) -> TextCanvas {
        let canvas = TextCanvas(width: width, height: height)
        app.render(on: canvas)
        return canvas
    }

    /// Ticks (the background read comes back through the inbox) until `condition` holds.
    private func tick(_ app: App, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while !condition() && Date() < deadline {
            app.tick()
            Thread.sleep(forTimeInterval: 0.005)
        }
        return condition()
    }

    @Test func enterOnACommandOpensThePlayerAtItsMarkerAndBracketsMoveBetweenCommands() throws {
        let directory = try dataDirectory(withCast: true)
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let app = App(engine: nil, store: nil, feed: nil, dataDirectory: directory, title: "Sluice")
        app.apply(sshSession())
        app.handle(.character("4"))
        app.handle(.up)  // echo hello
        app.handle(.enter)
        #expect(app.view == .player)
        #expect(screen(app).text.contains("recording: loading…"))
        #expect(tick(app, until: { app.recording.player != nil }))
        var canvas = screen(app)
        var lines = canvas.lines
        #expect(lines[1].hasPrefix("flow 1  ssh"))
        #expect(lines[2].contains("paused  1.2 s / 20.6 s  command 1/2 at 1.2 s: echo hello"), "\(lines[2])")
        #expect(lines[3].hasPrefix("─ 20×5 ─"))
        #expect(lines[4] == "$ echo hello" && lines[5] == "")
        #expect(lines[9].contains("space play/pause"))
        #expect(lines[10] == "commands (2)")
        #expect(canvas.rowRoles[11] == .selection && lines[11].contains("$ echo hello"), "the command at the position")
        app.handle(.character("]"))
        canvas = screen(app)
        lines = canvas.lines
        #expect(lines[2].contains("20.5 s / 20.6 s  command 2/2 at 20.5 s: ls"), "\(lines[2])")
        #expect(Array(lines[4...6]) == ["$ echo hello", "hello", "$ ls"])
        #expect(canvas.rowRoles[12] == .selection && lines[12].contains("$ ls"))
        app.handle(.character("["))
        #expect(screen(app).lines[2].contains("1.2 s / 20.6 s"))
        app.handle(.end)
        #expect(screen(app).lines[7] == "file.txt")
        app.handle(.home)
        #expect(screen(app).lines[2].contains("0.0 s / 20.6 s  before the first of 2 commands"))
        app.handle(.right)
        #expect(screen(app).lines[2].contains("5.0 s / 20.6 s"))
        app.handle(.character(" "))
        #expect(screen(app).lines[2].contains("▶ playing"))
        // The help lists the player's keys for its screen.
        #expect(Bindings.helpLines().contains { $0.contains("previous command (its marker) [Player]") })
        // p: the detail without the player; p again: the player where it was.
        app.handle(.character("p"))
        #expect(app.view == .detail)
        #expect(screen(app).text.contains("p plays this one"))
        app.handle(.character("p"))
        #expect(app.view == .player)
        #expect(tick(app, until: { app.recording.player != nil }))
        #expect(screen(app).lines[2].contains("paused  5.0 s / 20.6 s"))
        app.handle(.escape)
        #expect(app.view == .commands)
    }

    @Test func aFlowWithoutARecordingSaysSo() throws {
        let directory = try dataDirectory(withCast: false)
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let app = App(engine: nil, store: nil, feed: nil, dataDirectory: directory, title: "Sluice")
        app.apply(sshSession())
        app.handle(.up)  // the SSH flow
        app.handle(.enter)
        #expect(app.view == .detail && app.detail?.flowID == FlowID(1))
        app.handle(.character("p"))
        #expect(app.view == .player)
        #expect(tick(app, until: { if case .missing = app.recording.state { true } else { false } }))
        #expect(screen(app, width: 160).lines[2].hasPrefix("no recording for flow 1: only SSH sessions with a terminal are recorded"))
        // A TCP flow has no recording to open.
        app.handle(.escape)
        app.handle(.down)
        app.handle(.enter)
        #expect(app.detail?.flowID == FlowID(2))
        app.handle(.character("p"))
        #expect(app.view == .detail)
        #expect(app.status?.text == "flow 2 is tcp: only SSH sessions are recorded")
    }
}

