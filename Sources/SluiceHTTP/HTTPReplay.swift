import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SluiceCore
import SluiceModel
import SluiceTLS

/// A recorded HTTP request, ready to be sent again. The caller builds it from the store (SluiceHTTP does not read
/// stores); `bodyComplete` says whether the stored body is the body that was sent.
public struct ReplayRequest: Sendable, Equatable {
    public var originalFlowID: FlowID
    public var method: String
    /// Absolute, as recorded: `https://example.com:8443/path?q`.
    public var url: String
    /// As the server got them, in order.
    public var headers: [HeaderField]
    public var body: Data
    /// False when recording limits cut the body: such a request is refused rather than sent with a different body.
    public var bodyComplete: Bool

    public init(
        originalFlowID: FlowID, method: String, url: String, headers: [HeaderField], body: Data, bodyComplete: Bool
    ) {
        self.originalFlowID = originalFlowID
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.bodyComplete = bodyComplete
    }

    /// A request as the operator's edit of a held request left it (start line, headers, blank line, body); a path
    /// without a host is resolved against the original URL. Nil when the text is not a request.
    public init?(editedText: Data, originalFlowID: FlowID, originalURL: String) {
        guard let edited = try? HTTPMessageText.parseRequest(editedText) else { return nil }
        var url = edited.target
        if !url.contains("://"), let base = try? RequestTarget.absolute(originalURL.replacingOccurrences(of: "https://", with: "http://")) {
            let scheme = originalURL.lowercased().hasPrefix("https://") ? "https" : "http"
            url = "\(scheme)://\(base.authority)\(url.hasPrefix("/") ? url : "/" + url)"
        }
        self.init(
            originalFlowID: originalFlowID, method: edited.method, url: url, headers: edited.headers, body: edited.body,
            bodyComplete: true
        )
    }

    /// Joins the recorded pieces of a request body (a flow's `up` body messages in order).
    ///
    /// The body is complete only when every piece was stored whole, the pieces add up to what travelled
    /// (`bytesSent`, known once the flow has closed; a piece over the flow's budget leaves no message at all) and
    /// to the request's Content-Length when it had one.
    public init(
        originalFlowID: FlowID, method: String, url: String, headers: [HeaderField],
        bodyPieces: [(payload: Data, size: Int)], bytesSent: Int64?
    ) {
        var body = Data()
        var travelled: Int64 = 0
        var whole = true
        for piece in bodyPieces {
            body.append(piece.payload)
            travelled += Int64(piece.size)
            if piece.payload.count != piece.size { whole = false }
        }
        if let bytesSent, bytesSent != travelled { whole = false }
        if let declared = headers.first(named: "content-length"),
            !headers.contains(where: { $0.name.lowercased() == "transfer-encoding" }),
            Int64(declared.trimmingCharacters(in: .whitespaces)) != Int64(body.count)
        {
            whole = false
        }
        self.init(
            originalFlowID: originalFlowID, method: method, url: url, headers: headers, body: body, bodyComplete: whole
        )
    }
}

/// `--target`: where replays go instead of the recorded server. Path and query stay the recorded ones.
public struct URLOverride: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int

    public init(scheme: String, host: String, port: Int) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// Parses `http://HOST:PORT` or `https://HOST:PORT` (the port defaults to the scheme's; a lone `/` is allowed).
    public init(parsing text: String) throws(RequestTargetError) {
        let expected = "expected http://HOST:PORT or https://HOST:PORT"
        guard let schemeEnd = text.range(of: "://") else {
            throw RequestTargetError("'\(text.prefix(100))': \(expected)")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw RequestTargetError(
                "'\(text.prefix(100))': scheme '\(scheme.prefix(20))' cannot be replayed to; \(expected)"
            )
        }
        var authority = text[schemeEnd.upperBound...]
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.contains(where: { "/?#@".contains($0) }) else {
            throw RequestTargetError(
                "'\(text.prefix(100))' has a path, query or user; \(expected) (the recorded path is kept)"
            )
        }
        (host, port) = try RequestTarget.hostAndPort(authority, defaultPort: RequestTarget.defaultPort(scheme))
        self.scheme = scheme
    }

    public var description: String {
        RequestTarget(scheme: scheme, host: host, port: port, path: "").url
    }

    func apply(to target: RequestTarget) -> RequestTarget {
        RequestTarget(scheme: scheme, host: host, port: port, path: target.path)
    }
}

