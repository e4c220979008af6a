import Foundation
import NIOCore
import SluiceModel

/// The raw TCP relay's inspector: every read is one recorded chunk, held whole when the intercept filter matches
/// it. Reading stops at a held chunk; what came in the same read queues behind it, as does a half-close.
final class ChunkInspector: RelayInspector {
    private let recorder: FlowRecorder
    private let gate: InterceptGate
    /// Held chunks by sequence, until their verdict.
    private var pendingChunks: [Int64: ByteBuffer] = [:]

    init(recorder: FlowRecorder, gate: InterceptGate) {
        self.recorder = recorder
        self.gate = gate
    }

    func read(_ buffer: ByteBuffer, direction: Direction, into actions: inout [RelayAction]) {
        let sequence = recorder.chunk(buffer, direction: direction)
        if gate.isActive {
            let payload = Data(copying: buffer.readableBytesView)
            if gate.shouldHold(recorder.subject(direction: direction, payload: payload)) {
                pendingChunks[sequence] = buffer
                actions.append(.hold(RelayHold(id: Int(truncatingIfNeeded: sequence), sequence: sequence, direction: direction, payload: payload)))
                return
            }
        }
        actions.append(.pass(buffer))
    }

    func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider, into actions: inout [RelayAction]) {
        let original = pendingChunks.removeValue(forKey: hold.sequence)
        switch verdict {
        case .forward(edited: nil):
            if let original { actions.append(.pass(original)) }
        case .forward(edited: let edited?):
            recorder.edited(edited, from: hold.sequence, direction: hold.direction)
            actions.append(.pass(ByteBuffer(bytes: edited)))
        case .drop, .block:
            break
        case .kill:
            actions.append(.end(RelayEnding(failure: .proxy, "killed by the operator")))
        }
    }

    func relayEnded() {
        pendingChunks.removeAll()
    }
}
