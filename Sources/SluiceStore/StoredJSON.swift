import SluiceModel

/// The JSON shape of each stored record, one object per record: what `sluice flows|commands|alerts --json` print
/// one per line and what the control API returns, so both say the same thing in the same words.
public enum StoredJSON {
    /// A flow: who, where, when, bytes, state, and for HTTP the request line and status.
    public static func flow(_ flow: StoredFlow) -> String {
        var object = JSONObject()
            .int("id", flow.id.rawValue).string("kind", flow.kind).string("listener", flow.listener)
            .string("client", flow.client).string("server", flow.server)
            .string("start", Timestamp.iso8601(flow.startedAt))
            .optionalString("end", flow.endedAt.map(Timestamp.iso8601))
            .optionalInt("duration_ms", flow.duration.map { Int64(($0 * 1000).rounded()) })
            .int("bytes_up", flow.bytesUp).int("bytes_down", flow.bytesDown)
            .string("state", flow.state).optionalString("error", flow.error)
            .bool("payload_truncated", flow.payloadTruncated).bool("marked", flow.marked)
            .optionalInt("replay_of", flow.replayOf?.rawValue).optionalInt("session", flow.session?.rawValue)
        if let http = flow.http {
            object = object.int("head_bytes_up", flow.headBytesUp).int("head_bytes_down", flow.headBytesDown)
                .string("method", http.method).string("url", http.url)
                .optionalInt("status", http.status.map(Int64.init))
        }
        return object.line
    }

    /// A command with its judgement, decision and outcome.
    public static func command(_ command: StoredCommand) -> String {
        JSONObject()
            .int("id", command.id).int("flow", command.flowID.rawValue).int("index", command.index)
            .time("time", command.time).string("kind", command.kind.rawValue).string("text", command.text)
            .string("user", command.user).string("target", command.target).string("risk", command.risk.rawValue)
            .string("action", command.action.rawValue).optionalString("rule", command.rule)
            .string("decision", command.decision.rawValue).optionalString("decided_by", command.decidedBy?.rawValue)
            .optionalString("decided_at", command.decidedAt.map(Timestamp.iso8601))
            .optionalString("database", command.database).optionalStrings("parameters", command.parameters)
            .optionalDouble("duration", command.finishedAt.map { $0.timeIntervalSince(command.time) })
            .optionalInt("exit_status", command.outcome?.exitStatus.map(Int64.init))
            .optionalString("exit_signal", command.outcome?.exitSignal).optionalString("result", command.outcome?.result)
            .optionalString("error", command.outcome?.error)
            .optionalString("finished_at", command.finishedAt.map(Timestamp.iso8601))
            .line
    }

    /// An alert, and who acknowledged it when.
    public static func alert(_ alert: StoredAlert) -> String {
        JSONObject()
            .int("id", alert.id).optionalInt("flow", alert.flowID?.rawValue).optionalInt("command", alert.commandIndex)
            .time("time", alert.time).string("level", alert.level.rawValue).string("rule", alert.rule)
            .string("message", alert.message).bool("acknowledged", alert.acknowledgement != nil)
            .optionalString("acknowledged_at", alert.acknowledgement.map { Timestamp.iso8601($0.time) })
            .optionalString("acknowledged_by", alert.acknowledgement?.by)
            .line
    }

    /// A session: who reached what, from when to when.
    public static func session(_ session: StoredSession) -> JSONObject {
        JSONObject()
            .int("id", session.id.rawValue).string("user", session.user).string("resource", session.resource)
            .string("state", session.state.rawValue).time("started_at", session.startedAt)
            .optionalString("ended_at", session.endedAt.map(Timestamp.iso8601))
    }
}
