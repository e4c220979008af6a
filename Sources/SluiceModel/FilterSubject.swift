import Foundation

/// What a filter expression can look at in one flow. Fields that a flow's kind does not have stay nil/empty, and
/// operators on them are false (a `~m GET` never matches a TCP flow), never an error.
///
/// It holds what was recorded, not what operators derive from it (header lines, content types, the domain): those
/// are worked out here once, the same way for the intercept gate, the TUI's list and the CLI, so the places that
/// build a subject only copy fields.
public struct FilterSubject: Sendable {
    public var kind: FlowKind
    public var client: Endpoint?
    public var server: Endpoint?
    /// Client-to-server payloads, each searched on its own as mitmproxy searches each message: an HTTP request body
    /// (one element, empty when there was no body), a WebSocket's messages from the client, a TCP stream's chunks.
    public var requestPayloads: [Data]
    /// Server-to-client payloads: an HTTP response body (once there is a response), the server's messages.
    public var responsePayloads: [Data]
    // HTTP and WebSocket (whose handshake is an HTTP exchange)
    public var method: String?
    public var url: String?
    public var requestHeaders: [HeaderField]
    /// Nil until there is a response; a response Sluice wrote itself (a 502) counts.
    public var statusCode: Int?
    public var responseHeaders: [HeaderField]
    /// Made by `sluice replay` or the TUI's `r`.
    public var isReplay: Bool
    // Every kind
    public var hasError: Bool
    public var isMarked: Bool
    public var isHeld: Bool
    // SSH and SQL
    public var risk: RiskLevel?
    public var commands: [String]
    /// Bare words the full-text index found anywhere in this flow's recorded text (`Filter.plainWords`), beyond the
    /// payloads this subject carries.
    public var indexedWords: Set<String> = []

    public init(
        kind: FlowKind, client: Endpoint? = nil, server: Endpoint? = nil, requestPayloads: [Data] = [],
        responsePayloads: [Data] = [], method: String? = nil, url: String? = nil, requestHeaders: [HeaderField] = [],
        statusCode: Int? = nil, responseHeaders: [HeaderField] = [], isReplay: Bool = false, hasError: Bool = false,
        isMarked: Bool = false, isHeld: Bool = false, risk: RiskLevel? = nil, commands: [String] = []
    ) {
        self.kind = kind
        self.client = client
        self.server = server
        self.requestPayloads = requestPayloads
        self.responsePayloads = responsePayloads
        self.method = method
        self.url = url
        self.requestHeaders = requestHeaders
        self.statusCode = statusCode
        self.responseHeaders = responseHeaders
        self.isReplay = isReplay
        self.hasError = hasError
        self.isMarked = isMarked
        self.isHeld = isHeld
        self.risk = risk
        self.commands = commands
    }
}

// MARK: What operators derive, as mitmproxy derives it

extension FilterSubject {
    /// An HTTP exchange or a WebSocket: what mitmproxy calls an `HTTPFlow`, the flows its HTTP operators look at.
    var isHTTP: Bool { kind == .http || kind == .websocket }

    var hasResponse: Bool { statusCode != nil }

    /// The headers as mitmproxy's `bytes(headers)` gives them to `~h`: `name: value` lines, each ended by CR LF.
    static func headerText(_ headers: [HeaderField]) -> String {
        var text = ""
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        return text
    }

    /// Every `Content-Type` value (a message may repeat the header), for `~t`, `~tq`, `~ts` and `~a`.
    static func contentTypes(_ headers: [HeaderField]) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare("Content-Type") == .orderedSame }.map(\.value)
    }

    /// The request's host as the URL names it and as its `Host` header does (mitmproxy's `host` and `pretty_host`),
    /// without brackets or port, for `~d`.
    var domains: [String] {
        var hosts: [String] = []
        if let url {
            if let parts = URLParts(url) {
                hosts.append(parts.host)
            } else if method?.uppercased() == "CONNECT" {
                hosts.append(Self.authority(url).host)
            }
        }
        if let header = requestHeaders.first(named: "Host"), !header.isEmpty {
            hosts.append(Self.authority(header).host)
        }
        return hosts
    }

    /// The URL as mitmproxy's `pretty_url` gives it to `~u`: the `Host` header's host and port in place of the
    /// URL's (in transparent mode the URL has an address, the header the name), a default port left out. A CONNECT's
    /// `host:port` stays as it is.
    var prettyURL: String? {
        guard let url else { return nil }
        guard method?.uppercased() != "CONNECT", let parts = URLParts(url) else { return url }
        var host = parts.host
        var port = parts.port
        if let header = requestHeaders.first(named: "Host"), !header.isEmpty {
            let authority = Self.authority(header)
            host = authority.host
            port = authority.port ?? URLParts.defaultPort(parts.scheme) ?? 443
        }
        let hostPort = port == URLParts.defaultPort(parts.scheme) ? host : "\(host):\(port)"
        return "\(parts.scheme)://\(hostPort)\(parts.path)"
    }

    /// `host:port` as mitmproxy writes an address for `~src` and `~dst`: an IPv6 host without brackets. Port 0 is
    /// no address (a request refused before any server was chosen is recorded with `-:0`).
    static func address(_ endpoint: Endpoint?) -> String? {
        guard let endpoint, endpoint.port != 0 else { return nil }
        return "\(endpoint.host):\(endpoint.port)"
    }

    /// A `Host` header's host (brackets gone) and port, as mitmproxy's `parse_authority` reads it: one that is not
    /// `host[:digits]` or `[v6][:digits]` is all host.
    static func authority(_ text: String) -> (host: String, port: Int?) {
        var host = Substring(text)
        var port: Int?
        if text.hasPrefix("["), let close = text.lastIndex(of: "]") {
            host = text[...close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = digits(rest.dropFirst()) else { return (text, nil) }
                port = number
            }
            return (String(host.dropFirst().dropLast()), port)
        }
        if let colon = text.firstIndex(of: ":") {
            guard let number = digits(text[text.index(after: colon)...]) else { return (text, nil) }
            host = text[..<colon]
            port = number
        }
        return host.isEmpty ? (text, nil) : (String(host), port)
    }

    private static func digits(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
        return Int(text)
    }
}

/// An absolute URL split as mitmproxy's `url.parse` splits it: lowercased host without brackets, the port (80 or
/// 443 when none is written), and the rest from the first `/`.
struct URLParts {
    var scheme: String
    var host: String
    var port: Int
    var path: String

    init?(_ url: String) {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let parsed = FilterSubject.authority(String(authority))
        guard !parsed.host.isEmpty else { return nil }
        host = parsed.host.lowercased()
        port = parsed.port ?? (scheme == "https" ? 443 : 80)
        path = String(rest[authorityEnd...])
        if !path.hasPrefix("/") { path = "/" + path }
    }

    static func defaultPort(_ scheme: String) -> Int? {
        switch scheme {
        case "http": return 80
        case "https": return 443
        default: return nil
        }
    }
}
