import Foundation
import SluiceCore
import SluiceModel

/// The TUI's subscription to the engine: events wait here until the UI thread takes them, at most ~30 times a
/// second. It keeps only what the list needs of message events (the first bytes each way), so a busy engine
/// costs the UI little; it never slows the engine.
public final class LiveFeed: FlowBusSubscriber, @unchecked Sendable {
    // @unchecked: `state` is only touched under `lock`.
    private struct State {
        var events: [ProxyEvent] = []
        var previewed: Set<PreviewKey> = []
    }

    private struct PreviewKey: Hashable {
        var flowID: FlowID
        var direction: Direction
    }

    private let lock = NSLock()
    private var state = State()

    public init() {}

    public func receive(_ event: ProxyEvent) {
        lock.withLock {
            switch event {
            case .message(let message):
                // Only the first message each way matters to the list.
                guard state.previewed.insert(PreviewKey(flowID: message.flowID, direction: message.direction)).inserted else { return }
                var trimmed = message
                trimmed.payload = message.payload.prefix(FlowRow.previewLimit)
                state.events.append(.message(trimmed))
            case .flowClosed(let closed):
                state.previewed.remove(PreviewKey(flowID: closed.flowID, direction: .up))
                state.previewed.remove(PreviewKey(flowID: closed.flowID, direction: .down))
                state.events.append(event)
            default:
                state.events.append(event)
            }
        }
    }

    /// Everything since the last call, in order.
    public func take() -> [ProxyEvent] {
        lock.withLock {
            defer { state.events.removeAll(keepingCapacity: true) }
            return state.events
        }
    }
}
