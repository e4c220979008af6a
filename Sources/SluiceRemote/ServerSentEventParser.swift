/// Reads a `text/event-stream` (the HTML standard's Server-Sent Events) from bytes as they arrive, however they are
/// cut: `event:` names the event, `data:` lines make its data (joined by newlines), a blank line sends it, lines
/// starting with `:` are comments. Lines end with LF, CRLF or CR.
///
/// A line longer than `maxLineBytes` is an error rather than memory the other end can make this client hold.
struct ServerSentEventParser {
    struct Event: Equatable {
        var name: String
        var data: String
    }

    struct TooLong: Error, Equatable {
        var limit: Int
    }

    let maxLineBytes: Int
    private var line: [UInt8] = []
    private var name = ""
    private var data: [String] = []
    private var hasData = false
    /// A CR ended the last line: an LF right after it belongs to that line end.
    private var afterCR = false

    init(maxLineBytes: Int = 64 << 20) {
        self.maxLineBytes = maxLineBytes
    }

    /// The events these bytes complete, in order.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws(TooLong) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\n"):
                if let event = endLine() { events.append(event) }
            case UInt8(ascii: "\r"):
                afterCR = true
                if let event = endLine() { events.append(event) }
            default:
                guard line.count < maxLineBytes else { throw TooLong(limit: maxLineBytes) }
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> Event? {
        defer { line.removeAll(keepingCapacity: line.count <= 4096) }
        guard !line.isEmpty else { return dispatch() }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = String(decoding: line[..<colon], as: UTF8.self)
        var valueStart = colon == line.endIndex ? colon : line.index(after: colon)
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart = line.index(after: valueStart) }
        let value = String(decoding: line[valueStart...], as: UTF8.self)
        switch field {
        case "event": name = value
        case "data":
            data.append(value)
            hasData = true
        default: break  // id, retry: this client reconnects on its own schedule and reloads what it missed.
        }
        return nil
    }

    private mutating func dispatch() -> Event? {
        defer {
            name = ""
            data = []
            hasData = false
        }
        guard hasData else { return nil }
        return Event(name: name.isEmpty ? "message" : name, data: data.joined(separator: "\n"))
    }
}
