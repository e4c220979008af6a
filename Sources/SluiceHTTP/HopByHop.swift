import NIOHTTP1
import SluiceModel

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), which a proxy must not forward.
///
/// Every request and response passes through here, so each message's headers are scanned once (`HeaderScan`),
/// without lowercased copies (header names and the tokens that matter are ASCII).
enum HopByHop {
    static let names = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "upgrade",
    ]

    static func isHopByHop(_ name: some StringProtocol) -> Bool {
        index(of: name) != nil
    }

    fileprivate static func index(of name: some StringProtocol) -> Int? {
        // Most header names have a length no hop-by-hop name has: those are told apart without comparing bytes.
        let length = name.utf8.count
        guard length < 64, nameLengths & (1 << length) != 0 else { return nil }
        return names.firstIndex { name.equalsIgnoringASCIICase($0) }
    }

    /// The lengths of `names`, as bits.
    private static let nameLengths: UInt64 = names.reduce(0) { $0 | 1 << $1.utf8.count }

    /// Removes hop-by-hop headers and every header the `Connection` header names. `Transfer-Encoding` stays: the
    /// writer re-frames the body from it (`HTTP1MessageWriter`). A WebSocket upgrade keeps `Upgrade` and
    /// `Connection: Upgrade`, since the handshake has to reach the server.
    static func strip(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        let scan = HeaderScan(headers)
        guard scan.hasHopByHop else { return }
        headers = HTTPHeaders(scan.kept(headers, keepUpgrade: keepUpgrade) { _, _ in false })
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

/// One pass over a message's headers: which hop-by-hop headers it has, what its `Connection` header says, and the
/// framing and handshake headers the proxy decides on.
///
/// Each request and response is scanned once into this and rebuilt once from it (`kept`), instead of one pass per
/// question and one per removed or replaced header: every pass over NIO's headers retains and releases each name
/// and value, and those passes were most of what Sluice adds to an exchange besides recording it (callgrind).
struct HeaderScan {
    /// Which of `HopByHop.names` are present, as bits.
    private(set) var hopByHop: UInt32 = 0
    /// Names the `Connection` header lists that are not in `HopByHop.names`: hop-by-hop for this message too.
    private(set) var listed: [Substring] = []
    /// `Upgrade` values in order: a WebSocket handshake forwards them.
    private(set) var upgradeValues: [String] = []
    private(set) var connectionClose = false
    private(set) var connectionKeepAlive = false
    private(set) var connectionUpgrade = false
    /// The framing header (`content-length` or `transfer-encoding`) that `Connection` lists, if any. Removing it
    /// as hop-by-hop would leave the body unframed for the next hop (RFC 9110 §7.6.1 forbids listing it).
    private(set) var connectionListsFraming: Substring?
    /// An `Upgrade` header lists `websocket`.
    private(set) var upgradeToWebSocket = false
    /// An `Expect` header lists `100-continue`.
    private(set) var expectsContinue = false
    private(set) var hasTransferEncoding = false
    private(set) var hasContentLength = false
    /// The first `Content-Length` as a number, when it is one (the parser has already refused lengths that
    /// disagree); a hint of how large the body is, never what frames it.
    private(set) var contentLength: Int?
    /// The first `Host` header's value.
    private(set) var host: String?
    /// An `Authorization` (requests) or `WWW-Authenticate` (responses) header uses NTLM or Negotiate, which
    /// authenticate the connection instead of the request.
    private(set) var authorizationIsConnectionBound = false
    private(set) var authenticateIsConnectionBound = false

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            if let index = HopByHop.index(of: name) {
                hopByHop |= 1 << index
                switch HopByHop.names[index] {
                case "connection": noteConnection(value)
                case "upgrade":
                    upgradeValues.append(value)
                    if !upgradeToWebSocket { upgradeToWebSocket = Self.lists(value, "websocket") }
                default: break
                }
                continue
            }
            switch name.utf8.count {
            case 4 where name.equalsIgnoringASCIICase("host"):
                if host == nil { host = value }
            case 6 where name.equalsIgnoringASCIICase("expect"):
                if !expectsContinue { expectsContinue = Self.lists(value, "100-continue") }
            case 13 where name.equalsIgnoringASCIICase("authorization"):
                if !authorizationIsConnectionBound { authorizationIsConnectionBound = Self.namesConnectionBoundScheme(value) }
            case 14 where name.equalsIgnoringASCIICase("content-length"):
                if !hasContentLength { contentLength = Int(value) }
                hasContentLength = true
            case 16 where name.equalsIgnoringASCIICase("www-authenticate"):
                if !authenticateIsConnectionBound { authenticateIsConnectionBound = Self.namesConnectionBoundScheme(value) }
            case 17 where name.equalsIgnoringASCIICase("transfer-encoding"):
                hasTransferEncoding = true
            default:
                break
            }
        }
    }

    private mutating func noteConnection(_ value: String) {
        HopByHop.forEachToken(value) { token in
            if token.equalsIgnoringASCIICase("close") {
                connectionClose = true
            } else if token.equalsIgnoringASCIICase("keep-alive") {
                connectionKeepAlive = true
            } else if token.equalsIgnoringASCIICase("upgrade") {
                connectionUpgrade = true
            } else if token.equalsIgnoringASCIICase("content-length") || token.equalsIgnoringASCIICase("transfer-encoding") {
                if connectionListsFraming == nil { connectionListsFraming = token }
            }
            if !HopByHop.isHopByHop(token) { listed.append(token) }
            return true
        }
    }

    /// Whether a comma-separated header value lists `token`, in any case.
    private static func lists(_ value: String, _ token: String) -> Bool {
        var found = false
        HopByHop.forEachToken(value) { element in
            found = element.equalsIgnoringASCIICase(token)
            return !found
        }
        return found
    }

    /// NTLM and Negotiate authenticate the connection, not the request (RFC 4559).
    private static func namesConnectionBoundScheme(_ value: String) -> Bool {
        let scheme = value.prefix { $0 != " " && $0 != "," }
        return scheme.equalsIgnoringASCIICase("ntlm") || scheme.equalsIgnoringASCIICase("negotiate")
    }

    /// Whether the message has anything `HopByHop.strip` removes.
    var hasHopByHop: Bool { hopByHop != 0 }

    /// A WebSocket opening handshake (RFC 6455 §4.1).
    var isWebSocketUpgrade: Bool { upgradeToWebSocket && connectionUpgrade }

    /// Whether the sender wants its connection closed after this message (RFC 9112 §9.3).
    func wantsClose(version: HTTPVersion) -> Bool {
        if connectionClose { return true }
        if version.major == 1 && version.minor == 0 { return !connectionKeepAlive }
        return false
    }

    /// Whether stripping removes headers called `name`: hop-by-hop ones, and those `Connection` lists.
    func strips(_ name: some StringProtocol) -> Bool {
        (hopByHop != 0 && HopByHop.isHopByHop(name)) || listed.contains { name.equalsIgnoringASCIICase($0) }
    }

    /// `headers` (the ones scanned) without hop-by-hop ones, those `Connection` lists and those `dropping` names,
    /// in their order; then, with `keepUpgrade`, the `Upgrade` values and `Connection: Upgrade`, as a WebSocket
    /// handshake needs them. The proxy appends what it sets after these, as `replaceOrAdd` would.
    func kept(_ headers: HTTPHeaders, keepUpgrade: Bool, dropping: (_ name: String, _ value: String) -> Bool) -> [(String, String)] {
        var kept: [(String, String)] = []
        kept.reserveCapacity(headers.count + 4)
        for (name, value) in headers where !strips(name) && !dropping(name, value) {
            kept.append((name, value))
        }
        if keepUpgrade && !upgradeValues.isEmpty {
            for value in upgradeValues { kept.append(("Upgrade", value)) }
            kept.append(("Connection", "Upgrade"))
        }
        return kept
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
