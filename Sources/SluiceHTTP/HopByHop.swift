import NIOHTTP1
import SluiceModel

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), which a proxy must not forward.
enum HopByHop {
    static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "upgrade",
    ]

    /// Removes hop-by-hop headers and every header the `Connection` header names. `Transfer-Encoding` stays: NIO's
    /// encoder re-frames the body from it and `Content-Length`. A WebSocket upgrade keeps `Upgrade` and
    /// `Connection: Upgrade`, since the handshake has to reach the server.
    static func strip(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        let listed = headers[canonicalForm: "connection"].map { $0.lowercased() }
        let upgrade = headers["upgrade"]
        for name in names.union(listed) {
            headers.remove(name: name)
        }
        if keepUpgrade, !upgrade.isEmpty {
            for value in upgrade { headers.add(name: "Upgrade", value: value) }
            headers.add(name: "Connection", value: "Upgrade")
        }
    }

    /// Whether the sender of a message wants its connection closed after it (RFC 9112 §9.3).
    static func wantsClose(_ headers: HTTPHeaders, version: HTTPVersion) -> Bool {
        let tokens = headers[canonicalForm: "connection"].map { $0.lowercased() }
        if tokens.contains("close") { return true }
        if version.major == 1 && version.minor == 0 { return !tokens.contains("keep-alive") }
        return false
    }

    /// A WebSocket opening handshake (RFC 6455 §4.1).
    static func isWebSocketUpgrade(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
            && headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }
}

extension HTTPHeaders {
    /// The headers as the flow records them, in wire order.
    var fields: [HeaderField] {
        map { HeaderField(name: $0.name, value: $0.value) }
    }
}
