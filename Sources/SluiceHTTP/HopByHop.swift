import NIOHTTP1
import SluiceModel

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), which a proxy must not forward.
///
/// Every request and response passes through here, so each check is one pass over the headers without lowercased
/// copies (header names and the tokens that matter are ASCII).
enum HopByHop {
    static let names = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "upgrade",
    ]

    static func isHopByHop(_ name: String) -> Bool {
        names.contains { name.equalsIgnoringASCIICase($0) }
    }

    /// Removes hop-by-hop headers and every header the `Connection` header names. `Transfer-Encoding` stays: NIO's
    /// encoder re-frames the body from it and `Content-Length`. A WebSocket upgrade keeps `Upgrade` and
    /// `Connection: Upgrade`, since the handshake has to reach the server.
    static func strip(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        var found = false
        var listed: [Substring] = []
        for (name, value) in headers where isHopByHop(name) {
            found = true
            if name.equalsIgnoringASCIICase("connection") { listed.append(contentsOf: tokens(value)) }
        }
        guard found else { return }
        var kept = HTTPHeaders()
        kept.reserveCapacity(headers.count)
        var upgrade: [String] = []
        for (name, value) in headers {
            if isHopByHop(name) {
                if keepUpgrade && name.equalsIgnoringASCIICase("upgrade") { upgrade.append(value) }
                continue
            }
            if listed.contains(where: { name.equalsIgnoringASCIICase($0) }) { continue }
            kept.add(name: name, value: value)
        }
        if !upgrade.isEmpty {
            for value in upgrade { kept.add(name: "Upgrade", value: value) }
            kept.add(name: "Connection", value: "Upgrade")
        }
        headers = kept
    }

    /// Whether the sender of a message wants its connection closed after it (RFC 9112 §9.3).
    static func wantsClose(_ headers: HTTPHeaders, version: HTTPVersion) -> Bool {
        var keepAlive = false
        for (name, value) in headers where name.equalsIgnoringASCIICase("connection") {
            for token in tokens(value) {
                if token.equalsIgnoringASCIICase("close") { return true }
                if token.equalsIgnoringASCIICase("keep-alive") { keepAlive = true }
            }
        }
        if version.major == 1 && version.minor == 0 { return !keepAlive }
        return false
    }

    /// A WebSocket opening handshake (RFC 6455 §4.1).
    static func isWebSocketUpgrade(_ headers: HTTPHeaders) -> Bool {
        contains(headers, name: "upgrade", token: "websocket") && contains(headers, name: "connection", token: "upgrade")
    }

    /// Whether a header `name` lists `token` among its comma-separated values, both in any case.
    static func contains(_ headers: HTTPHeaders, name: String, token: String) -> Bool {
        for (field, value) in headers where field.equalsIgnoringASCIICase(name) {
            if tokens(value).contains(where: { $0.equalsIgnoringASCIICase(token) }) { return true }
        }
        return false
    }

    /// A header value's comma-separated elements, without surrounding spaces and tabs (RFC 9110 §5.6.1).
    static func tokens(_ value: String) -> [Substring] {
        value.split(separator: ",").compactMap { element in
            let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
            guard let first = element.firstIndex(where: { !isSpace($0) }), let last = element.lastIndex(where: { !isSpace($0) })
            else { return nil }
            return element[first...last]
        }
    }
}

extension StringProtocol {
    /// Equality ignoring the case of ASCII letters, as header names and tokens compare (RFC 9110 §5.1), without
    /// making lowercased copies.
    func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        let bytes = utf8
        let others = other.utf8
        guard bytes.count == others.count else { return false }
        for (byte, otherByte) in zip(bytes, others) where byte != otherByte {
            guard Self.asciiLowercased(byte) == Self.asciiLowercased(otherByte) else { return false }
        }
        return true
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}

extension HTTPHeaders {
    /// The headers as the flow records them, in wire order.
    var fields: [HeaderField] {
        map { HeaderField(name: $0.name, value: $0.value) }
    }

    /// The headers with credentials for the proxy itself removed: they must never reach a log or the store.
    var redacted: [HeaderField] {
        compactMap { name, value in
            name.equalsIgnoringASCIICase("proxy-authorization") ? nil : HeaderField(name: name, value: value)
        }
    }
}
