import Foundation
import NIOHTTP1
import SluiceCore
import SluiceModel
import Testing

@testable import SluiceHTTP

/// `HeaderScan` and the one-pass rewrites built on it against the way the proxy used to do the same with NIO's
/// `remove` and `replaceOrAdd` (kept here as the reference): same headers in the same order, same decisions, for
/// random header sets drawn from the names and tokens that matter, in mixed case.
@Suite struct HeaderScanEquivalenceTests {
    static let names = [
        "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate", "TE", "Trailer",
        "Upgrade", "Transfer-Encoding", "Content-Length", "Expect", "Authorization", "WWW-Authenticate", "X-Forwarded-For",
        "X-Forwarded-Proto", "X-Forwarded-Host", "Sec-WebSocket-Extensions", "Sec-WebSocket-Key", "Accept", "X-Custom", "Via",
    ]
    static let connectionTokens = ["close", "keep-alive", "Upgrade", "x-custom", "Via", "te", "transfer-encoding", "host", "", " "]
    static let values = ["a", "websocket", "h2c", "chunked", "5", "100-continue", "NTLM abc", "Negotiate", "Basic x", "10.0.0.1"]

    static func randomCase(_ text: String, _ generator: inout some RandomNumberGenerator) -> String {
        String(text.map { Bool.random(using: &generator) ? Character($0.uppercased()) : Character($0.lowercased()) })
    }

    static func randomHeaders(_ generator: inout some RandomNumberGenerator) -> HTTPHeaders {
        var headers: [(String, String)] = []
        for _ in 0..<Int.random(in: 0...9, using: &generator) {
            let name = randomCase(names.randomElement(using: &generator)!, &generator)
            let value: String
            if name.lowercased() == "connection" {
                value = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
                    randomCase(connectionTokens.randomElement(using: &generator)!, &generator)
                }.joined(separator: Bool.random(using: &generator) ? ", " : ",")
            } else {
                value = values.randomElement(using: &generator)!
            }
            headers.append((name, value))
        }
        return HTTPHeaders(headers)
    }

    static func pairs(_ headers: HTTPHeaders) -> [String] { headers.map { "\($0.name): \($0.value)" } }

    @Test func requestsAreRewrittenAsBefore() throws {
        var generator = SystemRandomNumberGenerator()
        let client = Endpoint(host: "10.0.0.9", port: 5555)
        let specs = [
            ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 8080), target: nil),
            ListenSpec(scheme: .reverseHTTP, listen: Endpoint(host: "127.0.0.1", port: 8000), target: Endpoint(host: "backend", port: 9000)),
        ]
        let tunnel = InterceptedTunnel(
            target: RequestTarget(scheme: "https", host: "site", port: 443, path: "/"), serverName: "site",
            endpoint: Endpoint(host: "site", port: 443)
        )
        for round in 0..<3000 {
            let headers = Self.randomHeaders(&generator)
            let version: HTTPVersion = Bool.random(using: &generator) ? .http1_1 : .http1_0
            let spec = specs[round % 2]
            let inTunnel = spec.scheme == .http && Bool.random(using: &generator)
            let uri = spec.scheme == .reverseHTTP || inTunnel ? "/p" : "http://origin:81/p"
            let head = HTTPRequestHead(version: version, method: .GET, uri: uri, headers: headers)
            let listed = headers["connection"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            if listed.contains("transfer-encoding") || listed.contains("content-length") {
                // Removing a framing header as hop-by-hop would smuggle the body: refused, unlike before.
                #expect(throws: RequestTargetError.self) { try ExchangePlan(head: head, spec: spec, client: client, tunnel: inTunnel ? tunnel : nil) }
                continue
            }
            let plan = try ExchangePlan(head: head, spec: spec, client: client, tunnel: inTunnel ? tunnel : nil)
            let reference = Reference.request(head, spec: spec, client: client, authority: plan.target.authority, inTunnel: inTunnel)
            #expect(Self.pairs(plan.upstreamHead.headers) == Self.pairs(reference.headers), "\(Self.pairs(headers)) \(spec.scheme)")
            #expect(plan.isWebSocket == reference.isWebSocket)
            #expect(plan.clientWantsClose == reference.wantsClose)
            #expect(plan.expectsContinue == reference.expectsContinue)
            #expect(plan.authorizationIsConnectionBound == Reference.connectionBound(plan.upstreamHead.headers["authorization"]))
        }
    }

    @Test func responsesAreRewrittenAsBefore() throws {
        var generator = SystemRandomNumberGenerator()
        let spec = ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 8080), target: nil)
        let statuses: [HTTPResponseStatus] = [.ok, .noContent, .notModified, .switchingProtocols, .notFound]
        for _ in 0..<3000 {
            let clientVersion: HTTPVersion = Bool.random(using: &generator) ? .http1_1 : .http1_0
            let method: HTTPMethod = Int.random(in: 0..<5, using: &generator) == 0 ? .HEAD : .GET
            let plan = try ExchangePlan(
                head: HTTPRequestHead(version: clientVersion, method: method, uri: "http://a/"), spec: spec,
                client: Endpoint(host: "10.0.0.9", port: 1)
            )
            let response = HTTPResponseHead(
                version: Bool.random(using: &generator) ? .http1_1 : .http1_0, status: statuses.randomElement(using: &generator)!,
                headers: Self.randomHeaders(&generator)
            )
            let closing = Bool.random(using: &generator)
            let (head, endsByClose) = plan.clientResponseHead(response, closing: closing)
            let (expected, expectedEndsByClose) = Reference.response(response, plan: plan, closing: closing)
            #expect(Self.pairs(head.headers) == Self.pairs(expected.headers), "\(Self.pairs(response.headers)) \(response.status)")
            #expect(head.version == expected.version)
            #expect(endsByClose == expectedEndsByClose)
            let scan = HeaderScan(response.headers)
            #expect(scan.wantsClose(version: response.version) == Reference.wantsClose(response.headers, version: response.version))
            #expect(scan.authenticateIsConnectionBound == Reference.connectionBound(response.headers["www-authenticate"]))
            #expect(scan.hasContentLength == response.headers.contains(name: "content-length"))
            #expect(scan.hasTransferEncoding == response.headers.contains(name: "transfer-encoding"))
        }
    }
}

