import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceModel

/// The live event stream (`GET /api/events`): takes the engine's events from the bus and sends each one a client of
/// the stream cares about (flows, HTTP heads, each flow's first message each way, commands and their outcomes,
/// alerts, holds) to every open stream as a Server-Sent Event, written by `APIEventCoding`. A stream that cannot keep
/// up (its socket full) is closed rather than buffered: the bus never waits for it.
public final class APIEventHub: FlowBusSubscriber {
    private struct State {
        var streams: [ObjectIdentifier: Channel] = [:]
        /// Flows whose first message one way went out already, while they are open and a stream is.
        var previewed: Set<PreviewKey> = []
    }

    private struct PreviewKey: Hashable {
        var flowID: FlowID
        var direction: Direction
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Streams open now.
    public var streamCount: Int { state.withLockedValue { $0.streams.count } }

    func add(_ channel: Channel) {
        state.withLockedValue { $0.streams[ObjectIdentifier(channel)] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLockedValue { $0.streams.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    public func receive(_ event: ProxyEvent) {
        let channels = state.withLockedValue { state -> [Channel] in
            guard !state.streams.isEmpty else {
                // Nobody listens: nothing to format, and no preview to remember.
                if !state.previewed.isEmpty { state.previewed.removeAll() }
                return []
            }
            return Self.shouldSend(event, previewed: &state.previewed) ? Array(state.streams.values) : []
        }
        guard !channels.isEmpty, let (name, json) = APIEventCoding.encode(event) else { return }
        let text = "event: \(name)\ndata: \(json)\n\n"
        for channel in channels {
            channel.eventLoop.execute {
                guard channel.isActive else { return }
                guard channel.isWritable else {
                    channel.close(promise: nil)
                    return
                }
                channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
            }
        }
    }

    /// Of messages, only each flow's first each way goes out (what a flow list previews); every other event does.
    /// A flow is forgotten when it closes, so a recorder that runs for months keeps no more than its open flows.
    private static func shouldSend(_ event: ProxyEvent, previewed: inout Set<PreviewKey>) -> Bool {
        switch event {
        case .message(let message):
            return previewed.insert(PreviewKey(flowID: message.flowID, direction: message.direction)).inserted
        case .flowClosed(let closed):
            previewed.remove(PreviewKey(flowID: closed.flowID, direction: .up))
            previewed.remove(PreviewKey(flowID: closed.flowID, direction: .down))
            return true
        default:
            return true
        }
    }
}
