import Foundation
import NIOConcurrencyHelpers
import SluiceModel

/// The headless front end: one line per flow event on stderr, like mitmdump's output.
///
///     23:18:21.123 #12 tcp 127.0.0.1:53422 -> 127.0.0.1:7000 open
///     23:18:22.456 #12 tcp closed, up 1.2 KiB, down 64.0 MiB, 1.33s
///     23:18:22.460 #13 tcp error connect: cannot connect to 127.0.0.1:7001: connection refused
///
/// Chunks are not printed; they are in the store. Lossy by design: it never slows the engine.
public final class HeadlessLog: FlowBusSubscriber {
    private let write: @Sendable (String) -> Void
    private let openFlows = NIOLockedValueBox<[FlowID: (kind: FlowKind, start: Date)]>([:])

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

    public func receive(_ event: ProxyEvent) {
        guard let line = line(for: event) else { return }
        write(line)
    }

    func line(for event: ProxyEvent) -> String? {
        switch event {
        case .flowOpened(let e):
            openFlows.withLockedValue { $0[e.flowID] = (e.kind, e.time) }
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(e.kind.rawValue) \(e.client) -> \(e.server) open"
        case .message:
            return nil
        case .messageHeld(let e):
            return "\(Timestamp.timeOfDay(e.heldAt)) #\(e.flowID) held \(e.direction.rawValue) message \(e.sequence), \(e.payload.count) bytes"
        case .messageReleased(let e):
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) message \(e.sequence) \(e.verdict.disposition) by \(e.decidedBy)"
        case .flowError(let e):
            let kind = openFlows.withLockedValue { $0[e.flowID]?.kind.rawValue } ?? "flow"
            return "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(kind) error \(e.phase.rawValue): \(e.message)"
        case .flowClosed(let e):
            let opened = openFlows.withLockedValue { $0.removeValue(forKey: e.flowID) }
            var line = "\(Timestamp.timeOfDay(e.time)) #\(e.flowID) \(opened?.kind.rawValue ?? "flow") \(e.state.rawValue)"
            line += ", up \(Formatting.bytes(e.bytesUp)), down \(Formatting.bytes(e.bytesDown))"
            if let start = opened?.start {
                line += ", " + Formatting.duration(seconds: e.time.timeIntervalSince(start))
            }
            return line
        }
    }
}
