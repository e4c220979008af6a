import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

#if canImport(Glibc)
import Glibc
#endif

/// `sluice export`: recorded flows for other tools. HAR 1.2 for browsers' DevTools and HAR viewers, a curl command
/// that repeats one request, JSON Lines for scripts.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export flows as HAR 1.2, a curl command, or JSON Lines.",
        discussion: """
            Exactly one of --har, --curl, --jsonl. FILTER is a filter expression as in the TUI; without one, every \
            flow of the newest --limit is exported (HAR holds HTTP and WebSocket flows only). Exported files are \
            created 0600: they hold cookies and tokens.

            Examples:
              sluice export --har session.har
              sluice export --har - '~u /api & ~c 500' > errors.har
              sluice export --curl 42 | bash
              sluice export --jsonl flows.jsonl '~k ws'
            """
    )

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: ArgumentHelp("Write HTTP and WebSocket flows as HAR ('-': stdout).", valueName: "FILE"))
    var har: String?

    @Option(name: .long, help: ArgumentHelp("Print a curl command that repeats this flow's request.", valueName: "ID"))
    var curl: String?

    @Option(name: .long, help: ArgumentHelp("Write JSON Lines with heads and bodies ('-': stdout).", valueName: "FILE"))
    var jsonl: String?

    @Option(name: .long, help: "Consider the newest N flows.")
    var limit = 100_000

    @Argument(help: ArgumentHelp("Only flows matching this filter, e.g. '~m POST & ~u /api'.", valueName: "FILTER"))
    var filter: [String] = []

    func run() throws {
        // Checked here rather than in `validate()`: ArgumentParser may validate a candidate parse it then drops,
        // and `fail` prints at once. One `sluice:` line, like every other operator mistake.
        guard [har, curl, jsonl].compactMap({ $0 }).count == 1 else {
            throw fail("give exactly one of --har FILE, --curl ID, --jsonl FILE")
        }
        guard limit > 0 else { throw fail("--limit must be at least 1") }
        if let curl {
            guard filter.isEmpty else { throw fail("--curl takes one flow id, not a filter") }
            try printCurl(curl)
            return
        }
        let expression = filter.joined(separator: " ")
        let selection: Filter?
        do {
            selection = expression.isEmpty ? nil : try Filter(expression)
        } catch {
            throw fail("filter '\(expression)': \(error)")
        }
        let database = try openStore()
        if let har {
            try exportHAR(to: har, from: database, selection: selection)
        } else if let jsonl {
            try exportJSONLines(to: jsonl, from: database, selection: selection)
        }
    }

    private func openStore() throws -> Store {
        do {
            let configuration = try store.loadConfiguration()
            return try Store(directory: store.dataDirectory(configuration))
        } catch {
            throw fail(error)
        }
    }

    private func printCurl(_ text: String) throws {
        guard let id = Int64(text), id > 0 else {
            throw fail("--curl needs a flow id (see `sluice flows`), got '\(text)'")
        }
        let database = try openStore()
        let command: CurlExport.Command
        do {
            guard let flow = try database.flow(FlowID(id)) else { throw fail("no flow \(id) in the store") }
            command = try CurlExport.command(for: flow, messages: try database.messages(of: flow.id))
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(error)
        }
        for warning in command.warnings { FileHandle.standardError.write(Data("sluice: \(warning)\n".utf8)) }
        print(command.text, terminator: "")
    }

    private func exportHAR(to path: String, from database: Store, selection: Filter?) throws {
        let har = HARExport(creatorVersion: SluiceVersion.current)
        let output = try ExportOutput(path: path)
        var written = 0
        let skipped = try output.producing {
            try output.write(har.prologue)
            let skipped = try eachFlow(in: database, selection: selection, exportable: HARExport.exports) {
                flow, messages, errors in
                guard let entry = har.entryJSON(flow: flow, messages: messages, errors: errors) else { return }
                if written > 0 { try output.write(HARExport.separator) }
                try output.write(entry)
                written += 1
            }
            try output.write(HARExport.epilogue)
            return skipped
        }
        if !skipped.isEmpty {
            let total = skipped.values.reduce(0, +)
            let kinds = skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            FileHandle.standardError.write(
                Data("sluice: skipped \(total) flow\(total == 1 ? "" : "s") that HAR cannot hold (\(kinds))\n".utf8)
            )
        }
    }

    private func exportJSONLines(to path: String, from database: Store, selection: Filter?) throws {
        let output = try ExportOutput(path: path)
        _ = try output.producing {
            try eachFlow(in: database, selection: selection, exportable: { _ in true }) { flow, messages, errors in
                try output.write(
                    Data((FlowExportLine.json(flow: flow, messages: messages, errors: errors) + "\n").utf8))
            }
        }
    }

    /// Calls `body` for the newest `--limit` flows that match the filter and are `exportable`, oldest first, with
    /// their messages and errors; returns how many matching flows were not exportable, by `skipReason`. A flow's
    /// messages are read only when the filter or the export needs them, one flow at a time.
    private func eachFlow(
        in database: Store, selection: Filter?, exportable: (StoredFlow) -> Bool,
        _ body: (StoredFlow, [StoredMessage], [StoredError]) throws -> Void
    ) throws -> [String: Int] {
        var skipped: [String: Int] = [:]
        do {
            for flow in try database.flows(limit: limit) {
                let wanted = exportable(flow)
                if !wanted && selection == nil {
                    skipped[Self.skipReason(flow), default: 0] += 1
                    continue
                }
                let messages = try database.messages(of: flow.id)
                if let selection {
                    let commands = try database.commands(flow: flow.id, limit: Int.max)
                    if !selection.matches(flow.filterSubject(messages: messages, commands: commands)) { continue }
                }
                guard wanted else {
                    skipped[Self.skipReason(flow), default: 0] += 1
                    continue
                }
                try body(flow, messages, try database.errors(of: flow.id))
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(error)
        }
        return skipped
    }

    static func skipReason(_ flow: StoredFlow) -> String {
        guard let http = flow.http else { return flow.kind }
        return http.method.uppercased() == "CONNECT" ? "CONNECT" : flow.kind
    }
}

