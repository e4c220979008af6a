import Foundation

/// Builds one JSON object's UTF-8 text. Hand-written, on bytes, because the store's writer runs it for every
/// recorded event: `JSONEncoder` and string concatenation cost more than the SQLite insert beside it.
///
/// Keys are static strings and are written as they are: they must not need escaping. The methods consume the
/// object and return it, so a chain `JSONObject().int(…).string(…)` appends in place without copying.
public struct JSONObject: ~Copyable, Sendable {
    /// The object so far, without its closing brace; `line` and `appendLine(to:)` close it. After
    /// `init(appendingTo:)`, the lines before the object come first.
    private var bytes: ByteSink
    /// Where the object begins in `bytes`.
    private let start: Int

    public init(reservingCapacity capacity: Int = 256) {
        bytes = ByteSink(capacity: capacity)
        start = 0
        bytes.append(UInt8(ascii: "{"))
    }

    /// Starts an object after the lines `lines` holds; `appendLine(to:_:)` uses it.
    private init(appendingTo lines: consuming ByteSink) {
        bytes = lines
        start = bytes.count
        bytes.append(UInt8(ascii: "{"))
    }

    /// Appends the object `build` makes and a newline to `lines`, in place: no buffer of its own and no copy, for
    /// a writer of JSON Lines that adds many objects to one buffer.
    public static func appendLine(to lines: inout ByteSink, _ build: (consuming JSONObject) -> JSONObject) {
        var object = build(JSONObject(appendingTo: lines))
        object.bytes.append(UInt8(ascii: "}"))
        object.bytes.append(UInt8(ascii: "\n"))
        lines = object.bytes
    }

    public consuming func string(_ key: StaticString, _ value: String) -> JSONObject {
        field(key) { Self.appendQuoted(value, to: &$0) }
    }

    /// An endpoint as its `description` writes it, `host:port`.
    public consuming func endpoint(_ key: StaticString, _ value: Endpoint) -> JSONObject {
        field(key) { bytes in
            var text = ByteSink(capacity: value.host.utf8.count + 8)
            value.appendDescription(to: &text)
            text.withUnsafeBytes { Self.appendQuoted(utf8: $0.bindMemory(to: UInt8.self), to: &bytes) }
        }
    }

    public consuming func optionalString(_ key: StaticString, _ value: String?) -> JSONObject {
        guard let value else { return null(key) }
        return string(key, value)
    }

    public consuming func int(_ key: StaticString, _ value: Int64) -> JSONObject {
        field(key) { Self.appendDecimal(value, to: &$0) }
    }

    public consuming func optionalInt(_ key: StaticString, _ value: Int64?) -> JSONObject {
        guard let value else { return null(key) }
        return int(key, value)
    }

    public consuming func bool(_ key: StaticString, _ value: Bool) -> JSONObject {
        field(key) { $0.append(value ? "true" : "false") }
    }

    public consuming func double(_ key: StaticString, _ value: Double) -> JSONObject {
        guard value.isFinite else { return null(key) }
        return field(key) { $0.append(String(value)) }
    }

    public consuming func optionalDouble(_ key: StaticString, _ value: Double?) -> JSONObject {
        guard let value else { return null(key) }
        return double(key, value)
    }