/// How one replay went.
public struct ReplayResult: Sendable, Equatable {
    /// The replay's own flow; nil when it was refused before anything was sent (a cut body, a damaged record).
    public var flowID: FlowID?
    public var originalFlowID: FlowID
    public var method: String
    /// Where the request went: the recorded URL, or the override applied to it.
    public var url: String
    /// The final response's status, once its head arrived.
    public var status: Int?
    /// Response body bytes received.
    public var bytes: Int64
    /// From the start of the replay to its end, connect included.
    public var milliseconds: Double
    public var error: String?

    public init(
        flowID: FlowID?, originalFlowID: FlowID, method: String, url: String, status: Int?, bytes: Int64,
        milliseconds: Double, error: String?
    ) {
        self.flowID = flowID
        self.originalFlowID = originalFlowID
        self.method = method
        self.url = url
        self.status = status
        self.bytes = bytes
        self.milliseconds = milliseconds
        self.error = error
    }

    /// The server answered, and the whole answer arrived.
    public var gotResponse: Bool { status != nil && error == nil }
}

/// Sends recorded requests again through the engine's event loops, each as a new flow recorded like a proxied one
/// (with `replayOf` set), so the store, the TUI and `sluice flows` see replays the same way.
///
/// One connection per replay, closed afterwards: a replay is a deliberate single request, and a fresh connection
/// keeps its timings (connect, TLS) comparable with the original's.
public final class HTTPReplayer: Sendable {
    struct Settings: Sendable {
        var connectTimeout: TimeAmount
        var responseTimeout: TimeAmount
        var limits: RecordingLimits
    }

    private let engine: Engine
    private let tls: TLSInterception?
    private let settings: Settings

    /// - Parameters:
    ///   - configuration: the connect timeout and the recording limits; the engine keeps its own private.
    ///   - tls: the context for `https` servers; without it an `https` replay is refused.
    ///   - responseTimeout: seconds the server may stay silent (TLS handshake, response head, between body reads)
    ///     before the replay fails, so that a server that never answers cannot hang a replay forever.
    public init(engine: Engine, configuration: Configuration, tls: TLSInterception?, responseTimeout: Double = 60) {
        self.engine = engine
        self.tls = tls
        var limits = RecordingLimits(configuration)
        // As the proxy records an exchange: each body up to max_body_bytes, whatever the flow limit.
        limits.maxDirectionBytes = Int64(configuration.maxBodyBytes)
        limits.maxFlowBytes = .max
        self.settings = Settings(
            connectTimeout: .nanoseconds(Int64(configuration.connectTimeout * 1_000_000_000)),
            responseTimeout: .nanoseconds(Int64(responseTimeout * 1_000_000_000)), limits: limits
        )
    }

    /// Replays `request`, to `target` instead of the recorded server when given. Never fails: what went wrong is in
    /// the result (and in the flow's error). Call before the engine shuts down.
    public func replay(_ request: ReplayRequest, target: URLOverride? = nil) -> EventLoopFuture<ReplayResult> {
        let eventLoop = engine.eventLoopGroup.next()
        let promise = eventLoop.makePromise(of: ReplayResult.self)
        let engine = self.engine
        let tls = self.tls
        let settings = self.settings
        eventLoop.execute {
            ReplayCall(
                request: request, engine: engine, tls: tls, settings: settings, eventLoop: eventLoop, promise: promise
            )
            .start(override: target)
        }
        return promise.futureResult
    }

    /// The same, for callers that do not use NIO's futures (the CLI): `done` runs on an event loop.
    public func replay(
        _ request: ReplayRequest, target: URLOverride? = nil, then done: @escaping @Sendable (ReplayResult) -> Void
    ) {
        replay(request, target: target).whenSuccess(done)
    }
}

/// One replay on one event loop: opens its flow, connects, sends, records the response, and ends exactly once.
final class ReplayCall {
    private let request: ReplayRequest
    private let engine: Engine
    private let tls: TLSInterception?
    private let settings: HTTPReplayer.Settings
    private let eventLoop: EventLoop
    private let promise: EventLoopPromise<ReplayResult>
    private let started = NIODeadline.now()
    private var method: String
    private var url: String
    private var recorder: FlowRecorder?
    private var channel: Channel?
    private var timings = HTTPTimings()
    private var sentAt: NIODeadline?
    private var status: Int?
    private var bytes: Int64 = 0
    private var finished = false
    /// The last time the server did something; the silence timer compares against it instead of being re-armed on
    /// every read.
    private var lastActivity = NIODeadline.now()
    private var silenceTimer: Scheduled<Void>?

