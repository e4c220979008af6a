import SluiceModel

/// Writes asciicast v2 lines (PROTOCOLS.md §4): the header, then one `[time, code, data]` line per event. No I/O:
/// lines are appended to a `ByteSink` the caller owns, so `AsciicastRecording` (and a test) decide where they go.
///
/// Output and input are byte streams cut anywhere by the SSH channel, so each has its own `IncrementalUTF8`: a
/// character split across two chunks is written whole in the second event, never as two U+FFFD. Times are
/// clamped to never go backwards (a wall clock can step back; players assume they do not) and written with at most
/// six decimals, as asciinema does.
public struct AsciicastEncoder: Sendable {
    public let header: AsciicastHeader
    private var outputText = IncrementalUTF8()
    private var inputText = IncrementalUTF8()
    /// Microseconds of the last event written, so the next is never earlier.
    private var lastMicroseconds: Int64 = 0
    /// Reused between events: the decoded text of the current one.
    private var scratch: [UInt8] = []

    public init(header: AsciicastHeader) {
        self.header = header
    }

    /// The header line, newline included.
    public func appendHeader(to sink: inout ByteSink) {
        var env: [String] = []
        if let term = header.term { env.append("\"TERM\":" + JSONObject.quote(term)) }
        if let shell = header.shell { env.append("\"SHELL\":" + JSONObject.quote(shell)) }
        var object = JSONObject()
            .int("version", 2).int("width", Int64(header.width)).int("height", Int64(header.height))
        if let timestamp = header.timestamp { object = (consume object).int("timestamp", timestamp) }
        if let limit = header.idleTimeLimit { object = (consume object).double("idle_time_limit", limit) }
        if !env.isEmpty { object = (consume object).json("env", Array("{\(env.joined(separator: ","))}".utf8)) }
        if let title = header.title { object = (consume object).string("title", title) }
        object.appendLine(to: &sink)
    }

    /// An "o" event: bytes the terminal showed. Nothing is written when the chunk holds only the start of a
    /// character; it comes out with the next chunk.
    public mutating func output(_ bytes: some Collection<UInt8>, at time: Double, to sink: inout ByteSink) {
        scratch.removeAll(keepingCapacity: true)
        outputText.decode(bytes, into: &scratch)
        appendEvent(code: "o", at: time, text: scratch, to: &sink)
    }

    /// An "i" event: keys the client typed.
    public mutating func input(_ bytes: some Collection<UInt8>, at time: Double, to sink: inout ByteSink) {
        scratch.removeAll(keepingCapacity: true)
        inputText.decode(bytes, into: &scratch)
        appendEvent(code: "i", at: time, text: scratch, to: &sink)
    }

    /// An "r" event: the terminal's new size.
    public mutating func resize(columns: Int, rows: Int, at time: Double, to sink: inout ByteSink) {
        appendEvent(code: "r", at: time, text: Array("\(columns)x\(rows)".utf8), to: &sink)
    }

    /// An "m" event: a marker (a captured command, an alert) a player can jump to.
    public mutating func marker(_ label: String, at time: Double, to sink: inout ByteSink) {
        appendEvent(code: "m", at: time, text: Array(label.utf8), to: &sink)
    }

    /// Ends both streams: an incomplete character left at the end of either becomes U+FFFD in a last event.
    public mutating func finish(at time: Double, to sink: inout ByteSink) {
        scratch.removeAll(keepingCapacity: true)
        outputText.finish(into: &scratch)
        appendEvent(code: "o", at: time, text: scratch, to: &sink)
        scratch.removeAll(keepingCapacity: true)
        inputText.finish(into: &scratch)
        appendEvent(code: "i", at: time, text: scratch, to: &sink)
    }

    /// `[time, "code", "text"]` and a newline; nothing for empty text. `text` is valid UTF-8.
    private mutating func appendEvent(code: StaticString, at time: Double, text: [UInt8], to sink: inout ByteSink) {
        guard !text.isEmpty else { return }
        let microseconds = Self.microseconds(time)
        lastMicroseconds = max(lastMicroseconds, microseconds)
        sink.append(UInt8(ascii: "["))
        Self.appendTime(lastMicroseconds, to: &sink)
        sink.append(",\"")
        sink.append(code)
        sink.append("\",")
        text.withUnsafeBufferPointer { JSONObject.appendQuoted(utf8: $0, to: &sink) }
        sink.append("]\n")
    }

    /// Seconds as whole microseconds; NaN, negative and absurd times (past ~292,000 years) are clamped.
    static func microseconds(_ seconds: Double) -> Int64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return Int64(min(seconds * 1_000_000, 9e18).rounded())
    }

    /// `12.345`, `0.000001`, `3.0`: at most six decimals, trailing zeros dropped but one kept.
    static func appendTime(_ microseconds: Int64, to sink: inout ByteSink) {
        sink.append(String(microseconds / 1_000_000))
        sink.append(UInt8(ascii: "."))
        var fraction = microseconds % 1_000_000
        var digits = 6
        while digits > 1 && fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let text = String(fraction)
        sink.append(String(repeating: "0", count: digits - text.count) + text)
    }
}
