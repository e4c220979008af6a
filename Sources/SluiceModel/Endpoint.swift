/// A host and port as the operator wrote it (a name or an address); IPv6 addresses are shown in brackets.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String {
        var bytes = ByteSink(capacity: host.utf8.count + 8)
        appendDescription(to: &bytes)
        return bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// `host:port` (`[v6]:port`) as UTF-8, appended without making a string: the store writes two per flow.
    public func appendDescription(to bytes: inout ByteSink) {
        var host = host
        let bracketed = host.withUTF8 { $0.contains(UInt8(ascii: ":")) }
        if bracketed { bytes.append(UInt8(ascii: "[")) }
        bytes.append(host)
        if bracketed { bytes.append(UInt8(ascii: "]")) }
        bytes.append(UInt8(ascii: ":"))
        JSONObject.appendDecimal(Int64(port), to: &bytes)
    }
}

extension Endpoint {
    /// Reads back `host:port` or `[v6]:port` as `description` writes it (the store keeps endpoints as text).
    public init(parsing text: String) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let port = Int(text[text.index(after: close)...].dropFirst()) ?? 0
            self.init(host: host, port: port)
        } else if let colon = text.lastIndex(of: ":") {
            self.init(host: String(text[..<colon]), port: Int(text[text.index(after: colon)...]) ?? 0)
        } else {
            self.init(host: text, port: 0)
        }
    }
}