    init(
        request: ReplayRequest, engine: Engine, tls: TLSInterception?, settings: HTTPReplayer.Settings,
        eventLoop: EventLoop, promise: EventLoopPromise<ReplayResult>
    ) {
        self.request = request
        self.engine = engine
        self.tls = tls
        self.settings = settings
        self.eventLoop = eventLoop
        self.promise = promise
        self.method = request.method
        self.url = request.url
    }

    func start(override: URLOverride?) {
        guard request.bodyComplete else {
            refuse(
                "flow \(request.originalFlowID)'s request body was not recorded whole (recording limits), "
                    + "so it cannot be sent as it was; raise max_body_bytes and record it again"
            )
            return
        }
        let target: RequestTarget
        let head: HTTPRequestHead
        do {
            let recorded = try RequestTarget.recorded(request.url)
            target = override?.apply(to: recorded) ?? recorded
            head = try ReplayHead.make(request, target: target, hostFromTarget: override != nil)
        } catch {
            refuse("flow \(request.originalFlowID) cannot be replayed: \(error)")
            return
        }
        url = target.url
        if target.usesTLS && tls == nil {
            refuse("TLS to servers is not set up for this replay")
            return
        }
        guard
            let recorder = engine.openDetachedFlow(
                kind: .http, listener: "replay", client: Endpoint(host: "replay", port: 0), server: target.endpoint,
                on: eventLoop, limits: settings.limits, replayOf: request.originalFlowID
            )
        else {
            refuse("Sluice is shutting down")
            return
        }
        self.recorder = recorder
        recorder.requestStarted(
            HTTPRequestStarted(
                flowID: recorder.flowID, time: Date(), method: head.method.rawValue, url: target.url,
                version: "HTTP/1.1", headers: head.headers.fields, replayOf: request.originalFlowID
            )
        )
        // Recorded before connecting, as the proxy records a request as it reads it: a replay that cannot reach its
        // server still shows what it would have sent.
        let pieces = bodyPieces()
        for piece in pieces {
            recorder.bodyPiece(piece, direction: .up)
        }
        recorder.bodyEnded(direction: .up)
        connect(to: target, head: head, body: pieces)
    }

    /// The body in pieces no larger than a stored message, so that the replay's own record is not cut.
    private func bodyPieces() -> [ByteBuffer] {
        let all = ByteBuffer(bytes: request.body)
        let size = settings.limits.maxPayloadBytes > 0 ? min(64 * 1024, settings.limits.maxPayloadBytes) : 64 * 1024
        var pieces: [ByteBuffer] = []
        var offset = 0
        while offset < all.readableBytes {
            let length = min(size, all.readableBytes - offset)
            if let slice = all.getSlice(at: offset, length: length) { pieces.append(slice) }
            offset += length
        }
        return pieces
    }

