import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceModel

/// `<data-dir>/logs/YYYY-MM-DD/{flows,messages,errors}.jsonl`: one JSON object per line, UTC ISO-8601 times,
/// payloads in base64. The README lists every field. Written by the store's writer thread only, one `write` per
/// file per batch.
///
/// `append` only builds lines in memory; `flush` writes them. A file only ever gets whole lines, each once: a
/// write that fails part way (a full disk) is cut back to where it began, and its lines stay pending for the next
/// `flush`, while files whose lines were written are not written again.
final class JSONLinesLog {
    enum File: String, CaseIterable {
        case flows, messages, errors, commands, alerts

        var index: Int {
            switch self {
            case .flows: 0
            case .messages: 1
            case .errors: 2
            case .commands: 3
            case .alerts: 4
            }
        }
    }

    private let directory: String
    /// The open day, as `Timestamp.dayNumber`, and its files' descriptors (indexed like `File.allCases`).
    private var day: Int64?
    private var descriptors: [Int32] = []
    /// Lines not yet written, per day (one day but around midnight), oldest first.
    private var pending: [PendingDay] = []
    /// The last day written, emptied, for the next batch's lines: its buffers have grown to a batch's size already.
    private var spare: PendingDay?
    /// Digests of the shared bodies whose payload the current day's messages.jsonl already has.
    private var loggedBodies: Set<Data> = []
    private var loggedBodiesDay: Int64?
    /// When each open flow started, to put a duration on its close line.
    private var startTimes: [FlowID: Date] = [:]

    init(directory: String) {
        self.directory = directory
    }

    deinit {
        close()
    }

    /// Appends the event's line. `bodyDigest` is set on a body kept once in the store (its SHA-256): the line says
    /// `sha256`, and carries the payload only the first time that body appears in the day's file. `headers` is an
    /// HTTP event's headers as JSON text when the caller has made it already.
    func append(_ event: ProxyEvent, bodyDigest: Data? = nil, headers: [UInt8]? = nil) {
        switch event {
        case .flowOpened(let opened):
            startTimes[opened.flowID] = opened.time
            add(.flows, at: opened.time) {
                $0.string("event", "open").int("flow", opened.flowID.rawValue).string("kind", opened.kind.rawValue)
                    .string("listener", opened.listener).endpoint("client", opened.client)
                    .endpoint("server", opened.server).time("time", opened.time).optionalInt("replay_of", opened.replayOf?.rawValue)
                    .optionalInt("session", opened.session?.rawValue)
            }
        case .message(let message):
            // A shared body the day's file already has is named by its digest alone.
            let withPayload = bodyDigest.map { firstTimeToday($0, at: message.time) } ?? true
            add(.messages, at: message.time) { object in
                var line = object
                    .string("event", "message").int("flow", message.flowID.rawValue).int("seq", message.sequence)
                    .string("direction", message.direction.rawValue).time("time", message.time)
                    .int("size", Int64(message.size)).int("stored", Int64(message.payload.count))
                // `consume`: the builder appends in place only while nothing else holds its bytes.
                if let bodyDigest { line = (consume line).hex("sha256", bodyDigest) }
                if withPayload { line = (consume line).base64("payload", message.payload) }
                return (consume line).optionalInt("edited_from_seq", message.editedFromSequence).string("kind", message.kind.rawValue)
            }
        case .httpRequest(let request):
            add(.flows, at: request.time) {
                $0.string("event", "request").int("flow", request.flowID.rawValue).time("time", request.time)
                    .string("method", request.method).string("url", request.url).string("version", request.version)
                    .json("headers", headers ?? JSONObject.headersJSON(request.headers))
                    .optionalInt("replay_of", request.replayOf?.rawValue)
            }
        case .httpResponse(let response):
            add(.flows, at: response.time) {
                $0.string("event", "response").int("flow", response.flowID.rawValue)
                    .time("time", response.time).int("status", Int64(response.status))
                    .string("reason", response.reason).string("version", response.version)
                    .json("headers", headers ?? JSONObject.headersJSON(response.headers))
                    .bool("synthetic", response.synthetic)
                    .optionalDouble("connect_ms", response.timings.connect).optionalDouble("tls_ms", response.timings.tls)
                    .optionalDouble("first_byte_ms", response.timings.firstByte)
            }
        case .messageHeld(let held):
            add(.messages, at: held.heldAt) {
                $0.string("event", "held").int("flow", held.flowID.rawValue).int("seq", held.sequence)
                    .time("time", held.heldAt).time("deadline", held.deadline)
            }
        case .messageReleased(let released):
            add(.messages, at: released.time) {
                $0.string("event", "released").int("flow", released.flowID.rawValue).int("seq", released.sequence)
                    .time("time", released.time).string("disposition", released.verdict.disposition)
                    .string("decided_by", released.decidedBy.rawValue)
            }
        case .flowError(let error):
            add(.errors, at: error.time) {
                $0.int("flow", error.flowID.rawValue).time("time", error.time)
                    .string("phase", error.phase.rawValue).string("message", error.message)
            }
        case .command(let command):
            add(.commands, at: command.time) {
                $0.string("event", "command").int("flow", command.flowID.rawValue).int("index", command.index)
                    .time("time", command.time).string("kind", command.kind.rawValue).string("text", command.text)
                    .string("user", command.user).string("target", command.target).string("risk", command.risk.rawValue)
                    .string("action", command.action.rawValue).optionalString("rule", command.rule)
                    .string("decision", command.decision.rawValue).optionalString("decided_by", command.decidedBy?.rawValue)
                    .optionalString("database", command.database).optionalStrings("parameters", command.parameters)
            }
        case .commandDecided(let decided):
            add(.commands, at: decided.time) {
                $0.string("event", "decided").int("flow", decided.flowID.rawValue).int("index", decided.index)
                    .time("time", decided.time).string("decision", decided.decision.rawValue)
                    .string("decided_by", decided.decidedBy.rawValue)
            }
        case .commandFinished(let finished):
            add(.commands, at: finished.time) {
                $0.string("event", "finished").int("flow", finished.flowID.rawValue).int("index", finished.index)
                    .time("time", finished.time).optionalInt("exit_status", finished.outcome.exitStatus.map(Int64.init))
                    .optionalString("exit_signal", finished.outcome.exitSignal).optionalString("result", finished.outcome.result)
                    .optionalString("error", finished.outcome.error)
            }
        case .alert(let alert):
            add(.alerts, at: alert.time) {
                $0.string("event", "alert").optionalInt("flow", alert.flowID?.rawValue)
                    .optionalInt("command", alert.commandIndex).time("time", alert.time)
                    .string("level", alert.level.rawValue).string("rule", alert.rule).string("message", alert.message)
            }
        case .flowClosed(let closed):
            let start = startTimes.removeValue(forKey: closed.flowID)
            add(.flows, at: closed.time) { object in
                let line = object
                    .string("event", "close").int("flow", closed.flowID.rawValue).time("time", closed.time)
                    .int("bytes_up", closed.bytesUp).int("bytes_down", closed.bytesDown).string("state", closed.state.rawValue)
                    .optionalString("error", closed.error).bool("payload_truncated", closed.payloadTruncated)
                    .int("head_bytes_up", closed.headBytesUp).int("head_bytes_down", closed.headBytesDown)
                guard let start else { return line }
                return line.int("duration_ms", Int64((closed.time.timeIntervalSince(start) * 1000).rounded()))
            }
        }
    }

