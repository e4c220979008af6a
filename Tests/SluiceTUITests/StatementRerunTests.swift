import Foundation
import NIOConcurrencyHelpers
import SluiceModel
import Testing

@testable import SluiceTUI

/// A replayer that answers re-runs from a script, remembering what it was asked.
private final class ScriptedReplayer: FlowReplaying, @unchecked Sendable {
    // @unchecked: both arrays are only touched under `lock`.
    private let lock = NSLock()
    private var answers: [RerunOutcome]
    private(set) var asked: [(StatementRerun, String?)] = []

    init(_ answers: [RerunOutcome]) {
        self.answers = answers
    }

    var calls: [(StatementRerun, String?)] { lock.withLock { asked } }

    func replay(_ flowID: FlowID, completion: @escaping @Sendable (String, Bool) -> Void) {
        completion("not an HTTP flow", true)
    }

    func rerun(_ statement: StatementRerun, password: String?, completion: @escaping @Sendable (RerunOutcome) -> Void) {
        let answer: RerunOutcome = lock.withLock {
            asked.append((statement, password))
            return answers.isEmpty ? RerunOutcome(line: "no answer scripted", failed: true) : answers.removeFirst()
        }
        completion(answer)
    }
}

/// `r` in the Commands view: an SQL statement runs again against its target, after a `y` above low risk, and with a
/// password asked for (shown as dots) when the server refuses the login.
@Suite struct StatementRerunTests {
    private let start = Date(timeIntervalSince1970: 1_796_080_701)

    private func app(with replayer: ScriptedReplayer, risk: RiskLevel, kind: CommandKind = .sql) -> App {
        let app = App(engine: nil, store: nil, feed: nil, title: "Sluice")
        app.replayer = replayer
        app.apply([
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(7), kind: .postgres, listener: "postgres://127.0.0.1:6432=>127.0.0.1:5432",
                    client: Endpoint(host: "127.0.0.1", port: 40000), server: Endpoint(host: "127.0.0.1", port: 5432), time: start
                )
            ),
            .command(
                Command(
                    flowID: FlowID(7), index: 3, time: start, kind: kind, text: "DELETE FROM accounts WHERE id = 4", user: "alice",
                    target: "127.0.0.1:5432", risk: risk, action: .allow, rule: nil, decision: .allowed, decidedBy: .policy,
                    database: "bank"
                )
            ),
        ])
        app.handle(.character("4"))
        return app
    }

    private func statusLine(_ app: App) -> String {
        let canvas = TextCanvas(width: 140, height: 20)
        app.render(on: canvas)
        return canvas.lines.last ?? ""
    }

    @Test func aLowRiskStatementRunsAtOnce() {
        let replayer = ScriptedReplayer([RerunOutcome(line: "re-ran statement 4 of flow 7 as #9: DELETE 1", failed: false)])
        let app = app(with: replayer, risk: .low)
        app.handle(.character("r"))
        app.tick()
        #expect(replayer.calls.count == 1)
        #expect(replayer.calls.first?.0.flowID == FlowID(7))
        #expect(replayer.calls.first?.0.index == 3)
        #expect(replayer.calls.first?.1 == nil)
        #expect(statusLine(app).contains("re-ran statement 4 of flow 7 as #9: DELETE 1"))
    }

    @Test func aRiskierStatementWaitsForYes() {
        let replayer = ScriptedReplayer([RerunOutcome(line: "re-ran statement 4 of flow 7 as #9: DELETE 1", failed: false)])
        let app = app(with: replayer, risk: .high)
        app.handle(.character("r"))
        #expect(statusLine(app).contains("re-run this high-risk statement against 127.0.0.1:5432? y/N"))
        app.handle(.character("n"))
        app.handle(.enter)
        #expect(replayer.calls.isEmpty)
        #expect(statusLine(app).contains("not re-run"))
        app.handle(.character("r"))
        app.handle(.character("y"))
        app.handle(.enter)
        app.tick()
        #expect(replayer.calls.count == 1)
        #expect(statusLine(app).contains("DELETE 1"))
    }

    @Test func aRefusedLoginAsksForThePasswordShowsDotsAndRemembersIt() {
        let replayer = ScriptedReplayer([
            RerunOutcome(line: "login refused: the server asks for a password", failed: true, loginRefused: true),
            RerunOutcome(line: "re-ran statement 4 of flow 7 as #9: DELETE 1", failed: false),
            RerunOutcome(line: "re-ran statement 4 of flow 7 as #10: DELETE 0", failed: false),
        ])
        let app = app(with: replayer, risk: .low)
        app.handle(.character("r"))
        app.tick()
        #expect(statusLine(app).contains("password for alice@127.0.0.1:5432: ▏"))
        for character in "s3cret" { app.handle(.character(character)) }
        #expect(statusLine(app).contains("••••••"))
        #expect(!statusLine(app).contains("s3cret"))
        app.handle(.enter)
        app.tick()
        #expect(replayer.calls.count == 2)
        #expect(replayer.calls.last?.1 == "s3cret")
        #expect(statusLine(app).contains("as #9: DELETE 1"))
        // The next re-run for the same user and target logs in with it without asking.
        app.handle(.character("r"))
        app.tick()
        #expect(replayer.calls.last?.1 == "s3cret")
        #expect(statusLine(app).contains("as #10: DELETE 0"))
    }

    @Test func aShellLineIsNotReRun() {
        let replayer = ScriptedReplayer([])
        let app = app(with: replayer, risk: .low, kind: .shell)
        app.handle(.character("r"))
        #expect(replayer.calls.isEmpty)
        #expect(statusLine(app).contains("only SQL statements can be re-run"))
    }
}
