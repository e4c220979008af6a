import SluiceTestSupport
import Testing

@testable import SluiceSSH

/// The tracker's protocol with hand-written echo: where Enter splits a chunk, what a paste does, what is not judged.
@Suite struct ShellLineTrackerTests {
    private let prompt = Array("\u{1b}[?2004h\u{1b}[32muser@host\u{1b}[0m:~$ ".utf8)

    private func tracker(columns: Int = 80, rows: Int = 24) -> ShellLineTracker {
        var tracker = ShellLineTracker(columns: columns, rows: rows)
        tracker.serverOutput(prompt)
        return tracker
    }

    @Test func aChunkWithAnEnterIsSplitAroundIt() {
        var tracker = tracker()
        let step = tracker.clientInput(Array("ls -l\rpwd".utf8))
        #expect(step == .submit(before: Array("ls -l".utf8), enter: [0x0D], rest: Array("pwd".utf8)))
        tracker.serverOutput(Array("ls -l".utf8))
        #expect(tracker.submittedLine() == "ls -l")
        #expect(tracker.clientInput(Array("x".utf8)) == .forward(Array("x".utf8)))
        #expect(tracker.clientInput([0x0D, 0x0A, 0x41]) == .submit(before: [], enter: [0x0D, 0x0A], rest: [0x41]))
    }

    @Test func keysWithoutEnterAreForwarded() {
        var tracker = tracker()
        #expect(tracker.clientInput(Array("echo".utf8)) == .forward(Array("echo".utf8)))
        #expect(tracker.clientInput([0x1B, 0x5B, 0x44]) == .forward([0x1B, 0x5B, 0x44]))
    }

    @Test func anEmptyLineOrAnUnechoedOneGivesNothingToJudge() {
        var tracker = tracker()
        #expect(tracker.clientInput([0x0D]) == .submit(before: [], enter: [0x0D], rest: []))
        #expect(tracker.submittedLine() == nil)
        tracker.serverOutput(Array("\r\nPassword: ".utf8))
        _ = tracker.clientInput(Array("hunter2\r".utf8))
        #expect(tracker.submittedLine() == nil)
    }

    @Test func newlinesInsideABracketedPasteDoNotSubmit() {
        var tracker = tracker()
        let paste = Array("\u{1b}[200~echo a\recho b\u{1b}[201~".utf8)
        #expect(tracker.clientInput(paste) == .forward(paste))
        // The markers may be cut by the channel anywhere.
        let start = Array("\u{1b}[20".utf8)
        #expect(tracker.clientInput(start) == .forward(start))
        let rest = Array("0~x\ry\u{1b}[201~\r".utf8)
        #expect(tracker.clientInput(rest) == .submit(before: Array(rest.dropLast()), enter: [0x0D], rest: []))
    }

    @Test func pasteMarkersCountOnlyOnceTheShellAskedForThem() {
        var tracker = ShellLineTracker(columns: 80, rows: 24)
        tracker.serverOutput(Array("$ ".utf8))
        let paste = Array("\u{1b}[200~a\rb".utf8)
        #expect(tracker.clientInput(paste) == .submit(before: Array("\u{1b}[200~a".utf8), enter: [0x0D], rest: [0x62]))
    }

    @Test func nothingIsJudgedOnTheAlternateScreen() {
        var tracker = tracker()
        tracker.serverOutput(Array("\u{1b}[?1049h~\r\n~".utf8))
        #expect(tracker.isAlternateScreen)
        #expect(tracker.clientInput(Array(":wq\r".utf8)) == .forward(Array(":wq\r".utf8)))
        #expect(tracker.submittedLine() == nil)
        tracker.serverOutput(Array("\u{1b}[?1049l\r\n\u{1b}[32muser@host\u{1b}[0m:~$ ".utf8))
        _ = tracker.clientInput(Array("id\r".utf8))
        tracker.serverOutput(Array("id".utf8))
        #expect(tracker.submittedLine() == "id")
    }

    @Test func aLineLongerThanTheScreenReadsWhole() {
        var tracker = tracker(columns: 20, rows: 4)
        let command = "echo " + String(repeating: "0123456789", count: 12)
        _ = tracker.clientInput(Array((command + "\r").utf8))
        tracker.serverOutput(Array(command.utf8))
        #expect(tracker.submittedLine() == command)
    }

    @Test func ctrlCStartsANewLineAtTheNextPrompt() {
        var tracker = tracker()
        _ = tracker.clientInput(Array("rm -rf /".utf8))
        tracker.serverOutput(Array("rm -rf /".utf8))
        #expect(tracker.clientInput([0x03]) == .forward([0x03]))
        tracker.serverOutput(Array("^C\r\n".utf8) + prompt)
        _ = tracker.clientInput(Array("ls\r".utf8))
        tracker.serverOutput(Array("ls".utf8))
        #expect(tracker.submittedLine() == "ls")
    }

    @Test func theBlockSequenceErasesTheWholeLineAndTheNoticeCannotCarryEscapes() {
        let tracker = tracker()
        let block = tracker.blockSequence(reason: "critical: rm -rf / (rule rm-root)\u{1b}[2J")
        #expect(block.toServer == [0x05, 0x15, 0x0D])
        #expect(
            String(decoding: block.toClient, as: UTF8.self)
                == "\r\n[sluice] blocked: critical: rm -rf / (rule rm-root) [2J\r\n")
    }

    @Test func hostileOutputAndInputNeverCrash() {
        var generator = SplitMix(seed: 99)
        var tracker = ShellLineTracker(columns: 30, rows: 5)
        for round in 0..<300 {
            let output = (0..<256).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            tracker.serverOutput(output)
            let input = (0..<16).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if case .submit = tracker.clientInput(input) {
                _ = tracker.submittedLine()
            }
            if round % 50 == 0 {
                tracker.resize(columns: Int(generator.next() % 300), rows: Int(generator.next() % 300))
            }
        }
    }
}