    private func connect(to target: RequestTarget, head: HTTPRequestHead, body: [ByteBuffer]) {
        let connectStarted = NIODeadline.now()
        ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Nothing is read until the pipeline for this stage is in place.
            .channelOption(.autoRead, value: false)
            .connect(host: target.host, port: target.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.timings.connect = Self.milliseconds(since: connectStarted)
                    self.connected(channel, target: target, head: head, body: body)
                case .failure(let error):
                    self.fail(.connect, "cannot connect to \(target.endpoint): \(describe(error))")
                }
            }
    }

    private func connected(_ channel: Channel, target: RequestTarget, head: HTTPRequestHead, body: [ByteBuffer]) {
        self.channel = channel
        guard !finished else {
            channel.close(promise: nil)
            return
        }
        if let killed = recorder?.failureMessage {
            // Killed while connecting: nothing is sent.
            end(error: killed)
            return
        }
        watchForSilence()
        channel.closeFuture.assumeIsolated().whenComplete { _ in self.closedByServer() }
        // Tracked by the engine, so that `kill` on this flow (x in the TUI) and shutdown close it.
        if let recorder { engine.adopt(channel, forFlow: recorder.flowID) }
        guard target.usesTLS, let tls else {
            installHTTP(on: channel, head: head, body: body)
            return
        }
        let handshakeStarted = NIODeadline.now()
        do {
            let operations = channel.pipeline.syncOperations
            let tlsHandler = try UpstreamTLS.clientHandler(context: tls.upstreamContext, serverName: target.host)
            try operations.addHandler(tlsHandler)
            try operations.addHandler(
                HandshakeWaiter { result in
                    switch result {
                    case .success:
                        self.timings.tls = Self.milliseconds(since: handshakeStarted)
                        self.installHTTP(on: channel, head: head, body: body)
                    case .failure(let error):
                        let reason = UpstreamTLSError(serverName: target.host, underlying: error)
                        self.fail(.connect, "cannot connect to \(target.endpoint): \(reason)")
                    }
                }
            )
            try channel.syncOptions?.setOption(.autoRead, value: true)
        } catch {
            fail(.connect, "cannot set up TLS to \(target.endpoint): \(describe(error))")
        }
    }

    /// The HTTP/1.1 client codec as the proxy's upstreams have it: framing headers are ours (`ReplayHead`), and the
    /// decoder sees each request go out, so a HEAD's response is read without a body.
    private func installHTTP(on channel: Channel, head: HTTPRequestHead, body: [ByteBuffer]) {
        guard !finished else { return }
        do {
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(HTTP1ClientCodec())
            try operations.addHandler(ReplayResponseHandler(call: self))
            try channel.syncOptions?.setOption(.autoRead, value: true)
        } catch {
            fail(.proxy, "cannot set up the HTTP client: \(describe(error))")
            return
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        sentAt = .now()
        for piece in body {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(piece)), promise: nil)
        }
        let sent = eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: sent)
        sent.futureResult.assumeIsolated().whenFailure { error in
            self.fail(.server, "cannot send the request: \(describe(error))")
        }
    }

    // MARK: The response, from ReplayResponseHandler

    func responsePart(_ part: HTTPClientResponsePart) {
        guard !finished, let recorder else { return }
        lastActivity = .now()
        switch part {
        case .head(let head):
            if let sentAt { timings.firstByte = Self.milliseconds(since: sentAt) }
            status = Int(head.status.code)
            recorder.responseStarted(
                HTTPResponseStarted(
                    flowID: recorder.flowID, time: Date(), status: Int(head.status.code),
                    reason: head.status.reasonPhrase, version: head.version.text, headers: head.headers.fields,
                    timings: timings
                )
            )
        case .body(let buffer):
            bytes += Int64(buffer.readableBytes)
            recorder.bodyPiece(buffer, direction: .down)
        case .end:
            recorder.bodyEnded(direction: .down)
            end(error: nil)
        }
    }

    func responseFailed(_ error: Error) {
        guard !finished else { return }
        if let parserError = error as? HTTP1ParseError {
            fail(.server, "invalid response from the server: \(parserError)")
        } else {
            fail(.server, describe(error))
        }
    }

    private func closedByServer() {
        guard !finished else { return }
        let message =
            status == nil
            ? "server closed the connection before responding"
            : "server closed the connection before the response was complete"
        fail(.server, message)
    }

    /// Fails the replay once the server has been silent for `responseTimeout`; checks the last activity when it
    /// fires rather than being re-armed on every read.
    private func watchForSilence() {
        lastActivity = .now()
        let timeout = settings.responseTimeout
        func arm(at deadline: NIODeadline) {
            silenceTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                guard !self.finished else { return }
                let quietUntil = self.lastActivity + timeout
                if quietUntil > .now() {
                    arm(at: quietUntil)
                } else {
                    let seconds = Double(timeout.nanoseconds) / 1_000_000_000
                    self.fail(.server, "no answer from the server for \(Formatting.duration(seconds: seconds))")
                }
            }
        }
        arm(at: lastActivity + timeout)
    }

    // MARK: Endings

    private func fail(_ phase: FlowErrorPhase, _ message: String) {
        guard !finished else { return }
        recorder?.failed(phase, message)
        // The flow's first error is the replay's too: a kill closes the connection, and that close is not news.
        end(error: recorder?.failureMessage ?? message)
    }

    private func end(error: String?) {
        guard !finished else { return }
        finished = true
        silenceTimer?.cancel()
        silenceTimer = nil
        channel?.close(promise: nil)
        recorder?.finish()
        promise.succeed(result(error: error))
    }

    /// Nothing was sent and no flow began.
    private func refuse(_ message: String) {
        finished = true
        promise.succeed(result(error: message))
    }

    private func result(error: String?) -> ReplayResult {
        ReplayResult(
            flowID: recorder?.flowID, originalFlowID: request.originalFlowID, method: method, url: url, status: status,
            bytes: bytes, milliseconds: Self.milliseconds(since: started), error: error
        )
    }

    static func milliseconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1_000_000
    }
}

