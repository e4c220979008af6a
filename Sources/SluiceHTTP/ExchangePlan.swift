import Foundation
import NIOHTTP1
import SluiceCore
import SluiceModel

/// What to do with one request head, decided without I/O: where it goes, the head the server gets, and how the
/// connection behaves after it.
struct ExchangePlan {
    var target: RequestTarget
    /// The head as the server gets it: origin-form target, hop-by-hop headers gone, framing normalised.
    var upstreamHead: HTTPRequestHead
    var clientVersion: HTTPVersion
    var isConnect: Bool
    var isWebSocket: Bool
    var isHead: Bool
    var clientWantsClose: Bool
    var expectsContinue: Bool
    /// The name to send as SNI and verify the server's certificate against, when the server speaks TLS.
    var tlsServerName: String?
    /// Where the request goes: the URL's host, or inside a CONNECT tunnel the address the client asked for (which
    /// the URL's host, taken from SNI, may differ from).
    var server: Endpoint

    /// - Parameter tunnel: inside an intercepted CONNECT tunnel, the server the tunnel goes to; requests there are
    ///   origin-form.
    init(head: HTTPRequestHead, spec: ListenSpec, client: Endpoint, tunnel: InterceptedTunnel? = nil) throws(RequestTargetError) {
        clientVersion = head.version
        isConnect = head.method == .CONNECT
        isHead = head.method == .HEAD
        guard head.version.major == 1 else { throw RequestTargetError("HTTP/\(head.version.major) is not supported") }
        switch spec.scheme {
        case .reverseHTTP:
            guard !isConnect else { throw RequestTargetError("CONNECT is not accepted by a reverse proxy") }
            guard let backend = spec.target else { throw RequestTargetError("the reverse proxy has no backend") }
            guard head.uri.hasPrefix("/") || head.uri == "*" else {
                throw RequestTargetError("'\(head.uri.prefix(100))' is not an origin-form target (a path)")
            }
            target = RequestTarget(
                scheme: spec.targetUsesTLS ? "https" : "http", host: backend.host, port: backend.port, path: head.uri
            )
        case .http, .tcp:
            if let tunnel {
                guard !isConnect else { throw RequestTargetError("CONNECT inside a tunnel is not supported") }
                guard head.uri.hasPrefix("/") || head.uri == "*" else {
                    throw RequestTargetError("'\(head.uri.prefix(100))' is not an origin-form target (a path) inside a TLS tunnel")
                }
                target = tunnel.target
                target.path = head.uri
            } else {
                target = isConnect ? try RequestTarget.authorityForm(head.uri) : try RequestTarget.absolute(head.uri)
            }
        }
        if target.usesTLS { tlsServerName = tunnel?.serverName ?? target.host }
        server = tunnel?.endpoint ?? target.endpoint
        isWebSocket = !isConnect && HopByHop.isWebSocketUpgrade(head.headers)
        clientWantsClose = HopByHop.wantsClose(head.headers, version: head.version)
        expectsContinue = HopByHop.contains(head.headers, name: "expect", token: "100-continue")

        var headers = head.headers
        HopByHop.strip(&headers, keepUpgrade: isWebSocket)
        if isWebSocket {
            // Sluice reads every frame; a compressed stream would hide them (PROTOCOLS.md §5).
            headers.remove(name: "sec-websocket-extensions")
        }
        if headers.contains(name: "transfer-encoding") {
            // The body arrives de-chunked; it leaves chunked again. Chunked beats Content-Length (RFC 9112 §6.3).
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            headers.remove(name: "content-length")
        }
        switch spec.scheme {
        case .reverseHTTP:
            let originalHost = head.headers.first(name: "host")
            headers.replaceOrAdd(name: "Host", value: target.authority)
            let forwardedFor = headers.first(name: "x-forwarded-for").map { "\($0), \(client.host)" } ?? client.host
            headers.replaceOrAdd(name: "X-Forwarded-For", value: forwardedFor)
            headers.replaceOrAdd(name: "X-Forwarded-Proto", value: "http")
            if let originalHost { headers.replaceOrAdd(name: "X-Forwarded-Host", value: originalHost) }
        case .http, .tcp:
            if tunnel == nil || !headers.contains(name: "host") {
                // RFC 9112 §3.2.2: the absolute URI's authority beats a conflicting Host header. Inside a tunnel
                // the request is origin-form and its Host header is the client's to choose.
                headers.replaceOrAdd(name: "Host", value: target.authority)
            }
        }
        upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: target.path, headers: headers)
    }

    func requestEvent(flowID: FlowID) -> HTTPRequestStarted {
        HTTPRequestStarted(
            flowID: flowID, time: Date(), method: upstreamHead.method.rawValue, url: target.url,
            version: clientVersion.text, headers: upstreamHead.headers.redacted
        )
    }

    /// The head the client gets for the server's response: hop-by-hop headers gone and the framing set for the
    /// client's connection, which may differ from the server's (HTTP/1.0 clients, re-chunked bodies).
    /// - Returns: the head, and whether the body can only end by closing the client connection.
    func clientResponseHead(_ response: HTTPResponseHead, closing: Bool) -> (HTTPResponseHead, endsByClose: Bool) {
        var headers = response.headers
        let isUpgrade = response.status == .switchingProtocols
        HopByHop.strip(&headers, keepUpgrade: isUpgrade)
        let version: HTTPVersion = clientVersion.minor == 0 ? .http1_0 : .http1_1
        var endsByClose = false
        let hasBody = !isHead && response.status.allowsBody
        if headers.contains(name: "transfer-encoding") || (hasBody && !headers.contains(name: "content-length")) {
            headers.remove(name: "transfer-encoding")
            if hasBody {
                if version == .http1_1 {
                    headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
                    headers.remove(name: "content-length")
                } else {
                    endsByClose = true
                }
            }
        }
        if (closing || endsByClose) && !isUpgrade {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if version == .http1_0 && !isUpgrade {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        return (HTTPResponseHead(version: version, status: response.status, headers: headers), endsByClose)
    }
}

/// Where an intercepted CONNECT tunnel goes: the URL base for its requests and the server name for TLS.
struct InterceptedTunnel {
    var target: RequestTarget
    var serverName: String
    /// The CONNECT request's host and port.
    var endpoint: Endpoint
}

extension HTTPResponseStatus {
    /// RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content.
    var allowsBody: Bool {
        !(code < 200 || code == 204 || code == 304)
    }
}
