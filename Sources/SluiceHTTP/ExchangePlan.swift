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
    /// The request's `Content-Length`, a hint of its body's size for the recorder.
    var requestBodyBytes: Int?
    /// The request authenticates with NTLM or Negotiate, which bind the server connection to this client.
    var authorizationIsConnectionBound: Bool
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
        default:  // the explicit proxy (the module serves no other scheme)
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
        let scan = HeaderScan(head.headers)
        if let framing = scan.connectionListsFraming {
            // The body was framed by that header: removed as hop-by-hop, the server would read the body as
            // another request, one Sluice never saw (request smuggling).
            throw RequestTargetError(
                "the Connection header names \(framing.lowercased()), which frames the body: refused (RFC 9110 §7.6.1)"
            )
        }
        isWebSocket = !isConnect && scan.isWebSocketUpgrade
        clientWantsClose = scan.wantsClose(version: head.version)
        expectsContinue = scan.expectsContinue
        requestBodyBytes = scan.hasTransferEncoding ? nil : scan.contentLength
        authorizationIsConnectionBound = scan.authorizationIsConnectionBound && !scan.strips("authorization")
        upstreamHead = HTTPRequestHead(
            version: .http1_1, method: head.method, uri: target.path,
            headers: Self.upstreamHeaders(
                head.headers, scan: scan, isWebSocket: isWebSocket, scheme: spec.scheme, authority: target.authority,
                client: client, inTunnel: tunnel != nil
            )
        )
    }

    /// The request's headers as the server gets them, made in one pass over the client's: hop-by-hop headers and
    /// those `Connection` lists go (a WebSocket handshake keeps its `Upgrade`, not its compression offer), a
    /// chunked body stays chunked without a `Content-Length`, and the headers the proxy sets replace the client's
    /// at the end.
    private static func upstreamHeaders(
        _ headers: HTTPHeaders, scan: HeaderScan, isWebSocket: Bool, scheme: ListenSpec.Scheme, authority: String,
        client: Endpoint, inTunnel: Bool
    ) -> HTTPHeaders {
        // The body arrives de-chunked; it leaves chunked again. Chunked beats Content-Length (RFC 9112 §6.3).
        let chunked = scan.hasTransferEncoding && !scan.strips("transfer-encoding")
        let reverse = scheme == .reverseHTTP
        // RFC 9112 §3.2.2: the absolute URI's authority beats a conflicting Host header. Inside a tunnel the
        // request is origin-form and its Host header is the client's to choose.
        let setsHost = reverse || !inTunnel || scan.host == nil || scan.strips("host")
        var forwardedFor: String?
        var kept = scan.kept(headers, keepUpgrade: isWebSocket) { name, value in
            switch name.utf8.count {
            case 4: return setsHost && name.equalsIgnoringASCIICase("host")
            case 14: return chunked && name.equalsIgnoringASCIICase("content-length")
            case 15:
                guard reverse && name.equalsIgnoringASCIICase("x-forwarded-for") else { return false }
                if forwardedFor == nil { forwardedFor = value }
                return true
            case 16: return reverse && scan.host != nil && name.equalsIgnoringASCIICase("x-forwarded-host")
            case 17:
                return (chunked && name.equalsIgnoringASCIICase("transfer-encoding"))
                    || (reverse && name.equalsIgnoringASCIICase("x-forwarded-proto"))
            // Sluice reads every frame; a compressed stream would hide them (PROTOCOLS.md §5).
            case 24: return isWebSocket && name.equalsIgnoringASCIICase("sec-websocket-extensions")
            default: return false
            }
        }
        if chunked { kept.append(("Transfer-Encoding", "chunked")) }
        if setsHost { kept.append(("Host", authority)) }
        if reverse {
            kept.append(("X-Forwarded-For", forwardedFor.map { "\($0), \(client.host)" } ?? client.host))
            kept.append(("X-Forwarded-Proto", "http"))
            if let host = scan.host { kept.append(("X-Forwarded-Host", host)) }
        }
        return HTTPHeaders(kept)
    }

    func requestEvent(flowID: FlowID) -> HTTPRequestStarted {
        HTTPRequestStarted(
            flowID: flowID, time: Date(), method: upstreamHead.method.rawValue, url: target.url,
            version: clientVersion.text, headers: upstreamHead.headers.redacted
        )
    }

    /// The head the client gets for the server's response: hop-by-hop headers gone and the framing set for the
    /// client's connection, which may differ from the server's (HTTP/1.0 clients, re-chunked bodies).
    /// - Parameter scan: the response's headers scanned, when the caller has done so already.
    /// - Returns: the head, and whether the body can only end by closing the client connection.
    func clientResponseHead(
        _ response: HTTPResponseHead, closing: Bool, scan: HeaderScan? = nil
    ) -> (HTTPResponseHead, endsByClose: Bool) {
        let scan = scan ?? HeaderScan(response.headers)
        let isUpgrade = response.status == .switchingProtocols
        let version: HTTPVersion = clientVersion.minor == 0 ? .http1_0 : .http1_1
        let hasBody = !isHead && response.status.allowsBody
        let hasTransferEncoding = scan.hasTransferEncoding && !scan.strips("transfer-encoding")
        let hasContentLength = scan.hasContentLength && !scan.strips("content-length")
        var endsByClose = false
        // The server's framing is replaced when it chunked the body or gave no length for one.
        let reframes = hasTransferEncoding || (hasBody && !hasContentLength)
        let chunks = reframes && hasBody && version == .http1_1
        if reframes && hasBody && !chunks { endsByClose = true }
        var connection: String?
        if (closing || endsByClose) && !isUpgrade {
            connection = "close"
        } else if version == .http1_0 && !isUpgrade {
            connection = "keep-alive"
        }
        guard scan.hasHopByHop || reframes || connection != nil else {
            return (HTTPResponseHead(version: version, status: response.status, headers: response.headers), false)
        }
        var kept = scan.kept(response.headers, keepUpgrade: isUpgrade) { name, _ in
            switch name.utf8.count {
            case 14: return chunks && name.equalsIgnoringASCIICase("content-length")
            case 17: return reframes && name.equalsIgnoringASCIICase("transfer-encoding")
            default: return false
            }
        }
        if chunks { kept.append(("Transfer-Encoding", "chunked")) }
        if let connection { kept.append(("Connection", connection)) }
        return (HTTPResponseHead(version: version, status: response.status, headers: HTTPHeaders(kept)), endsByClose)
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