@available(*, unavailable)
extension ReplayCall: Sendable {}

/// The end of a replay's pipeline: hands the response to its call.
final class ReplayResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let call: ReplayCall

    init(call: ReplayCall) {
        self.call = call
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        call.responsePart(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        call.responseFailed(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ReplayResponseHandler: Sendable {}

/// The head a replay sends, built from the recorded one without I/O.
enum ReplayHead {
    /// The recorded method, path and headers, with what belonged to the original connection taken out: hop-by-hop
    /// headers, `Expect` (the body follows at once) and the old framing, which becomes a Content-Length for the body
    /// as stored; `Connection: close`, since each replay has its own connection.
    ///
    /// - Parameter hostFromTarget: true when the replay goes elsewhere (`--target`): Host names the new server.
    ///   Otherwise the recorded Host stays, as the server got it (inside a TLS tunnel the client chose it).
    static func make(_ request: ReplayRequest, target: RequestTarget, hostFromTarget: Bool) throws(RequestTargetError)
        -> HTTPRequestHead
    {
        // A store is a file anyone with access can edit: nothing from it may smuggle a line break onto the wire.
        guard !request.method.isEmpty, request.method.utf8.allSatisfy(isTokenByte) else {
            throw RequestTargetError("the recorded method '\(request.method.prefix(20))' is not a valid HTTP method")
        }
        guard target.path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw RequestTargetError("the recorded path holds spaces or control characters")
        }
        var recorded = HTTPHeaders()
        for field in request.headers {
            guard !field.name.isEmpty, field.name.utf8.allSatisfy(isTokenByte) else {
                throw RequestTargetError("the recorded header name '\(field.name.prefix(40))' is not valid")
            }
            guard !field.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                throw RequestTargetError("the recorded header '\(field.name.prefix(40))' holds a line break")
            }
            recorded.add(name: field.name, value: field.value)
        }
        let hadFraming = recorded.contains(name: "content-length") || recorded.contains(name: "transfer-encoding")
        HopByHop.strip(&recorded, keepUpgrade: false)
        var headers = HTTPHeaders()
        var hostWritten = false
        for (name, value) in recorded {
            switch name.lowercased() {
            case "content-length", "transfer-encoding", "expect":
                continue
            case "host":
                // In place, so the order the server saw is kept; only the first Host counts (RFC 9112 §3.2).
                guard !hostWritten else { continue }
                headers.add(name: name, value: hostFromTarget ? target.authority : value)
                hostWritten = true
            default:
                headers.add(name: name, value: value)
            }
        }
        if !hostWritten { headers.add(name: "Host", value: target.authority) }
        if !request.body.isEmpty || hadFraming {
            headers.add(name: "Content-Length", value: String(request.body.count))
        }
        headers.add(name: "Connection", value: "close")
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: target.path, headers: headers
        )
    }

    /// RFC 9110 §5.6.2 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension RequestTarget {
    /// A recorded flow's absolute URL: `http` or `https` (a proxy only parses `http`, since `https` comes through
    /// CONNECT, but the flows recorded inside tunnels carry `https` URLs).
    static func recorded(_ url: String) throws(RequestTargetError) -> RequestTarget {
        guard let schemeEnd = url.range(of: "://") else {
            throw RequestTargetError("'\(url.prefix(100))' is not an absolute URL")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw RequestTargetError("scheme '\(scheme.prefix(20))' cannot be replayed (only http and https)")
        }
        let rest = url[schemeEnd.upperBound...]
        let pathStart = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<pathStart]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var path = String(rest[pathStart...])
        if let fragment = path.firstIndex(of: "#") { path = String(path[..<fragment]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        let (host, port) = try hostAndPort(authority, defaultPort: defaultPort(scheme))
        return RequestTarget(scheme: scheme, host: host, port: port, path: path)
    }
}
