import Foundation
import SluiceModel

/// The live event stream's events (`GET /api/events`) both ways: how the recorder names and writes an engine event
/// as a Server-Sent Event, and how a client (`sluice attach`) reads one back into the same `ProxyEvent`. Both live
/// here so that they cannot drift apart; a test sends every kind of event through both.
///
/// What the stream carries of messages is what a list shows: the first message each way of a flow, cut to
/// `previewLimit` bytes (`APIEventHub` picks them). Every other message stays in the store.
public enum APIEventCoding {
    /// The most of a message's payload a `message` event carries.
    public static let previewLimit = 256

    /// The event's name and its JSON; nil for events the stream leaves out (see `APIEventHub`).
    public static func encode(_ event: ProxyEvent) -> (name: String, json: String)? {
        switch event {
        case .flowOpened(let opened):
            return (
                "flow_opened",
                JSONObject().int("flow", opened.flowID.rawValue).string("kind", opened.kind.rawValue).string("listener", opened.listener)
                    .endpoint("client", opened.client).endpoint("server", opened.server).time("time", opened.time)
                    .optionalInt("replay_of", opened.replayOf?.rawValue).optionalInt("session", opened.session?.rawValue).line
            )
        case .message(let message):
            return (
                "message",
                JSONObject().int("flow", message.flowID.rawValue).int("seq", message.sequence)
                    .string("direction", message.direction.rawValue).string("kind", message.kind.rawValue)
                    .int("size", Int64(message.size)).time("time", message.time).base64("preview", message.payload.prefix(previewLimit))
                    .line
            )
        case .flowError(let error):
            return (
                "flow_error",
                JSONObject().int("flow", error.flowID.rawValue).string("phase", error.phase.rawValue).string("message", error.message)
                    .time("time", error.time).line
            )
        case .flowClosed(let closed):
            return (
                "flow_closed",
                JSONObject().int("flow", closed.flowID.rawValue).string("state", closed.state.rawValue).int("bytes_up", closed.bytesUp)
                    .int("bytes_down", closed.bytesDown).optionalString("error", closed.error).time("time", closed.time).line
            )
        case .httpRequest(let request):
            return (
                "http_request",
                JSONObject().int("flow", request.flowID.rawValue).string("method", request.method).string("url", request.url)
                    .string("version", request.version).json("headers", JSONObject.headersJSON(request.headers))
                    .optionalInt("replay_of", request.replayOf?.rawValue).time("time", request.time).line
            )
        case .httpResponse(let response):
            return (
                "http_response",
                JSONObject().int("flow", response.flowID.rawValue).int("status", Int64(response.status)).string("reason", response.reason)
                    .string("version", response.version).json("headers", JSONObject.headersJSON(response.headers))
                    .bool("synthetic", response.synthetic).time("time", response.time).line
            )
        case .command(let command):
            return ("command", commandJSON(command))
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
                    .optionalInt("exit_status", finished.outcome.exitStatus.map(Int64.init))
                    .optionalString("exit_signal", finished.outcome.exitSignal).optionalString("result", finished.outcome.result)
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
            return ("hold", heldJSON(held))
        case .messageReleased(let released):
            return (
                "hold_released",
                JSONObject().int("id", released.holdID).int("flow", released.flowID.rawValue).int("seq", released.sequence)
                    .string("disposition", released.verdict.disposition).string("decided_by", released.decidedBy.rawValue)
                    .time("time", released.time).line
            )
        }
    }

    /// A command as the `command` event and a held command show it.
    static func commandJSON(_ command: Command) -> String {
        JSONObject().int("flow", command.flowID.rawValue).int("index", command.index).string("kind", command.kind.rawValue)
            .string("text", command.text).string("user", command.user).string("target", command.target)
            .optionalString("database", command.database).optionalStrings("parameters", command.parameters)
            .string("risk", command.risk.rawValue).string("action", command.action.rawValue).optionalString("rule", command.rule)
            .string("decision", command.decision.rawValue).optionalString("decided_by", command.decidedBy?.rawValue)
            .time("time", command.time).line
    }

