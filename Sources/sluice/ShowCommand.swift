import ArgumentParser
import Foundation
import SluiceModel
import SluiceStore

/// `sluice show ID`: one flow and its messages in order.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one flow and its messages.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "The flow's id (see `sluice flows`).")
    var id: Int64

    @Flag(name: .long, help: "Hexdump every message, with stream offsets and an ASCII column.")
    var hex = false

    @Option(name: .long, help: "Write one direction's recorded bytes to stdout: up (client to server) or down.")
    var raw: Direction?

    func run() throws {
        let flowID = FlowID(id)
        let flow: StoredFlow
        let messages: [StoredMessage]
        let errors: [StoredError]
        do {
            let configuration = try store.loadConfiguration()
            let database = try Store(directory: store.dataDirectory(configuration))
            guard let found = try database.flow(flowID) else { throw fail("no flow \(id) in the store") }
            flow = found
            messages = try database.messages(of: flowID)
            errors = try database.errors(of: flowID)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(error)
        }
        if let raw {
            try writeRaw(messages.filter { $0.direction == raw }, direction: raw, flow: flow)
        } else {
            print(FlowDetail.text(flow: flow, messages: messages, errors: errors, hex: hex), terminator: "")
        }
    }

    /// The bytes exactly as stored; a warning on stderr when recording limits cut some.
    private func writeRaw(_ messages: [StoredMessage], direction: Direction, flow: StoredFlow) throws {
        var stored: Int64 = 0
        for message in messages {
            FileHandle.standardOutput.write(message.payload)
            stored += Int64(message.payload.count)
        }
        // Heads are in the totals, not in the messages.
        let travelled = direction == .up ? flow.bytesUp - flow.headBytesUp : flow.bytesDown - flow.headBytesDown
        if stored < travelled && flow.state != "open" {
            FileHandle.standardError.write(
                Data("sluice: flow \(id) \(direction.rawValue): \(stored) of \(travelled) bytes were stored (recording limits)\n".utf8)
            )
        }
    }
}

extension Direction: ExpressibleByArgument {}

/// The text `sluice show` prints.
enum FlowDetail {
    static func text(flow: StoredFlow, messages: [StoredMessage], errors: [StoredError], hex: Bool) -> String {
        var out = "flow \(flow.id)  \(flow.kind)  \(flow.origin) -> \(flow.server)  \(flow.state)\n"
        out += "listener  \(flow.listener)\n"
        out += "started   \(Timestamp.iso8601(flow.startedAt))\n"
        if let ended = flow.endedAt {
            out += "ended     \(Timestamp.iso8601(ended))  (\(Formatting.duration(seconds: ended.timeIntervalSince(flow.startedAt))))\n"
        }
        out += "bytes     up \(flow.bytesUp) (\(Formatting.bytes(flow.bytesUp))), down \(flow.bytesDown) (\(Formatting.bytes(flow.bytesDown)))"
        out += flow.payloadTruncated ? ", payload truncated by recording limits\n" : "\n"
        for error in errors {
            out += "error     \(Timestamp.iso8601(error.time)) \(error.phase): \(error.message)\n"
        }
        if let http = flow.http {
            out += "\n" + httpHeads(http)
        }
        out += "messages  \(messages.count)\n"
        var offsets: [Direction: Int] = [.up: 0, .down: 0]
        for message in messages {
            let offset = offsets[message.direction] ?? 0
            var header = "\n#\(message.sequence) \(message.direction.arrow) \(message.direction.rawValue)  "
            header += "\(Timestamp.timeOfDay(message.time))  \(message.size) bytes at offset \(offset)"
            if message.isTruncated { header += " (\(message.payload.count) stored)" }
            if let original = message.editedFromSequence { header += ", operator's edit of #\(original)" }
            if let disposition = message.disposition { header += " [\(disposition)]" }
            if message.kind != .chunk { header += " \(message.kind.rawValue)" }
            out += header + "\n"
            if hex {
                out += Hexdump.format(message.payload, startOffset: offset) + "\n"
            } else {
                out += "  " + preview(message.payload) + "\n"
            }
            offsets[message.direction] = offset + message.size
        }
        if let coding = flow.http?.responseHeaders.first(named: "Content-Encoding") {
            let pieces = messages.filter { $0.direction == .down && $0.kind == .body }
            let body = pieces.reduce(into: Data()) { $0.append($1.payload) }
            if let decoded = BodyDecoding.decode(body, contentEncoding: coding, truncated: pieces.contains { $0.isTruncated }) {
                out += "\nresponse body, decoded from \(coding): \(decoded.count) bytes\n"
                out += hex ? Hexdump.format(decoded, startOffset: 0) + "\n" : "  " + preview(decoded, limit: 4096) + "\n"
            }
        }
        return out
    }

    /// The request and response heads as they travelled, with the timings.
    static func httpHeads(_ http: StoredHTTP) -> String {
        var out = "\(http.method) \(http.url) \(http.version)\n"
        for field in http.requestHeaders { out += "\(field.name): \(field.value)\n" }
        if let original = http.replayOf { out += "(\(Formatting.replay(of: original)))\n" }
        out += "\n"
        if let status = http.status {
            out += "\(http.responseVersion ?? "HTTP/1.1") \(status) \(http.reason ?? "")"
            out += http.synthetic ? "  (answered by Sluice)\n" : "\n"
            for field in http.responseHeaders { out += "\(field.name): \(field.value)\n" }
            let timings = [("connect", http.timings.connect), ("tls", http.timings.tls), ("first byte", http.timings.firstByte)]
                .compactMap { name, value in value.map { "\(name) \(String(format: "%.1f", $0)) ms" } }
            if !timings.isEmpty { out += "timings   " + timings.joined(separator: ", ") + "\n" }
        } else {
            out += "(no response)\n"
        }
        return out + "\n"
    }

    /// The first bytes as escaped text, for a quick look without --hex.
    static func preview(_ payload: Data, limit: Int = 96) -> String {
        var text = ""
        for byte in payload.prefix(limit) {
            switch byte {
            case 0x0a: text += "\\n"
            case 0x0d: text += "\\r"
            case 0x09: text += "\\t"
            case 0x5c: text += "\\\\"
            case 0x20...0x7e: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + Hexdump.hexByte(byte)
            }
        }
        return payload.count > limit ? text + "..." : text
    }
}