/// The rewrites as the proxy made them before `HeaderScan`, one NIO call per step.
private enum Reference {
    static func strip(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        var listed: [String] = []
        var upgrade: [String] = []
        var present: [String] = []
        for (name, value) in headers {
            guard let hopByHop = HopByHop.names.first(where: { name.lowercased() == $0 }) else { continue }
            present.append(hopByHop)
            if hopByHop == "connection" {
                HopByHop.forEachToken(value) { token in
                    if !HopByHop.isHopByHop(token) { listed.append(String(token)) }
                    return true
                }
            }
            if keepUpgrade && hopByHop == "upgrade" { upgrade.append(value) }
        }
        for name in present + listed { headers.remove(name: name) }
        if !upgrade.isEmpty {
            for value in upgrade { headers.add(name: "Upgrade", value: value) }
            headers.add(name: "Connection", value: "Upgrade")
        }
    }

    static func lists(_ headers: HTTPHeaders, _ name: String, _ token: String) -> Bool {
        headers[canonicalForm: name].contains { $0.lowercased() == token }
    }

    static func wantsClose(_ headers: HTTPHeaders, version: HTTPVersion) -> Bool {
        if lists(headers, "connection", "close") { return true }
        return version == .http1_0 && !lists(headers, "connection", "keep-alive")
    }

    static func connectionBound(_ values: [String]) -> Bool {
        values.contains { value in
            let scheme = value.prefix { $0 != " " && $0 != "," }.lowercased()
            return scheme == "ntlm" || scheme == "negotiate"
        }
    }

    static func request(
        _ head: HTTPRequestHead, spec: ListenSpec, client: Endpoint, authority: String, inTunnel: Bool
    ) -> (headers: HTTPHeaders, isWebSocket: Bool, wantsClose: Bool, expectsContinue: Bool) {
        let isWebSocket = lists(head.headers, "upgrade", "websocket") && lists(head.headers, "connection", "upgrade")
        var headers = head.headers
        strip(&headers, keepUpgrade: isWebSocket)
        if isWebSocket { headers.remove(name: "sec-websocket-extensions") }
        if headers.contains(name: "transfer-encoding") {
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            headers.remove(name: "content-length")
        }
        if spec.scheme == .reverseHTTP {
            let originalHost = head.headers.first(name: "host")
            headers.replaceOrAdd(name: "Host", value: authority)
            let forwardedFor = headers.first(name: "x-forwarded-for").map { "\($0), \(client.host)" } ?? client.host
            headers.replaceOrAdd(name: "X-Forwarded-For", value: forwardedFor)
            headers.replaceOrAdd(name: "X-Forwarded-Proto", value: "http")
            if let originalHost { headers.replaceOrAdd(name: "X-Forwarded-Host", value: originalHost) }
        } else if !inTunnel || !headers.contains(name: "host") {
            headers.replaceOrAdd(name: "Host", value: authority)
        }
        return (headers, isWebSocket, wantsClose(head.headers, version: head.version), lists(head.headers, "expect", "100-continue"))
    }

    static func response(_ response: HTTPResponseHead, plan: ExchangePlan, closing: Bool) -> (HTTPResponseHead, Bool) {
        var headers = response.headers
        let isUpgrade = response.status == .switchingProtocols
        strip(&headers, keepUpgrade: isUpgrade)
        let version: HTTPVersion = plan.clientVersion.minor == 0 ? .http1_0 : .http1_1
        var endsByClose = false
        let hasBody = !plan.isHead && response.status.allowsBody
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
