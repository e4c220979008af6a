import Foundation
import SluiceModel
import Testing

@testable import SluiceAPI

/// Every kind of engine event through the stream's encoding and back: what `sluice attach` reads is what the
/// recorder's engine published.
@Suite struct APIEventCodingTests {
    /// A time the stream carries exactly (milliseconds).
    private let time = Date(timeIntervalSince1970: 1_796_080_701.123)
    private let flow = FlowID(42)

    private var command: Command {
        Command(
            flowID: flow, index: 3, time: time, kind: .sql, text: "DELETE FROM t WHERE id = $1 -- \"quoted\"\n", user: "app",
            target: "10.0.0.5:5432", risk: .high, action: .hold, rule: "deletes", decision: .pending, decidedBy: nil, database: "shop",
            parameters: ["7", "é"]
        )
    }

    private func roundTrip(_ event: ProxyEvent) -> ProxyEvent? {
        guard let (name, json) = APIEventCoding.encode(event) else { return nil }
        #expect(!json.contains("\n"), "one SSE data line")
        return APIEventCoding.decode(name: name, json: json)
    }

    @Test func flowsMessagesAndErrorsComeBackAsPublished() throws {
        let opened = FlowOpened(
            flowID: flow, kind: .postgres, listener: "postgres://127.0.0.1:6432=>db:5432", client: Endpoint(host: "::1", port: 50_000),
            server: Endpoint(host: "db", port: 5432), time: time, replayOf: FlowID(7)
        )
        guard case .flowOpened(let back) = roundTrip(.flowOpened(opened)) else { Issue.record("no flow_opened"); return }
        #expect(back == opened)

        let error = FlowError(flowID: flow, phase: .connect, time: time, message: "connection refused")
        guard case .flowError(let errorBack) = roundTrip(.flowError(error)) else { Issue.record("no flow_error"); return }
        #expect(errorBack == error)

        let closed = FlowClosed(flowID: flow, time: time, bytesUp: 10, bytesDown: 1 << 40, state: .error, error: "reset", payloadTruncated: false)
        guard case .flowClosed(let closedBack) = roundTrip(.flowClosed(closed)) else { Issue.record("no flow_closed"); return }
        #expect(closedBack == closed)
    }

    @Test func aMessageComesBackAsItsPreview() {
        let payload = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0) })
        let message = Message(flowID: flow, sequence: 9, direction: .down, time: time, size: 5000, payload: payload, kind: .binary)
        guard case .message(let back) = roundTrip(.message(message)) else { Issue.record("no message"); return }
        #expect(back.payload == payload.prefix(APIEventCoding.previewLimit))
        #expect(back.size == 5000 && back.sequence == 9 && back.direction == .down && back.kind == .binary && back.time == time)
    }

    @Test func httpHeadsComeBackWithTheirHeadersInOrder() {
        let headers = [HeaderField(name: "Host", value: "a.test"), HeaderField(name: "X-A", value: "1"), HeaderField(name: "x-a", value: "\"2\"")]
        let request = HTTPRequestStarted(flowID: flow, time: time, method: "POST", url: "https://a.test/x?y=1", version: "HTTP/1.1", headers: headers)
        guard case .httpRequest(let requestBack) = roundTrip(.httpRequest(request)) else { Issue.record("no http_request"); return }
        #expect(requestBack == request)
        let response = HTTPResponseStarted(
            flowID: flow, time: time, status: 502, reason: "Bad Gateway", version: "HTTP/1.1", headers: headers, timings: HTTPTimings(),
            synthetic: true
        )
        guard case .httpResponse(let responseBack) = roundTrip(.httpResponse(response)) else { Issue.record("no http_response"); return }
        #expect(responseBack == response)
    }

    @Test func commandsTheirDecisionsOutcomesAndAlertsComeBack() {
        guard case .command(let back) = roundTrip(.command(command)) else { Issue.record("no command"); return }
        #expect(back == command)

        let decided = CommandDecided(flowID: flow, index: 3, time: time, decision: .blocked, decidedBy: .operator)
        guard case .commandDecided(let decidedBack) = roundTrip(.commandDecided(decided)) else { Issue.record("no decision"); return }
        #expect(decidedBack == decided)

        let finished = CommandFinished(flowID: flow, index: 3, time: time, outcome: CommandOutcome(exitStatus: 130, exitSignal: "INT", result: nil, error: "x"))
        guard case .commandFinished(let finishedBack) = roundTrip(.commandFinished(finished)) else { Issue.record("no outcome"); return }
        #expect(finishedBack == finished)

        let alert = Alert(flowID: nil, commandIndex: nil, time: time, level: .critical, rule: "r", message: "store is full")
        guard case .alert(let alertBack) = roundTrip(.alert(alert)) else { Issue.record("no alert"); return }
        #expect(alertBack == alert)
    }

    @Test func aHoldComesBackWholeWithItsCommand() {
        let held = HeldMessage(
            id: 5, flowID: flow, sequence: 3, direction: .up, payload: Data([0, 255, 10, 13]), heldAt: time, deadline: time + 60, command: command
        )
        guard case .messageHeld(let back) = roundTrip(.messageHeld(held)) else { Issue.record("no hold"); return }
        #expect(back == held)

        let plain = HeldMessage(id: 6, flowID: flow, sequence: 1, direction: .down, payload: Data(), heldAt: time, deadline: time)
        guard case .messageHeld(let plainBack) = roundTrip(.messageHeld(plain)) else { Issue.record("no plain hold"); return }
        #expect(plainBack == plain)

        let released = MessageReleased(flowID: flow, holdID: 5, sequence: 3, time: time, verdict: .kill, decidedBy: .timeout)
        guard case .messageReleased(let releasedBack) = roundTrip(.messageReleased(released)) else { Issue.record("no release"); return }
        #expect(releasedBack == released)
    }

    @Test func unknownNamesAndDamagedJSONReadAsNothing() {
        #expect(APIEventCoding.decode(name: "flow_renamed", json: #"{"flow":1}"#) == nil)
        #expect(APIEventCoding.decode(name: "flow_closed", json: "{") == nil)
        #expect(APIEventCoding.decode(name: "flow_closed", json: "[]") == nil)
        #expect(APIEventCoding.decode(name: "flow_closed", json: #"{"flow":"1","state":"closed"}"#) == nil)
        #expect(APIEventCoding.decode(name: "flow_closed", json: #"{"flow":1.5,"state":"closed","bytes_up":0,"bytes_down":0,"time":"x"}"#) == nil)
        #expect(APIEventCoding.decode(name: "hold", json: #"{"id":1,"flow":1,"seq":0,"direction":"up","payload":"!!","held_at":"2026-11-30T23:18:21.123Z","deadline":"2026-11-30T23:18:21.123Z"}"#) == nil)
        #expect(APIEventCoding.decode(name: "hold", json: #"{"id":1,"flow":1,"seq":0,"direction":"up","payload":"","held_at":"2026-11-30T23:18:21.123Z","deadline":"2026-11-30T23:18:21.123Z","held_command":7}"#) == nil)
    }
}
