import Foundation
import Testing

import SluiceTerminal

@testable import SluiceSSH

/// Real shells, recorded in a pty by tests/fixtures/shell/record.py, replayed through the tracker the way the SSH
/// relay drives it: each scenario's submitted lines must come out exactly.
@Suite struct ShellFixtureTests {
    struct Event {
        var output: [UInt8]?
        var input: [UInt8]?
        var role: String?
    }

    struct Scenario {
        var name: String
        var expected: [String]
        var events: [Event]
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../tests/fixtures/shell").standardizedFileURL

    static func bytes(_ value: Any?) -> [UInt8]? {
        guard let object = value as? [String: Any] else { return nil }
        if let text = object["text"] as? String { return Array(text.utf8) }
        if let base64 = object["base64"] as? String, let data = Data(base64Encoded: base64) { return Array(data) }
        return nil
    }

    static func load(_ shell: String) throws -> (columns: Int, rows: Int, scenarios: [Scenario]) {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(shell).json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let scenarios = try #require(root["scenarios"] as? [[String: Any]]).map { scenario in
            Scenario(
                name: scenario["name"] as? String ?? "?", expected: scenario["expected"] as? [String] ?? [],
                events: (scenario["events"] as? [[String: Any]] ?? []).map { event in
                    Event(output: bytes(event["out"]), input: bytes(event["in"]), role: event["role"] as? String)
                }
            )
        }
        return (try #require(root["columns"] as? Int), try #require(root["rows"] as? Int), scenarios)
    }

    /// Replays a scenario; returns the lines judged and the screen the client would see (with block notices).
    static func replay(_ scenario: Scenario, columns: Int, rows: Int) -> (lines: [String], client: TerminalScreen) {
        var tracker = ShellLineTracker(columns: columns, rows: rows)
        var client = TerminalScreen(columns: columns, rows: rows)
        var lines: [String] = []
        var judgeAt: Int?
        var skip: Set<Int> = []
        func judge() {
            if let line = tracker.submittedLine() { lines.append(line) }
        }
        for (index, event) in scenario.events.enumerated() {
            if let output = event.output {
                tracker.serverOutput(output)
                client.feed(output)
                continue
            }
            guard let input = event.input, !skip.contains(index) else { continue }
            switch event.role {
            case "before":
                // The keys and the Enter were one chunk for the tracker; the recorder sent them as the relay
                // would: the keys, a wait for their echo, then the Enter.
                guard let enter = scenario.events[(index + 1)...].firstIndex(where: { $0.role == "enter" }),
                    let enterBytes = scenario.events[enter].input
                else { continue }
                switch tracker.clientInput(input + enterBytes) {
                case .submit(let before, let enterStep, let rest):
                    #expect(before == input && enterStep == enterBytes && rest.isEmpty, "\(scenario.name)")
                    judgeAt = enter
                case .forward:
                    skip.insert(enter)
                }
            case "enter":
                if judgeAt == index {
                    judge()
                    judgeAt = nil
                } else if case .submit = tracker.clientInput(input) {
                    judge()
                }
            case "block":
                // The user's Enter, judged and blocked: the recorder sent the block sequence instead.
                if case .submit = tracker.clientInput([0x0D]) { judge() }
                let block = tracker.blockSequence(reason: "test rule")
                #expect(input == block.toServer, "\(scenario.name): the fixture was recorded with another sequence")
                client.feed(block.toClient)
            default:
                #expect(tracker.clientInput(input) == .forward(input), "\(scenario.name): keys without an Enter")
            }
        }
        return (lines, client)
    }

    @Test(arguments: ["bash", "dash"])
    func submittedLinesMatchWhatTheShellRan(shell: String) throws {
        let fixture = try Self.load(shell)
        #expect(fixture.scenarios.count >= 8)
        for scenario in fixture.scenarios {
            let result = Self.replay(scenario, columns: fixture.columns, rows: fixture.rows)
            #expect(result.lines == scenario.expected, "\(shell) \(scenario.name)")
        }
    }

    @Test(arguments: ["bash", "dash"])
    func aBlockedLineNeverRunsAndTheNoticeStaysVisible(shell: String) throws {
        let fixture = try Self.load(shell)
        let scenario = try #require(fixture.scenarios.first { $0.name == "blocked" })
        let client = Self.replay(scenario, columns: fixture.columns, rows: fixture.rows).client
        let screen = client.visibleText
        // Typed once; never printed by `echo` on a line of its own.
        #expect(screen.filter { $0.contains("SHOULD-NOT-RUN") }.count == 1, "\(screen)")
        #expect(!screen.contains("SHOULD-NOT-RUN"))
        #expect(screen.contains("[sluice] blocked: test rule"), "\(screen)")
        #expect(screen.contains("after-block"), "the session goes on")
    }
}
