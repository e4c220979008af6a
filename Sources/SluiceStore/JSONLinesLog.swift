import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceModel

/// `<data-dir>/logs/YYYY-MM-DD/{flows,messages,errors}.jsonl`: one JSON object per line, UTC ISO-8601 times,
/// payloads in base64. The README lists every field. Written by the store's writer thread only, one `write` per
/// file per batch.
final class JSONLinesLog {
    enum File: String, CaseIterable {
        case flows, messages, errors

        var index: Int {
            switch self {
            case .flows: 0
            case .messages: 1
            case .errors: 2
            }
        }
    }

    private let directory: String
    /// The open day, as `Timestamp.dayNumber`, and its files' descriptors (indexed like `File.allCases`).
    private var day: Int64?
    private var descriptors: [Int32] = []
    /// Lines of the current batch, per file, written by `flush`.
    private let pending = File.allCases.map { _ in PendingLines() }
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
    func append(_ event: ProxyEvent, bodyDigest: Data? = nil, headers: [UInt8]? = nil) throws(StoreError) {
        switch event {
        case .flowOpened(let opened):
            startTimes[opened.flowID] = opened.time
            try add(
                .flows, at: opened.time,
                JSONObject()
                    .string("event", "open").int("flow", opened.flowID.rawValue).string("kind", opened.kind.rawValue)
                    .string("listener", opened.listener).endpoint("client", opened.client)
                    .endpoint("server", opened.server).time("time", opened.time)
            )
        case .message(let message):
            var line = JSONObject(reservingCapacity: 256 + message.payload.count * 4 / 3)
                .string("event", "message").int("flow", message.flowID.rawValue).int("seq", message.sequence)
                .string("direction", message.direction.rawValue).time("time", message.time)
                .int("size", Int64(message.size)).int("stored", Int64(message.payload.count))
            // `consume`: the builder appends in place only while nothing else holds its bytes.
            if let bodyDigest {
                line = (consume line).hex("sha256", bodyDigest)
                if firstTimeToday(bodyDigest, at: message.time) { line = (consume line).base64("payload", message.payload) }
            } else {
                line = (consume line).base64("payload", message.payload)
            }
            try add(
                .messages, at: message.time,
                (consume line).optionalInt("edited_from_seq", message.editedFromSequence).string("kind", message.kind.rawValue)
            )
        case .httpRequest(let request):
            try add(
                .flows, at: request.time,
                JSONObject()
                    .string("event", "request").int("flow", request.flowID.rawValue).time("time", request.time)
                    .string("method", request.method).string("url", request.url).string("version", request.version)
                    .json("headers", headers ?? JSONObject.headersJSON(request.headers))
                    .optionalInt("replay_of", request.replayOf?.rawValue)
            )
        case .httpResponse(let response):
            try add(
                .flows, at: response.time,
                JSONObject()
                    .string("event", "response").int("flow", response.flowID.rawValue)
                    .time("time", response.time).int("status", Int64(response.status))
                    .string("reason", response.reason).string("version", response.version)
                    .json("headers", headers ?? JSONObject.headersJSON(response.headers))
                    .bool("synthetic", response.synthetic)
                    .optionalDouble("connect_ms", response.timings.connect).optionalDouble("tls_ms", response.timings.tls)
                    .optionalDouble("first_byte_ms", response.timings.firstByte)
            )
        case .messageHeld(let held):
            try add(
                .messages, at: held.heldAt,
                JSONObject()
                    .string("event", "held").int("flow", held.flowID.rawValue).int("seq", held.sequence)
                    .time("time", held.heldAt).time("deadline", held.deadline)
            )
        case .messageReleased(let released):
            try add(
                .messages, at: released.time,
                JSONObject()
                    .string("event", "released").int("flow", released.flowID.rawValue).int("seq", released.sequence)
                    .time("time", released.time).string("disposition", released.verdict.disposition)
                    .string("decided_by", released.decidedBy)
            )
        case .flowError(let error):
            try add(
                .errors, at: error.time,
                JSONObject()
                    .int("flow", error.flowID.rawValue).time("time", error.time)
                    .string("phase", error.phase.rawValue).string("message", error.message)
            )
        case .flowClosed(let closed):
            var object = JSONObject()
                .string("event", "close").int("flow", closed.flowID.rawValue).time("time", closed.time)
                .int("bytes_up", closed.bytesUp).int("bytes_down", closed.bytesDown).string("state", closed.state.rawValue)
                .optionalString("error", closed.error).bool("payload_truncated", closed.payloadTruncated)
            if let start = startTimes.removeValue(forKey: closed.flowID) {
                object = object.int("duration_ms", Int64((closed.time.timeIntervalSince(start) * 1000).rounded()))
            }
            try add(.flows, at: closed.time, object)
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

    /// Writes what the batch produced: one `write` per file. Lines are only ever appended whole.
    func flush() throws(StoreError) {
        for file in File.allCases {
            let index = file.index
            guard pending[index].bytes.count > 0, index < descriptors.count else { continue }
            let failure: Int32? = pending[index].bytes.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return nil }
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(descriptors[index], base + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    offset += written
                }
                return nil
            }
            if let failure {
                throw StoreError(
                    "cannot write \(file.rawValue).jsonl in \(directory): \(String(cString: strerror(failure)).lowercased())"
                )
            }
            pending[index].bytes.removeAll()
        }
    }

    func close() {
        for descriptor in descriptors { Glibc.close(descriptor) }
        descriptors = []
    }

    private func add(_ file: File, at time: Date, _ object: borrowing JSONObject) throws(StoreError) {
        let eventDay = Timestamp.dayNumber(time)
        if eventDay != day {
            try flush()
            try openDay(eventDay, named: Timestamp.day(time))
        }
        object.appendLine(to: &pending[file.index].bytes)
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

/// One file's lines of the current batch.
private final class PendingLines {
    var bytes = ByteSink(capacity: 64 << 10)
}