    /// Whether the body with this digest has not been logged yet on `time`'s day; remembers it if so.
    private func firstTimeToday(_ digest: Data, at time: Date) -> Bool {
        let eventDay = Timestamp.dayNumber(time)
        if eventDay != loggedBodiesDay || loggedBodies.count >= 50_000 {
            loggedBodies.removeAll(keepingCapacity: true)
            loggedBodiesDay = eventDay
        }
        return loggedBodies.insert(digest).inserted
    }

    /// Lines appended and not yet written.
    var pendingByteCount: Int {
        pending.reduce(0) { total, day in total + day.files.reduce(0) { $0 + $1.bytes.count } }
    }

    /// Writes the pending lines: one `write` per file and day. On a failure the lines of that file stay pending
    /// (the file is cut back to its length before the write) and the error is thrown; lines written stay written.
    func flush() throws(StoreError) {
        while let first = pending.first {
            if first.day != day { try openDay(first.day, named: first.name) }
            for file in File.allCases where first.files[file.index].bytes.count > 0 {
                try write(first.files[file.index], to: file)
                first.files[file.index].bytes.removeAll()
            }
            let written = pending.removeFirst()
            if pending.isEmpty { spare = written }
        }
    }

    /// Appends the lines whole or not at all.
    private func write(_ lines: PendingLines, to file: File) throws(StoreError) {
        guard file.index < descriptors.count else { throw StoreError("\(file.rawValue).jsonl in \(directory) is not open") }
        let descriptor = descriptors[file.index]
        let start = lseek(descriptor, 0, SEEK_END)
        let failure: Int32? = lines.bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return nil }
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        guard let failure else { return }
        // A line cut short would break every reader of the file: take back what this write added.
        if start >= 0 { _ = ftruncate(descriptor, start) }
        throw StoreError("cannot write \(file.rawValue).jsonl in \(directory): \(String(cString: strerror(failure)).lowercased())")
    }

    /// Closes the day's files; the next `flush` opens them again.
    func close() {
        for descriptor in descriptors { Glibc.close(descriptor) }
        descriptors = []
        day = nil
    }

    /// Appends the line `build` makes to the pending lines of `time`'s day, in place (`JSONObject.appendLine`).
    private func add(_ file: File, at time: Date, _ build: (consuming JSONObject) -> JSONObject) {
        let eventDay = Timestamp.dayNumber(time)
        let target: PendingDay
        if let last = pending.last, last.day == eventDay {
            target = last
        } else {
            if let spare {
                self.spare = nil
                spare.day = eventDay
                spare.name = Timestamp.day(time)
                target = spare
            } else {
                target = PendingDay(day: eventDay, name: Timestamp.day(time))
            }
            pending.append(target)
        }
        JSONObject.appendLine(to: &target.files[file.index].bytes, build)
    }

    private func openDay(_ newDay: Int64, named name: String) throws(StoreError) {
        close()
        let folder = (directory as NSString).appendingPathComponent(name)
        try DataDirectory.makeDirectory(folder)
        for file in File.allCases {
            let path = (folder as NSString).appendingPathComponent(file.rawValue + ".jsonl")
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno)).lowercased()
                close()
                throw StoreError("cannot open \(path): \(reason)")
            }
            descriptors.append(fd)
        }
        day = newDay
    }
}

/// One file's lines not yet written.
private final class PendingLines {
    var bytes = ByteSink(capacity: 64 << 10)
}

/// One day's pending lines, per file.
private final class PendingDay {
    var day: Int64
    var name: String
    let files = JSONLinesLog.File.allCases.map { _ in PendingLines() }

    init(day: Int64, name: String) {
        self.day = day
        self.name = name
    }
}
