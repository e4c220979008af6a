import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SluiceCore
import SluiceModel

/// The live event stream (`GET /api/events`): takes the engine's events from the bus and sends each one a client of
/// the stream cares about (flows opened and closed, commands and their outcomes, alerts, holds) to every open
/// stream as a Server-Sent Event. A stream that cannot keep up (its socket full) is closed rather than buffered:
/// the bus never waits for it.
public final class APIEventHub: FlowBusSubscriber {
    private let streams = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    public init() {}

    /// Streams open now.
    public var streamCount: Int { streams.withLockedValue { $0.count } }

    func add(_ channel: Channel) {
        streams.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.streams.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    public func receive(_ event: ProxyEvent) {
        let channels = streams.withLockedValue { Array($0.values) }
        guard !channels.isEmpty, let (name, json) = Self.describe(event) else { return }
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

    /// An event as the stream names and shows it; nil for the ones it leaves out (every message of every flow).
    static func describe(_ event: ProxyEvent) -> (String, String)? {
        switch event {
        case .flowOpened(let opened):
            return (
                "flow_opened",
                JSONObject().int("flow", opened.flowID.rawValue).string("kind", opened.kind.rawValue).string("listener", opened.listener)
                    .endpoint("client", opened.client).endpoint("server", opened.server).time("time", opened.time)
                    .optionalInt("replay_of", opened.replayOf?.rawValue)
                    .optionalInt("session", opened.session?.rawValue).line
            )
        case .flowClosed(let closed):
            return (
                "flow_closed",
                JSONObject().int("flow", closed.flowID.rawValue).string("state", closed.state.rawValue).int("bytes_up", closed.bytesUp)
                    .int("bytes_down", closed.bytesDown).optionalString("error", closed.error).time("time", closed.time).line
            )
        case .command(let command):
            return (
                "command",
                JSONObject().int("flow", command.flowID.rawValue).int("index", command.index).string("kind", command.kind.rawValue)
                    .string("text", command.text).string("user", command.user).string("target", command.target)
                    .optionalString("database", command.database).string("risk", command.risk.rawValue)
                    .string("action", command.action.rawValue).optionalString("rule", command.rule)
                    .string("decision", command.decision.rawValue).time("time", command.time).line
            )
        case .commandDecided(let decided):
            return (
                "command_decided",
                JSONObject().int("flow", decided.flowID.rawValue).int("index", decided.index).string("decision", decided.decision.rawValue)
                    .string("decided_by", decided.decidedBy.rawValue).time("time", decided.time).line
            )
        case .commandFinished(let finished):
            return (
                "command_finished",
                JSONObject().int("flow", finished.flowID.rawValue).int("index", finished.index)
                    .optionalInt("exit_status", finished.outcome.exitStatus.map(Int64.init)).optionalString("result", finished.outcome.result)
                    .optionalString("error", finished.outcome.error).time("time", finished.time).line
            )
        case .alert(let alert):
            return (
                "alert",
                JSONObject().optionalInt("flow", alert.flowID?.rawValue).optionalInt("command", alert.commandIndex)
                    .string("level", alert.level.rawValue).string("rule", alert.rule).string("message", alert.message)
                    .time("time", alert.time).line
            )
        case .messageHeld(let held):
            return ("hold", APIResources.heldJSON(held))
        case .messageReleased(let released):
            return (
                "hold_released",
                JSONObject().int("id", released.holdID).int("flow", released.flowID.rawValue).int("seq", released.sequence)
                    .string("disposition", released.verdict.disposition).string("decided_by", released.decidedBy.rawValue)
                    .time("time", released.time).line
            )
        case .message, .flowError, .httpRequest, .httpResponse:
            return nil
        }
    }
}