/// `sluice export --jsonl`: `sluice flows --json`'s fields, then the HTTP heads, bodies (base64, as they travelled),
/// timings and errors, and for every other kind of flow its messages.
enum FlowExportLine {
    static func json(flow: StoredFlow, messages: [StoredMessage], errors: [StoredError]) -> String {
        var extra: [String: Any] = [
            "errors": errors.map { error -> [String: Any] in
                ["time": Timestamp.iso8601(error.time), "phase": error.phase, "message": error.message]
            }
        ]
        if let http = flow.http {
            let up = flow.body(.up, in: messages)
            let down = flow.body(.down, in: messages)
            extra["request"] =
                [
                    "time": Timestamp.iso8601(http.requestedAt), "method": http.method, "url": http.url,
                    "version": http.version, "headers": headerPairs(http.requestHeaders),
                    "body": up.stored.base64EncodedString(),
                    "body_size": up.travelled, "body_truncated": up.isTruncated,
                    "replay_of": http.replayOf.map { $0.rawValue } ?? NSNull(),
                ] as [String: Any]
            if let status = http.status {
                extra["response"] =
                    [
                        "time": http.respondedAt.map(Timestamp.iso8601) ?? NSNull(), "status": status,
                        "reason": http.reason ?? "",
                        "version": http.responseVersion ?? http.version, "headers": headerPairs(http.responseHeaders),
                        "body": down.stored.base64EncodedString(), "body_size": down.travelled,
                        "body_truncated": down.isTruncated, "synthetic": http.synthetic,
                    ] as [String: Any]
            } else {
                extra["response"] = NSNull()
            }
            extra["timings"] = [
                "connect_ms": number(http.timings.connect), "tls_ms": number(http.timings.tls),
                "first_byte_ms": number(http.timings.firstByte),
            ]
        }
        if flow.kind != FlowKind.http.rawValue {
            extra["messages"] = messages.map { message -> [String: Any] in
                [
                    "seq": message.sequence, "direction": message.direction.rawValue, "kind": message.kind.rawValue,
                    "time": Timestamp.iso8601(message.time), "size": message.size,
                    "payload": message.payload.base64EncodedString(), "truncated": message.isTruncated,
                ]
            }
        }
        // JSONObject cannot nest, so `flows --json`'s object is reopened and the rest appended to it; `extra` always
        // has `errors`, so the appended text is `"key":…}` and never empty.
        var line = FlowListing.json(flow)
        guard line.hasSuffix("}"),
            let rest = try? JSONSerialization.data(
                withJSONObject: extra, options: [.sortedKeys, .withoutEscapingSlashes])
        else {
            return line
        }
        line.removeLast()
        return line + "," + String(decoding: rest.dropFirst(), as: UTF8.self)
    }

    static func headerPairs(_ headers: [HeaderField]) -> [[String]] {
        headers.map { [$0.name, $0.value] }
    }

    static func number(_ value: Double?) -> Any {
        guard let value, value.isFinite else { return NSNull() }
        return value
    }
}

/// Where an export goes: stdout for `-`, otherwise a file created 0600, because exports hold the cookies and tokens
/// the store protects the same way. A failed export removes its partial file.
final class ExportOutput {
    private let path: String
    private let descriptor: Int32
    private var buffer = Data()
    private var isOpen = true

    init(path: String) throws {
        self.path = path
        if path == "-" {
            descriptor = STDOUT_FILENO
            return
        }
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw fail("cannot write \(path): \(String(cString: strerror(errno)).lowercased())")
        }
    }

    /// Runs `body`, which writes the export, then closes the file; when anything fails, the partial file goes.
    func producing<T>(_ body: () throws -> T) throws -> T {
        do {
            let result = try body()
            try finish()
            return result
        } catch {
            discard()
            throw error
        }
    }

    func write(_ data: Data) throws {
        buffer.append(data)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Writes what is buffered and closes the file.
    private func finish() throws {
        try flush()
        if descriptor != STDOUT_FILENO {
            isOpen = false
            if close(descriptor) != 0 { try failed(errno) }
        }
    }

    private func discard() {
        guard descriptor != STDOUT_FILENO, isOpen else { return }
        isOpen = false
        close(descriptor)
        unlink(path)
    }

    private func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let count = buffer.withUnsafeBytes { bytes in
                Glibc.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            }
            if count < 0 {
                if errno == EINTR { continue }
                try failed(errno)
            }
            offset += count
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private func failed(_ code: Int32) throws -> Never {
        let reason = String(cString: strerror(code)).lowercased()
        if descriptor != STDOUT_FILENO {
            if isOpen { close(descriptor) }
            isOpen = false
            unlink(path)
        }
        throw fail("cannot write \(path == "-" ? "stdout" : path): \(reason)")
    }
}
