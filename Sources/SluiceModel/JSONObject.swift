import Foundation

/// Builds one JSON object's text. Hand-written because it runs per recorded chunk and `JSONEncoder` is slow.
public struct JSONObject: Sendable {
    public init() {}

    /// The object so far, without its closing brace; `line` closes it.
    public private(set) var text = "{"
    private var hasFields = false

    public func string(_ key: String, _ value: String) -> JSONObject { field(key, Self.quote(value)) }
    public func optionalString(_ key: String, _ value: String?) -> JSONObject { field(key, value.map(Self.quote) ?? "null") }
    public func int(_ key: String, _ value: Int64) -> JSONObject { field(key, String(value)) }
    public func bool(_ key: String, _ value: Bool) -> JSONObject { field(key, value ? "true" : "false") }
    /// Bytes as a base64 string; its alphabet never needs escaping, so this skips the scan.
    public func base64(_ key: String, _ bytes: Data) -> JSONObject { field(key, "\"" + bytes.base64EncodedString() + "\"") }

    private func field(_ key: String, _ rawValue: String) -> JSONObject {
        var copy = self
        if copy.hasFields { copy.text += "," }
        copy.hasFields = true
        copy.text += Self.quote(key) + ":" + rawValue
        return copy
    }

    public var line: String { text + "}" }

    public func double(_ key: String, _ value: Double) -> JSONObject { field(key, value.isFinite ? String(value) : "null") }
    public func optionalInt(_ key: String, _ value: Int64?) -> JSONObject { field(key, value.map(String.init) ?? "null") }
    public func optionalDouble(_ key: String, _ value: Double?) -> JSONObject {
        field(key, value.map { $0.isFinite ? String($0) : "null" } ?? "null")
    }
    /// Headers as `[[name, value], ...]`, order and repeats kept.
    public func headers(_ key: String, _ headers: [HeaderField]) -> JSONObject { field(key, Self.headersJSON(headers)) }

    public static func headersJSON(_ headers: [HeaderField]) -> String {
        "[" + headers.map { "[" + quote($0.name) + "," + quote($0.value) + "]" }.joined(separator: ",") + "]"
    }

    /// Reads what `headersJSON` wrote; nil when the text is not such a list.
    public static func parseHeaders(_ json: String) -> [HeaderField]? {
        guard let pairs = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String]] else { return nil }
        var fields: [HeaderField] = []
        for pair in pairs {
            guard pair.count == 2 else { return nil }
            fields.append(HeaderField(name: pair[0], value: pair[1]))
        }
        return fields
    }

    public static func quote(_ value: String) -> String {
        // Fast path: most values (base64 payloads, addresses, times) need no escaping, and a byte scan is
        // ~15x cheaper than building the string scalar by scalar.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5c }) {
            return "\"" + value + "\""
        }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