    /// A UTC ISO-8601 time with milliseconds, as `Timestamp.iso8601` writes it.
    public consuming func time(_ key: StaticString, _ value: Date) -> JSONObject {
        field(key) { bytes in
            bytes.append(UInt8(ascii: "\""))
            Timestamp.appendISO8601(value, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
    }

    /// Bytes as a base64 string (its alphabet never needs escaping).
    public consuming func base64(_ key: StaticString, _ data: Data) -> JSONObject {
        field(key) { bytes in
            bytes.append(UInt8(ascii: "\""))
            data.withUnsafeBytes { source in
                bytes.append(count: Base64.encodedCount(source.count)) { Base64.encode(source, to: $0) }
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    /// Bytes as lowercase hex (digests).
    public consuming func hex(_ key: StaticString, _ data: Data) -> JSONObject {
        field(key) { bytes in
            bytes.append(UInt8(ascii: "\""))
            for byte in data {
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    /// A list of strings, or null.
    public consuming func optionalStrings(_ key: StaticString, _ values: [String]?) -> JSONObject {
        guard let values else { return null(key) }
        return field(key) { bytes in
            bytes.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                Self.appendQuoted(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        }
    }

    /// A value that is JSON text already (headers the store also writes to SQLite, made once for both).
    public consuming func json(_ key: StaticString, _ text: [UInt8]) -> JSONObject {
        field(key) { $0.append(text) }
    }

    /// The finished object as text.
    public var line: String {
        bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } + "}"
    }

    /// Appends the finished object and a newline: one JSON Lines record.
    public func appendLine(to buffer: inout ByteSink) {
        bytes.withUnsafeBytes { buffer.append($0) }
        buffer.append(UInt8(ascii: "}"))
        buffer.append(UInt8(ascii: "\n"))
    }

    private consuming func null(_ key: StaticString) -> JSONObject {
        field(key) { $0.append("null") }
    }

    /// `"key":` and the value `write` appends.
    private consuming func field(_ key: StaticString, _ write: (inout ByteSink) -> Void) -> JSONObject {
        appendKey(key)
        write(&bytes)
        return self
    }

    private mutating func appendKey(_ key: StaticString) {
        if bytes.count > start + 1 { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(key)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    // MARK: Values

    /// Headers as the JSON text stored in the `http` table and the JSON Lines: `[[name, value], ...]`, order and
    /// repeats kept.
    public static func headersJSON(_ headers: [HeaderField]) -> [UInt8] {
        var bytes = ByteSink(capacity: 32 + headers.count * 48)
        appendHeaders(headers, to: &bytes)
        return bytes.array
    }

    /// Reads what `headersJSON` wrote; nil when the text is not such a list.
    public static func parseHeaders(_ json: String) -> [HeaderField]? {
        HeaderListParser.parse(json)
    }

    /// `value` as a JSON string literal, quotes included.
    public static func quote(_ value: String) -> String {
        var bytes = ByteSink()
        appendQuoted(value, to: &bytes)
        return bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    static func appendHeaders(_ headers: [HeaderField], to bytes: inout ByteSink) {
        bytes.append(UInt8(ascii: "["))
        for (index, field) in headers.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "["))
            appendQuoted(field.name, to: &bytes)
            bytes.append(UInt8(ascii: ","))
            appendQuoted(field.value, to: &bytes)
            bytes.append(UInt8(ascii: "]"))
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Quotes a string. Swift strings are valid UTF-8, so only `"`, `\` and control characters need escaping;
    /// everything else is copied as it is.
    static func appendQuoted(_ value: String, to bytes: inout ByteSink) {
        var value = value
        value.withUTF8 { appendQuoted(utf8: $0, to: &bytes) }
    }

    /// Quotes valid UTF-8 text: only `"`, `\` and control characters are escaped. Public for writers of other JSON
    /// formats on bytes (asciicast event lines); the caller guarantees the UTF-8 is valid.
    public static func appendQuoted(utf8: UnsafeBufferPointer<UInt8>, to bytes: inout ByteSink) {
        bytes.append(UInt8(ascii: "\""))
        // Most header values, URLs and names need no escaping at all: checked eight bytes at a time, then copied
        // in one go.
        if let base = utf8.baseAddress, !needsEscaping(base, count: utf8.count) {
            bytes.append(utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        var start = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            bytes.append(UnsafeBufferPointer(rebasing: utf8[start..<index]))
            start = index + 1
            switch byte {
            case UInt8(ascii: "\""): bytes.append("\\\"")
            case UInt8(ascii: "\\"): bytes.append("\\\\")
            case UInt8(ascii: "\n"): bytes.append("\\n")
            case UInt8(ascii: "\r"): bytes.append("\\r")
            case UInt8(ascii: "\t"): bytes.append("\\t")
            default:
                bytes.append("\\u00")
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0xF)])
            }
        }
        bytes.append(UnsafeBufferPointer(rebasing: utf8[start...]))
        bytes.append(UInt8(ascii: "\""))
    }

    /// Whether any of `count` bytes at `base` is a control character, `"` or `\`: eight at a time, the last eight
    /// overlapping the ones before when the count is not a multiple of eight.
    static func needsEscaping(_ base: UnsafePointer<UInt8>, count: Int) -> Bool {
        let raw = UnsafeRawPointer(base)
        guard count >= 8 else {
            for index in 0..<count {
                let byte = base[index]
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return true }
            }
            return false
        }
        var offset = 0
        while offset + 8 <= count {
            if mayNeedEscaping(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) { return true }
            offset += 8
        }
        return offset < count && mayNeedEscaping(raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
    }

    /// Whether any of the eight bytes in `word` is a control character, `"` or `\`: the classic "has a byte less
    /// than n / equal to n" bit tricks (exact as a yes or no; bytes of 0x80 and above never count).
    static func mayNeedEscaping(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ value: UInt64) -> Bool { (value &- ones) & ~value & highBits != 0 }
        let hasControl = (word &- ones &* 0x20) & ~word & highBits != 0
        return hasControl || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5C))
    }

    public static func appendDecimal(_ value: Int64, to bytes: inout ByteSink) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // Digits come least significant first: made on the stack, appended in order (20 fit any Int64).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var first = digits.count
            repeat {
                first -= 1
                digits[first] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(UnsafeBufferPointer(rebasing: digits[first...]))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