    /// A held message or command: `GET /api/intercept` and the `hold` event. The payload goes whole, base64: an
    /// operator attached elsewhere edits it in the hex editor.
    public static func heldJSON(_ held: HeldMessage) -> String {
        var object = JSONObject().int("id", held.id).int("flow", held.flowID.rawValue).int("seq", held.sequence)
            .string("direction", held.direction.rawValue).int("size", Int64(held.payload.count))
            .time("held_at", held.heldAt).time("deadline", held.deadline)
            .optionalString("command", held.command?.text).optionalInt("command_index", held.command?.index)
            .base64("payload", held.payload)
        if let command = held.command { object = object.json("held_command", Array(commandJSON(command).utf8)) }
        return object.line
    }

    // MARK: Reading events back

    /// The engine event an event of the stream stands for; nil for a name this client does not know (a newer
    /// recorder's) or JSON that does not fit it.
    public static func decode(name: String, json: String) -> ProxyEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
        let fields = Fields(object)
        switch name {
        case "flow_opened":
            guard let flow = fields.flow, let kind = fields.raw("kind", FlowKind.self), let listener = fields.string("listener"),
                let client = fields.string("client"), let server = fields.string("server"), let time = fields.time("time")
            else { return nil }
            return .flowOpened(
                FlowOpened(
                    flowID: flow, kind: kind, listener: listener, client: Endpoint(parsing: client), server: Endpoint(parsing: server),
                    time: time, replayOf: fields.int("replay_of").map { FlowID($0) }
                )
            )
        case "message":
            guard let flow = fields.flow, let sequence = fields.int("seq"), let direction = fields.raw("direction", Direction.self),
                let kind = fields.raw("kind", MessageKind.self), let size = fields.int("size"), let time = fields.time("time"),
                let preview = fields.data("preview")
            else { return nil }
            return .message(
                Message(flowID: flow, sequence: sequence, direction: direction, time: time, size: Int(size), payload: preview, kind: kind)
            )
        case "flow_error":
            guard let flow = fields.flow, let phase = fields.raw("phase", FlowErrorPhase.self), let message = fields.string("message"),
                let time = fields.time("time")
            else { return nil }
            return .flowError(FlowError(flowID: flow, phase: phase, time: time, message: message))
        case "flow_closed":
            guard let flow = fields.flow, let state = fields.raw("state", FlowState.self), let up = fields.int("bytes_up"),
                let down = fields.int("bytes_down"), let time = fields.time("time")
            else { return nil }
            return .flowClosed(
                FlowClosed(flowID: flow, time: time, bytesUp: up, bytesDown: down, state: state, error: fields.string("error"), payloadTruncated: false)
            )
        case "http_request":
            guard let flow = fields.flow, let method = fields.string("method"), let url = fields.string("url"),
                let version = fields.string("version"), let headers = fields.headers, let time = fields.time("time")
            else { return nil }
            return .httpRequest(
                HTTPRequestStarted(
                    flowID: flow, time: time, method: method, url: url, version: version, headers: headers,
                    replayOf: fields.int("replay_of").map { FlowID($0) }
                )
            )
        case "http_response":
            guard let flow = fields.flow, let status = fields.int("status"), let reason = fields.string("reason"),
                let version = fields.string("version"), let headers = fields.headers, let time = fields.time("time")
            else { return nil }
            return .httpResponse(
                HTTPResponseStarted(
                    flowID: flow, time: time, status: Int(status), reason: reason, version: version, headers: headers, timings: HTTPTimings(),
                    synthetic: fields.bool("synthetic") ?? false
                )
            )
        case "command":
            return command(fields).map(ProxyEvent.command)
        case "command_decided":
            guard let flow = fields.flow, let index = fields.int("index"), let decision = fields.raw("decision", CommandDecision.self),
                let decider = fields.raw("decided_by", Decider.self), let time = fields.time("time")
            else { return nil }
            return .commandDecided(CommandDecided(flowID: flow, index: index, time: time, decision: decision, decidedBy: decider))
        case "command_finished":
            guard let flow = fields.flow, let index = fields.int("index"), let time = fields.time("time") else { return nil }
            let outcome = CommandOutcome(
                exitStatus: fields.int("exit_status").map(Int.init), exitSignal: fields.string("exit_signal"), result: fields.string("result"),
                error: fields.string("error")
            )
            return .commandFinished(CommandFinished(flowID: flow, index: index, time: time, outcome: outcome))
        case "alert":
            guard let level = fields.raw("level", RiskLevel.self), let rule = fields.string("rule"), let message = fields.string("message"),
                let time = fields.time("time")
            else { return nil }
            return .alert(
                Alert(flowID: fields.flow, commandIndex: fields.int("command"), time: time, level: level, rule: rule, message: message)
            )
        case "hold":
            return held(object).map(ProxyEvent.messageHeld)
        case "hold_released":
            guard let flow = fields.flow, let id = fields.int("id"), let sequence = fields.int("seq"),
                let disposition = fields.string("disposition"), let decider = fields.raw("decided_by", Decider.self),
                let time = fields.time("time")
            else { return nil }
            let verdict: Verdict
            switch disposition {
            case "forwarded": verdict = .forward(edited: nil)
            // The edited bytes stay with the recorder; the stream says only that they were edited.
            case "edited": verdict = .forward(edited: Data())
            case "dropped": verdict = .drop
            case "blocked": verdict = .block(message: "")
            case "killed": verdict = .kill
            default: return nil
            }
            return .messageReleased(MessageReleased(flowID: flow, holdID: id, sequence: sequence, time: time, verdict: verdict, decidedBy: decider))
        default:
            return nil
        }
    }

    /// A held message as `heldJSON` wrote it (one item of `GET /api/intercept`, or a `hold` event's data).
    public static func held(_ object: [String: Any]) -> HeldMessage? {
        let fields = Fields(object)
        guard let id = fields.int("id"), let flow = fields.flow, let sequence = fields.int("seq"),
            let direction = fields.raw("direction", Direction.self), let payload = fields.data("payload"),
            let heldAt = fields.time("held_at"), let deadline = fields.time("deadline")
        else { return nil }
        var command: Command?
        if let detail = object["held_command"] {
            guard let detail = detail as? [String: Any], let decoded = Self.command(Fields(detail)) else { return nil }
            command = decoded
        }
        return HeldMessage(
            id: id, flowID: flow, sequence: sequence, direction: direction, payload: payload, heldAt: heldAt, deadline: deadline, command: command
        )
    }

    private static func command(_ fields: Fields) -> Command? {
        guard let flow = fields.flow, let index = fields.int("index"), let kind = fields.raw("kind", CommandKind.self),
            let text = fields.string("text"), let user = fields.string("user"), let target = fields.string("target"),
            let risk = fields.raw("risk", RiskLevel.self), let action = fields.raw("action", PolicyAction.self),
            let decision = fields.raw("decision", CommandDecision.self), let time = fields.time("time")
        else { return nil }
        return Command(
            flowID: flow, index: index, time: time, kind: kind, text: text, user: user, target: target, risk: risk, action: action,
            rule: fields.string("rule"), decision: decision, decidedBy: fields.raw("decided_by", Decider.self), database: fields.string("database"),
            parameters: fields.strings("parameters")
        )
    }

    /// Typed reads of one event's JSON object: a field of the wrong type reads as absent.
    private struct Fields {
        let object: [String: Any]

        init(_ object: [String: Any]) {
            self.object = object
        }

        var flow: FlowID? { int("flow").map { FlowID($0) } }

        func string(_ key: String) -> String? { object[key] as? String }

        func int(_ key: String) -> Int64? {
            guard let number = object[key] as? NSNumber else { return nil }
            let value = number.doubleValue
            guard value.rounded() == value, abs(value) < 9.0e15 else { return nil }
            return number.int64Value
        }

        func bool(_ key: String) -> Bool? { object[key] as? Bool }

        func raw<Value: RawRepresentable>(_ key: String, _ type: Value.Type) -> Value? where Value.RawValue == String {
            string(key).flatMap(Value.init(rawValue:))
        }

        func time(_ key: String) -> Date? { string(key).flatMap(Timestamp.parseISO8601) }

        func data(_ key: String) -> Data? { string(key).flatMap { Data(base64Encoded: $0) } }

        func strings(_ key: String) -> [String]? { object[key] as? [String] }

        var headers: [HeaderField]? {
            guard let pairs = object["headers"] as? [[String]] else { return nil }
            var fields: [HeaderField] = []
            for pair in pairs {
                guard pair.count == 2 else { return nil }
                fields.append(HeaderField(name: pair[0], value: pair[1]))
            }
            return fields
        }
    }
}
