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

    static func isHopByHop(_ name: some StringProtocol) -> Bool {
        index(of: name) != nil
    }

    private static func index(of name: some StringProtocol) -> Int? {
        // Most header names have a length no hop-by-hop name has: those are told apart without comparing bytes.
        let length = name.utf8.count
        guard length < 64, nameLengths & (1 << length) != 0 else { return nil }
        return names.firstIndex { name.equalsIgnoringASCIICase($0) }
    }

    /// The lengths of `names`, as bits.
    private static let nameLengths: UInt64 = names.reduce(0) { $0 | 1 << $1.utf8.count }

    /// Removes hop-by-hop headers and every header the `Connection` header names. `Transfer-Encoding` stays: NIO's
    /// encoder re-frames the body from it and `Content-Length`. A WebSocket upgrade keeps `Upgrade` and
    /// `Connection: Upgrade`, since the handshake has to reach the server.
    static func strip(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        // Which of `names` are present, as bits: usually just `Connection`, removed in place without allocating.
        var present: UInt32 = 0
        var listed: [Substring] = []
        var upgrade: [String] = []
        for (name, value) in headers {
            guard let index = index(of: name) else { continue }
            present |= 1 << index
            if name.equalsIgnoringASCIICase("connection") {
                forEachToken(value) { token in
                    if !isHopByHop(token) { listed.append(token) }
                    return true
                }
            }
            if keepUpgrade && name.equalsIgnoringASCIICase("upgrade") { upgrade.append(value) }
        }
        guard present != 0 else { return }
        for (index, name) in names.enumerated() where present & (1 << index) != 0 {
            headers.remove(name: name)
        }
        for name in listed {
            headers.remove(name: String(name))
        }
        if !upgrade.isEmpty {
            for value in upgrade { headers.add(name: "Upgrade", value: value) }
            headers.add(name: "Connection", value: "Upgrade")
        }
    }

    /// Whether the sender of a message wants its connection closed after it (RFC 9112 §9.3).
    static func wantsClose(_ headers: HTTPHeaders, version: HTTPVersion) -> Bool {
        var keepAlive = false
        var close = false
        for (name, value) in headers where name.equalsIgnoringASCIICase("connection") {
            forEachToken(value) { token in
                if token.equalsIgnoringASCIICase("close") { close = true }
                if token.equalsIgnoringASCIICase("keep-alive") { keepAlive = true }
                return !close
            }
        }
        if close { return true }
        if version.major == 1 && version.minor == 0 { return !keepAlive }
        return false
    }

    /// A WebSocket opening handshake (RFC 6455 §4.1).
    static func isWebSocketUpgrade(_ headers: HTTPHeaders) -> Bool {
        contains(headers, name: "upgrade", token: "websocket") && contains(headers, name: "connection", token: "upgrade")
    }

    /// Whether a header `name` lists `token` among its comma-separated values, both in any case.
    static func contains(_ headers: HTTPHeaders, name: String, token: String) -> Bool {
        var found = false
        for (field, value) in headers where field.equalsIgnoringASCIICase(name) {
            forEachToken(value) { element in
                found = element.equalsIgnoringASCIICase(token)
                return !found
            }
            if found { return true }
        }
        return false
    }

    /// Calls `body` with each element of a comma-separated header value (RFC 9110 §5.6.1), without surrounding
    /// spaces and tabs, skipping empty ones, until it returns false. Allocates nothing.
    static func forEachToken(_ value: String, _ body: (Substring) -> Bool) {
        let utf8 = value.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: ",")) ?? utf8.endIndex
            var first = start
            var last = end
            while first < last, utf8[first] == UInt8(ascii: " ") || utf8[first] == UInt8(ascii: "\t") {
                first = utf8.index(after: first)
            }
            while last > first {
                let before = utf8.index(before: last)
                guard utf8[before] == UInt8(ascii: " ") || utf8[before] == UInt8(ascii: "\t") else { break }
                last = before
            }
            if first < last, !body(value[first..<last]) { return }
            start = end < utf8.endIndex ? utf8.index(after: end) : end
        }
    }
}

extension StringProtocol {
    /// Equality ignoring the case of ASCII letters, as header names and tokens compare (RFC 9110 §5.1), without
    /// making lowercased copies.
    func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        // Both sides as contiguous bytes (native strings always are): a plain loop instead of zipping two
        // `UTF8View`s, which every header check of every exchange would pay for.
        let compared = utf8.withContiguousStorageIfAvailable { bytes in
            other.utf8.withContiguousStorageIfAvailable { others in Self.equalIgnoringASCIICase(bytes, others) }
        }
        if let compared, let result = compared { return result }
        for (byte, otherByte) in zip(utf8, other.utf8) where byte != otherByte {
            guard Self.asciiLowercased(byte) == Self.asciiLowercased(otherByte) else { return false }
        }
        return true
    }

    private static func equalIgnoringASCIICase(_ bytes: UnsafeBufferPointer<UInt8>, _ others: UnsafeBufferPointer<UInt8>) -> Bool {
        for index in 0..<bytes.count where bytes[index] != others[index] {
            guard asciiLowercased(bytes[index]) == asciiLowercased(others[index]) else { return false }
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
        var fields: [HeaderField] = []
        fields.reserveCapacity(count)
        for (name, value) in self { fields.append(HeaderField(name: name, value: value)) }
        return fields
    }

    /// The headers with credentials for the proxy itself removed: they must never reach a log or the store.
    var redacted: [HeaderField] {
        var fields: [HeaderField] = []
        fields.reserveCapacity(count)
        for (name, value) in self where !name.equalsIgnoringASCIICase("proxy-authorization") {
            fields.append(HeaderField(name: name, value: value))
        }
        return fields
    }
}
