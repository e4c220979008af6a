import SluiceModel

/// Where a request goes, read from its request line (RFC 9112 §3.2): the absolute form an explicit proxy gets
/// (`GET http://host:8080/x?q HTTP/1.1`), the authority form of CONNECT (`host:443`), or the origin form a reverse
/// proxy gets (`/x?q`).
public struct RequestTarget: Equatable, Sendable {
    public var scheme: String
    public var host: String
    public var port: Int
    /// Path and query as sent to the server: `/x?q`, never empty.
    public var path: String

    public init(scheme: String, host: String, port: Int, path: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
    }

    public var endpoint: Endpoint { Endpoint(host: host, port: port) }

    public var usesTLS: Bool { scheme == "https" || scheme == "wss" }

    /// `host` or `host:port` when the port is not the scheme's default, as a Host header carries it.
    public var authority: String {
        let name = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        return port == Self.defaultPort(scheme) ? name : "\(name):\(port)"
    }

    /// The absolute URL the flow records.
    public var url: String { "\(scheme)://\(authority)\(path)" }

    static func defaultPort(_ scheme: String) -> Int {
        scheme == "https" || scheme == "wss" ? 443 : 80
    }

    /// Parses an absolute-form URI. Only `http` is proxied this way; `https` URLs reach a proxy through CONNECT.
    public static func absolute(_ uri: String) throws(RequestTargetError) -> RequestTarget {
        guard let schemeEnd = uri.range(of: "://") else {
            throw RequestTargetError("'\(uri.prefix(100))' is not an absolute URL; configure this address as an HTTP proxy")
        }
        let scheme = uri[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" else {
            throw RequestTargetError("scheme '\(scheme.prefix(20))' cannot be proxied as a plain request (https goes through CONNECT)")
        }
        let rest = uri[schemeEnd.upperBound...]
        let pathStart = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<pathStart]
        if let at = authority.lastIndex(of: "@") {
            authority = authority[authority.index(after: at)...]  // userinfo is never forwarded (RFC 9110 §4.2.4)
        }
        var path = String(rest[pathStart...])
        if let fragment = path.firstIndex(of: "#") { path = String(path[..<fragment]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        let (host, port) = try hostAndPort(authority, defaultPort: defaultPort(scheme))
        return RequestTarget(scheme: scheme, host: host, port: port, path: path)
    }

    /// Parses CONNECT's authority form, `host:port`, where the port is required.
    public static func authorityForm(_ text: String) throws(RequestTargetError) -> RequestTarget {
        let (host, port) = try hostAndPort(Substring(text), defaultPort: nil)
        return RequestTarget(scheme: "https", host: host, port: port, path: "/")
    }

    static func hostAndPort(_ text: Substring, defaultPort: Int?) throws(RequestTargetError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw RequestTargetError("unclosed '[' in '\(text.prefix(100))'") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw RequestTargetError("unexpected '\(after.prefix(20))' after ']'")
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else { throw RequestTargetError("no host in '\(text.prefix(100))'") }
        guard host.utf8.allSatisfy(isHostByte) else { throw RequestTargetError("'\(host.prefix(100))' is not a host name") }
        let port: Int
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value), portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw RequestTargetError("'\(portText.prefix(20))' is not a port")
            }
            port = value
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw RequestTargetError("'\(text.prefix(100))' needs a port")
        }
        return (String(host).lowercased(), port)
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"):
            return true
        default:
            return false
        }
    }
}

public struct RequestTargetError: Error, Equatable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
