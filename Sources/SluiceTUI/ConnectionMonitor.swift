import Foundation
import SluiceCore
import SluiceModel

/// The Connections screen's rows: the engine's open connections, sampled about once a second, with the bytes per
/// second each way since the last sample.
struct ConnectionMonitor {
    struct Row {
        var connection: OpenConnection
        var upRate: Double = 0
        var downRate: Double = 0
    }

    private(set) var rows: [Row] = []
    var selected = 0
    private var lastSample: (time: Date, bytes: [FlowID: (Int64, Int64)])?

    /// Whether a second has passed since the last sample (or there was none).
    func wantsSample(now: Date) -> Bool {
        lastSample.map { now.timeIntervalSince($0.time) >= 1 } ?? true
    }

    mutating func sample(_ open: [OpenConnection], now: Date) {
        var bytes: [FlowID: (Int64, Int64)] = [:]
        rows = open.map { connection in
            bytes[connection.flowID] = (connection.bytesUp, connection.bytesDown)
            var row = Row(connection: connection)
            if let sample = lastSample, let before = sample.bytes[connection.flowID] {
                let seconds = max(0.001, now.timeIntervalSince(sample.time))
                row.upRate = Double(connection.bytesUp - before.0) / seconds
                row.downRate = Double(connection.bytesDown - before.1) / seconds
            }
            return row
        }
        lastSample = (now, bytes)
        selected = min(selected, max(0, rows.count - 1))
    }

    /// A connection was killed: sample afresh next time.
    mutating func forgetSample() {
        lastSample = nil
    }

    mutating func move(_ delta: Int) {
        selected = max(0, min(max(0, rows.count - 1), selected + delta))
    }

    var selectedFlow: FlowID? {
        rows.indices.contains(selected) ? rows[selected].connection.flowID : nil
    }
}
