import Foundation
import NIOConcurrencyHelpers
import SluiceModel

/// The headless front end: one line per flow event on stderr, like mitmdump's output.
///
///     23:18:21.123 #12 tcp 127.0.0.1:53422 -> 127.0.0.1:7000 open
///     23:18:22.456 #12 tcp closed, up 1.2 KiB, down 64.0 MiB, 1.33s
///     23:18:22.460 #13 tcp error connect: cannot connect to 127.0.0.1:7001: connection refused
///     23:18:23.001 #14 127.0.0.1:53430 GET http://example.com/ << 200 OK 1.2 KiB 15ms
///
/// An HTTP exchange is one line when it ends, as mitmdump prints it: client, method, URL, status, body size, time.
/// Chunks are not printed; they are in the store. Lossy by design: it never slows the engine.
public final class HeadlessLog: FlowBusSubscriber {
    private let write: @Sendable (String) -> Void
    private let openFlows = NIOLockedValueBox<[FlowID: OpenFlow]>([:])

    private struct OpenFlow {
        var kind: FlowKind
        var start: Date
        var client: Endpoint
        var request: String?
        var status: String?
    }

    public init(write: @escaping @Sendable (String) -> Void = HeadlessLog.writeToStandardError) {
        self.write = write
    }

    /// One `write(2)` per line, so lines from different event loops never interleave.
    public static func writeToStandardError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { bytes in
            _ = Foundation.write(2, bytes.baseAddress, bytes.count)
        }
    }

    /// Peer-controlled text in a line (a user name, a URL, an error quoting a peer) is made `visible`: it can
    /// neither forge a line nor drive the operator's terminal.
    public func receive(_ event: ProxyEvent) {
        guard let line = line(for: event) else { return }
        write(line.visible)
    }

    func line(for event: ProxyEvent) -> String? {
        switch event {
        case .flowOpened(let e):
            openFlows.withLockedValue { $0[e.flowID] = OpenFlow(kind: e.kind, start: e.time, client: e.client) }
            guard !e.kind.isExchange else { return nil }
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(e.kind.rawValue) \(e.client) -> \(e.server) open"
        case .message:
            return nil
        case .httpRequest(let e):
            openFlows.withLockedValue { $0[e.flowID]?.request = "\(e.method) \(e.url)" }
            return nil
        case .httpResponse(let e):
            let status = e.reason.isEmpty ? "\(e.status)" : "\(e.status) \(e.reason)"
            openFlows.withLockedValue { $0[e.flowID]?.status = e.synthetic ? "\(status) (sluice)" : status }
            return nil
        case .messageHeld(let e):
            return "\(Timestamp.timeOfDay(e.heldAt)) #\(e.flowID) held \(e.direction.rawValue) message \(e.sequence), \(e.payload.count) bytes"
        case .messageReleased(let e):
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) message \(e.sequence) \(e.verdict.disposition) by \(e.decidedBy.rawValue)"
        case .command(let e):
            var line = "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(e.kind.rawValue) \(e.user)@\(e.target): \(e.text)"
            line += " [\(e.risk.rawValue), \(e.action.rawValue)\(e.rule.map { ", rule \($0)" } ?? "")]"
            if e.decision != .pending { line += " \(e.decision.rawValue)" }
            return line
        case .commandDecided(let e):
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) command \(e.index) \(e.decision.rawValue) by \(e.decidedBy.rawValue)"
        case .commandFinished(let e):
            let outcome = e.outcome
            let text = outcome.exitSignal.map { "killed by \($0)" } ?? outcome.exitStatus.map { "exit \($0)" } ?? outcome.error ?? outcome.result
            guard let text else { return nil }
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) command \(e.index) \(text)"
        case .alert(let e):
            let flow = e.flowID.map { "#\($0) " } ?? ""
            return "\(Timestamp.timeOfDay(e.time)) \(flow)alert \(e.level.rawValue) \(e.rule): \(e.message)"
        case .flowError(let e):
            let kind = openFlows.withLockedValue { $0[e.flowID]?.kind }
            // An exchange's line at its close carries the error: one line per exchange, as mitmdump prints.
            if let kind, kind.isExchange { return nil }
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(kind?.rawValue ?? "flow") error \(e.phase.rawValue): \(e.message)"
        case .flowClosed(let e):
            let opened = openFlows.withLockedValue { $0.removeValue(forKey: e.flowID) }
            if let opened, opened.kind.isExchange {
                return exchangeLine(e, opened)
            }
            var line = "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(opened?.kind.rawValue ?? "flow") \(e.state.rawValue)"
            line += ", up \(Formatting.bytes(e.bytesUp)), down \(Formatting.bytes(e.bytesDown))"
            if let start = opened?.start {
                line += ", " + Formatting.duration(seconds: e.time.timeIntervalSince(start))
            }
            return line
        }
    }

    private func exchangeLine(_ closed: FlowClosed, _ flow: OpenFlow) -> String {
        var line = "\(Timestamp.timeOfDay(closed.time)) #\(closed.flowID) \(flow.client) \(flow.request ?? "(no request)")"
        line += " << " + (flow.status ?? "no response")
        if flow.kind == .websocket { line += " websocket" }
        line += " \(Formatting.bytes(closed.bytesDown)) " + Formatting.duration(seconds: closed.time.timeIntervalSince(flow.start))
        if let error = closed.error { line += " [\(error)]" }
        return line
    }
}

extension FlowKind {
    /// HTTP and WebSocket flows are one exchange each, logged as one line when they end; the others (TCP, SSH,
    /// database sessions) are streams, logged when they open, fail and close.
    var isExchange: Bool { self == .http || self == .websocket }
}
