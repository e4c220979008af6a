import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS
import SluiceCore
import SluiceModel
import SluiceTLS

/// The client-facing side of an HTTP proxy connection: reads requests, opens one flow per exchange, sends each
/// request to its server over an `Upstream` (reused while both sides keep the connection alive) and relays the
/// response back.
///
/// One exchange at a time: requests a client pipelines behind the current one wait in `queued` and the client is
/// not read while a response is outstanding. Bodies stream both ways with backpressure: the client is read only
/// while the upstream is writable, and the upstream only while the client is. CONNECT and an accepted WebSocket
/// upgrade turn the connection into a spliced byte relay.
final class HTTPProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// Requests are read here (`HTTP1Reader`), so that parts reach the exchange as calls, not boxed pipeline reads.
    typealias InboundIn = ByteBuffer
    /// Responses go out as bytes, written here (`HTTP1MessageWriter`): no encoder between this handler and the
    /// socket, so no part is boxed in an `NIOAny` and cast back on its way.
    typealias OutboundOut = IOData

    private let connection: ClientConnection
    private var context: ChannelHandlerContext?
    private let requestReader = HTTP1Reader<HTTPRequestHead>()
    private var responseWriter = HTTP1MessageWriter()
    private var exchange: Exchange?
    /// Parts of requests pipelined behind the current exchange.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    /// A server connection kept alive after the last exchange, for the next request to the same server.
    private var idleUpstream: Upstream?
    /// Set once the connection must end after the current response (the client asked, or framing is lost).
    var closeAfterResponse = false
    /// CONNECT or an upgrade took the connection over; nothing here reads any more.
    private var handedOver = false
    /// What waits for the store's backlog to drain (reading the client, reading a server).
    private var storeWaiters: [(HTTPProxyHandler) -> Void] = []
    /// Set when Sluice can intercept TLS: CONNECT tunnels are then opened up unless their host is passed through.
    private let tls: TLSInterception?
    /// Set inside an intercepted CONNECT tunnel.
    private let tunnel: InterceptedTunnel?
    /// The tunnel's connection to its server, made before answering CONNECT; the first request uses it.
    private var tunnelUpstream: TunnelUpstream?
    /// Inside a tunnel: the client finished its TLS handshake with Sluice / sent at least one request. A client
    /// that ends the connection between the two likely pins the server's certificate (PROTOCOLS.md §6).
    private var tlsHandshakeDone = false
    private var sawRequest = false
    private var tunnelEndRecorded = false
    /// What the connection waits on and until when: a request head (`timeouts.request_head`), the next request
    /// (`timeouts.keep_alive`) or, during an exchange, the server (`timeouts.server`). Gone once the connection is
    /// handed over.
    private var clock: ConnectionClock?

    init(connection: ClientConnection, tls: TLSInterception?, tunnel: InterceptedTunnel? = nil, tunnelUpstream: TunnelUpstream? = nil) {
        self.connection = connection
        self.tls = tls
        self.tunnel = tunnel
        self.tunnelUpstream = tunnelUpstream
    }

    /// This handler, which reads requests and writes responses itself. Framing headers are set by the proxy
    /// (`HTTP1MessageWriter` only writes them), so that CONNECT's `200`, HEAD responses and 304s go out exactly as
    /// meant.
    static func configureClientPipeline(_ channel: Channel, handler: HTTPProxyHandler) throws {
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clock = ConnectionClock(eventLoop: context.eventLoop) { [unowned self] wait in self.waited(wait) }
        // From the connection's start, as nginx's client_header_timeout.
        clock?.wait(.requestHead, seconds: connection.configuration.timeouts.requestHead)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clock?.cancel()
        self.context = nil
    }

    // MARK: Reading requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let wasIdle = clock?.waiting == .keepAlive
        requestReader.read(unwrapInboundIn(data), deliver: { handle($0) }, fail: { requestUnreadable($0) })
        if wasIdle, clock?.waiting == .keepAlive, requestReader.hasBufferedInput {
            // A next request has begun and its head is not whole yet: it is on the head's clock now.
            clock?.wait(.requestHead, seconds: connection.configuration.timeouts.requestHead)
        }
    }

    // MARK: Timeouts

    /// The server owes the current exchange an answer; `since` is when it was last heard from, or asked.
    func waitForServer(since: NIODeadline) {
        clock?.wait(.server, seconds: connection.configuration.timeouts.server, from: since)
    }

    func serverAnswered() {
        if clock?.waiting == .server { clock?.stop() }
    }

    var serverTimeout: Double { connection.configuration.timeouts.server }

    /// A wait's time is up. A head that did not arrive whole is answered `408` and recorded (slowloris); a
    /// connection that sent nothing, or sat idle between requests, just closes, as reverse proxies do; a silent
    /// server is the exchange's to judge.
    private func waited(_ wait: ConnectionClock.Wait) {
        guard !handedOver else { return }
        if wait == .server {
            exchange?.serverWasSilent()
            return
        }
        guard exchange == nil, queued.isEmpty else { return }
        guard wait == .requestHead, requestReader.hasBufferedInput else {
            closeNow()
            return
        }
        requestReader.stop()
        requestFailed(
            status: .requestTimeout,
            reason: "the request head was not complete after \(Formatting.seconds(connection.configuration.timeouts.requestHead)) "
                + "(timeouts.request_head)"
        )
    }

    /// Parts that arrive while a request waits for its response queue up behind it, in order.
    private func handle(_ part: HTTPServerRequestPart) {
        if case .head = part, clock?.waiting != .server { clock?.stop() }
        if exchange?.requestComplete == true || !queued.isEmpty {
            queued.append(part)
        } else {
            dispatch(part)
        }
    }

    private func dispatch(_ part: HTTPServerRequestPart) {
        if let exchange, !exchange.requestComplete {
            exchange.requestPart(part)
        } else {
            startExchange(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.flushUpstream()
        readClientIfWanted()
    }

    /// Reads the client when the next part can go somewhere: no exchange yet, or a request body that the upstream
    /// can take.
    func readClientIfWanted() {
        guard let context, !handedOver, context.channel.isActive else { return }
        if let exchange {
            guard exchange.wantsMoreRequest else { return }
        } else if !queued.isEmpty {
            return
        }
        guard !connection.bus.isBackedUp else {
            // The store is behind: read no more requests until it catches up (it never drops a record).
            whenStoreDrained { handler in handler.readClientIfWanted() }
            return
        }
        context.read()
    }

    /// Runs `body` on this connection's event loop once the store's backlog has drained, at most once per wait.
    func whenStoreDrained(_ body: @escaping (HTTPProxyHandler) -> Void) {
        guard let eventLoop = context?.eventLoop else { return }
        storeWaiters.append(body)
        guard storeWaiters.count == 1 else { return }  // one registration wakes them all
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        connection.bus.whenDrained {
            eventLoop.execute {
                let handler = loopBound.value
                let waiters = handler.storeWaiters
                handler.storeWaiters = []
                for waiter in waiters { waiter(handler) }
            }
        }
    }

    private func startExchange(_ part: HTTPServerRequestPart) {
        guard case .head(let head) = part else { return }  // a stray body or end after a refused request
        sawRequest = true
        let plan: ExchangePlan
        do {
            plan = try ExchangePlan(head: head, spec: connection.spec, client: connection.client, tunnel: tunnel)
        } catch {
            refuse(head, status: .badRequest, reason: "\(error)")
            return
        }
        if tunnel == nil, connection.spec.scheme == .http,
            let failure = connection.configuration.access.authenticationFailure(head.headers.first(name: "proxy-authorization"))
        {
            refuseAuthentication(plan, reason: failure)
            return
        }
        if plan.isConnect {
            startTunnel(plan)
            return
        }
        guard let recorder = connection.openFlow(kind: plan.isWebSocket ? .websocket : .http, server: plan.server, limits: limits) else {
            closeNow()
            return
        }
        recorder.requestStarted(plan.requestEvent(flowID: recorder.flowID))
        let exchange = Exchange(
            plan: plan, recorder: recorder, owner: self, gate: connection.gate, holdLimit: connection.configuration.maxBodyBytes
        )
        self.exchange = exchange
        if plan.clientWantsClose || plan.isWebSocket { closeAfterResponse = true }
        upstream(for: plan) { result in exchange.upstreamReady(result) }
    }

    private var limits: RecordingLimits {
        var limits = RecordingLimits(connection.configuration)
        limits.maxDirectionBytes = Int64(connection.configuration.maxBodyBytes)
        limits.maxFlowBytes = .max
        return limits
    }

    /// Whether idle server connections go to the event loop's `UpstreamPool` when this client leaves.
    private var sharesUpstreams: Bool { UpstreamPool.shares(connection) }

    /// The kept-alive connection to this server, one another client connection left, or a new one.
    private func upstream(for plan: ExchangePlan, then done: @escaping (Result<Upstream, Error>) -> Void) {
        let key = Upstream.Key(endpoint: plan.server, tlsServerName: plan.tlsServerName)
        if let idle = idleUpstream {
            idleUpstream = nil
            if idle.key == key, idle.channel.isActive {
                done(.success(idle))
                return
            }
            idle.close()
        }
        if key.tlsServerName != nil && tls == nil {
            done(.failure(RequestTargetError("TLS to servers is not set up in this engine")))
            return
        }
        if let prepared = tunnelUpstream {
            tunnelUpstream = nil
            if prepared.take(for: key, tunnelEndpoint: tunnel?.endpoint, tls: tls?.upstreamContext, then: done) { return }
        }
        if sharesUpstreams, let pooled = UpstreamPool.current.take(key) {
            done(.success(pooled))
            return
        }
        Upstream.connect(key, via: connection, tls: tls?.upstreamContext, then: done)
    }

    /// A new connection to the plan's server, for a request sent again after its kept-alive one was closed.
    func freshUpstream(for plan: ExchangePlan, then done: @escaping (Result<Upstream, Error>) -> Void) {
        Upstream.connect(
            Upstream.Key(endpoint: plan.server, tlsServerName: plan.tlsServerName), via: connection, tls: tls?.upstreamContext, then: done
        )
    }

    // MARK: Exchange callbacks

    /// Writes a response part to the client. A head's bytes count towards the flow's `down` total (`countedIn`,
    /// else the current exchange's): what travelled, not only the body.
    func writeToClient(_ part: HTTPServerResponsePart, flush: Bool = false, countedIn recorder: FlowRecorder? = nil) {
        guard let context else { return }
        let headRecorder: FlowRecorder? = if case .head = part { recorder ?? exchange?.recorder } else { nil }
        responseWriter.write(part, allocator: context.channel.allocator, promise: nil) { bytes, promise in
            headRecorder?.countHead(bytes.readableBytes, direction: .down)
            context.write(NIOAny(bytes), promise: promise)
        }
        if flush { context.flush() }
    }

    var clientEndpoint: Endpoint { connection.client }

    var storeIsBackedUp: Bool { connection.bus.isBackedUp }

    var eventLoop: EventLoop? { context?.eventLoop }

    func flushClient() {
        context?.flush()
    }

    var clientIsWritable: Bool {
        context?.channel.isWritable ?? false
    }

    /// The exchange is over. Keeps its upstream for the next request when that is safe, then serves what the client
    /// pipelined or reads on.
    func exchangeEnded(_ ended: Exchange, reusableUpstream: Upstream?) {
        guard exchange === ended else { return }
        exchange = nil
        if !ended.requestComplete {
            // The rest of that body is not a request; the connection closes once the response is out.
            closeAfterResponse = true
            requestReader.stop()
        }
        if let reusableUpstream {
            idleUpstream = reusableUpstream
            reusableUpstream.watchWhileIdle(owner: self)
        }
        guard !closeAfterResponse else {
            releaseIdleUpstream()
            closeAfterFlush()
            return
        }
        // Pipelined requests: hand over parts until one is complete and waiting for its response.
        while !handedOver, !queued.isEmpty, exchange?.requestComplete != true {
            dispatch(queued.removeFirst())
        }
        if exchange == nil && queued.isEmpty {
            let timeouts = connection.configuration.timeouts
            if requestReader.hasBufferedInput {
                clock?.wait(.requestHead, seconds: timeouts.requestHead)
            } else {
                clock?.wait(.keepAlive, seconds: timeouts.keepAlive)
            }
        }
        readClientIfWanted()
    }

    /// This client is done with its idle server connection: another client connection may use it (with proxy
    /// users, each keeps its own), else it is closed.
    private func releaseIdleUpstream() {
        guard let idle = idleUpstream else { return }
        idleUpstream = nil
        if sharesUpstreams && !idle.isPrivate { UpstreamPool.current.put(idle) } else { idle.close() }
    }

    func idleUpstreamClosed(upstreamChannel: Channel) {
        if idleUpstream?.channel === upstreamChannel { idleUpstream = nil }
    }

    /// The server accepted a WebSocket upgrade: from here the connection relays frames.
    func upgradeAccepted(_ ended: Exchange, upstream: Upstream) {
        guard exchange === ended, let context else { return }
        exchange = nil
        handedOver = true
        clock?.cancel()
        let recorder = ended.recorder
        let client = context.channel
        let loopBound = NIOLoopBound(recorder, eventLoop: context.eventLoop)
        client.closeFuture.whenComplete { _ in loopBound.value.sideClosed(.client) }
        upstream.channel.closeFuture.whenComplete { _ in loopBound.value.sideClosed(.server) }
        let connection = self.connection
        let upstreamReady = upstream.becomeRaw()
        let clientReady = becomeRaw(context)
        let subjectBase = ended.webSocketSubject
        upstreamReady.and(clientReady).assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                do {
                    try WebSocketInspector.install(
                        client: client, server: upstream.channel, recorder: loopBound.value, connection: connection,
                        subjectBase: subjectBase
                    )
                } catch {
                    loopBound.value.failed(.proxy, "cannot set up the WebSocket relay: \(error)")
                    upstream.channel.close(promise: nil)
                    client.close(promise: nil)
                }
            case .failure(let error):
                loopBound.value.failed(.proxy, "cannot switch to WebSocket relay: \(error)")
                upstream.channel.close(promise: nil)
                client.close(promise: nil)
            }
        }
    }

    // MARK: Answers Sluice writes itself

    /// A request that cannot be proxied: recorded as a flow with its error, answered, and the connection closed.
    private func refuse(_ head: HTTPRequestHead, status: HTTPResponseStatus, reason: String) {
        closeAfterResponse = true
        requestReader.stop()  // whatever follows the refused head is not read as requests
        guard let recorder = connection.openFlow(kind: .http, server: Endpoint(host: "-", port: 0), limits: limits) else {
            closeNow()
            return
        }
        recorder.requestStarted(
            HTTPRequestStarted(
                flowID: recorder.flowID, time: Date(), method: head.method.rawValue, url: head.uri,
                version: head.version.text, headers: head.headers.redacted
            )
        )
        recorder.failed(.client, reason)
        respond(status, message: reason, recorder: recorder, timings: HTTPTimings())
        recorder.finish()
        closeAfterFlush()
    }

    /// 407 with a challenge (RFC 9110 §11.7.1), recorded with the reason; the connection stays open for the retry
    /// with credentials, as clients expect.
    private func refuseAuthentication(_ plan: ExchangePlan, reason: String) {
        guard let recorder = connection.openFlow(kind: .http, server: plan.server, limits: limits) else {
            closeNow()
            return
        }
        var request = plan.requestEvent(flowID: recorder.flowID)
        if plan.isConnect { request.url = plan.target.authority }
        recorder.requestStarted(request)
        recorder.failed(.client, "refused: \(reason)")
        closeAfterResponse = true
        respond(
            .proxyAuthenticationRequired, message: reason, recorder: recorder, timings: HTTPTimings(),
            extraHeaders: [("Proxy-Authenticate", "Basic realm=\"sluice\", charset=\"UTF-8\"")]
        )
        recorder.finish()
        closeAfterFlush()
    }

    /// Writes a complete plain-text response and records it as Sluice's own.
    func respond(_ status: HTTPResponseStatus, message: String, recorder: FlowRecorder, timings: HTTPTimings, extraHeaders: [(String, String)] = []) {
        let body = "Sluice: \(message)\n"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if closeAfterResponse { headers.add(name: "Connection", value: "close") }
        recorder.responseStarted(
            HTTPResponseStarted(
                flowID: recorder.flowID, time: Date(), status: Int(status.code), reason: status.reasonPhrase,
                version: "HTTP/1.1", headers: headers.fields, timings: timings, synthetic: true
            )
        )
        recorder.injected(Data(body.utf8), direction: .down, kind: .body)
        writeToClient(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), countedIn: recorder)
        writeToClient(.body(.byteBuffer(ByteBuffer(string: body))))
        writeToClient(.end(nil), flush: true)
    }

    /// Closes once everything written so far has reached the socket.
    func closeAfterFlush() {
        guard let context else { return }
        let channel = context.channel
        // An empty write's promise completes after every earlier write.
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] _ in
            closing = true
            channel.close(promise: nil)
            // With TLS the close waits for the client's close_notify or end of stream, which only a read can see.
            channel.read()
            closeUnderTLSIfClientLeft()
        }
    }

    /// The connection's close has been asked for (`closeAfterFlush`) / the client has closed its sending side.
    private var closing = false
    private var clientInputClosed = false

    /// Inside a tunnel, once the close is under way and the client has closed its side: nothing more can come, so
    /// the socket closes now instead of when TLS gives up waiting for the client's close_notify (`TLSSocketCloser`).
    private func closeUnderTLSIfClientLeft() {
        guard closing, clientInputClosed, tunnel != nil, let context else { return }
        (try? context.pipeline.syncOperations.handler(type: TLSSocketCloser.self))?.closeSocket()
    }

    func closeNow() {
        context?.close(promise: nil)
    }

    // MARK: CONNECT

    /// CONNECT: connect to the server first (a refusal is still a 502), answer 200, then let the tunnel's first
    /// bytes decide: a ClientHello for a host that is not passed through is intercepted; anything else is relayed
    /// as bytes. When an idle TLS connection to that server is in the pool, the server is known to be there:
    /// answered at once, and no connection is made unless the tunnel turns out to need a fresh one.
    private func startTunnel(_ plan: ExchangePlan) {
        handedOver = true
        clock?.cancel()
        let connection = self.connection
        let target = plan.target
        if let tls, connection.spec.options["tls"] != "passthrough", !tls.isPassthrough(target.host), UpstreamPool.shares(connection),
            let pooled = UpstreamPool.current.take(Upstream.Key(endpoint: target.endpoint, tlsServerName: target.host))
        {
            // Not from inside this read: the decoder has yet to pass on the CONNECT's end, which must not reach the
            // raw pipeline `answerConnect` leaves behind.
            connection.eventLoop.assumeIsolated().execute { [self] in
                answerConnect(target: target, server: .pooled(pooled))
            }
            return
        }
        let started = NIODeadline.now()
        connection.connect(to: target.endpoint).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let server):
                answerConnect(target: target, server: .connected(server, connectMilliseconds: Upstream.milliseconds(since: started)))
            case .failure(let error):
                // An HTTP flow, as mitmproxy shows it: the CONNECT request and Sluice's 502, not a tunnel that never was.
                guard let recorder = connection.openFlow(kind: .http, server: target.endpoint, limits: limits) else {
                    self.closeNow()
                    return
                }
                var request = plan.requestEvent(flowID: recorder.flowID)
                request.url = target.authority
                recorder.requestStarted(request)
                let message = "cannot connect to \(target.endpoint): \(describe(error))"
                recorder.failed(.connect, message)
                self.closeAfterResponse = true
                self.respond(.badGateway, message: message, recorder: recorder, timings: HTTPTimings())
                recorder.finish()
                self.closeAfterFlush()
            }
        }
    }

    /// `200` to CONNECT, then the tunnel's first bytes decide what it becomes (`TunnelSetup`).
    private func answerConnect(target: RequestTarget, server: TunnelServer) {
        let connection = self.connection
        guard connection.channel.isActive, let context else {
            server.release()
            return
        }
        // RFC 9110 §9.3.6: a 2xx to CONNECT has no body and no framing headers.
        writeToClient(.head(HTTPResponseHead(version: .http1_1, status: .custom(code: 200, reasonPhrase: "Connection established"))))
        writeToClient(.end(nil), flush: true)
        let tls = self.tls
        becomeRaw(context).assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                TunnelSetup(connection: connection, server: server, target: target, tls: tls).start()
            case .failure:
                server.release()
                connection.channel.close(promise: nil)
            }
        }
    }

    /// Takes this handler out of the client pipeline, leaving an `EarlyInput` that holds any bytes read beyond the
    /// request (a ClientHello sent right behind CONNECT).
    private func becomeRaw(_ context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        requestReader.handOver(from: self, context: context)
    }

    // MARK: Connection events

    func channelInactive(context: ChannelHandlerContext) {
        clock?.cancel()
        endOfRequests()
        if let tunnel, tlsHandshakeDone { tunnelEndedWithoutRequest(tunnel) }
        exchange?.clientClosed()
        exchange = nil
        releaseIdleUpstream()
        tunnelUpstream?.close()
        tunnelUpstream = nil
        context.fireChannelInactive()
    }

    /// The client sends nothing more: a request cut short is unreadable.
    private func endOfRequests() {
        requestReader.endInput(deliver: { handle($0) }, fail: { requestUnreadable($0) })
    }

    /// The client shut its sending side. Between requests that ends the connection; during one, the response is
    /// still delivered, then the connection closes. (A cut-off request is the reader's error, not this event.)
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            tlsHandshakeDone = true
        }
        if let event = event as? ChannelEvent, case .inputClosed = event, !handedOver {
            clientInputClosed = true
            closeUnderTLSIfClientLeft()
            endOfRequests()
            closeAfterResponse = true
            if exchange == nil && queued.isEmpty { closeAfterFlush() }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.clientBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// An error on the connection: a TLS failure inside a tunnel is recorded as what it most likely means; a reset
    /// between requests just ends the connection; during an exchange it ends the exchange.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tunnel, exchange == nil, error is NIOSSLError || error is BoringSSLError {
            if !tlsHandshakeDone {
                clientTLSFailed(error, tunnel: tunnel)
            } else {
                tunnelEndedWithoutRequest(tunnel)
                closeNow()
            }
            return
        }
        guard exchange != nil else {
            // A reset or a broken pipe between requests: a client ending its keep-alive connection, not a request.
            closeNow()
            return
        }
        requestFailed(status: .badRequest, reason: describe(error))
    }

    /// A request the reader could not parse: 431 for a head over the limits, 400 otherwise; then close, since the
    /// byte stream can no longer be framed.
    private func requestUnreadable(_ error: HTTP1ParseError) {
        let status: HTTPResponseStatus = error == .headTooLarge ? .requestHeaderFieldsTooLarge : .badRequest
        requestFailed(status: status, reason: "malformed request: \(error)")
    }

    private func requestFailed(status: HTTPResponseStatus, reason: String) {
        closeAfterResponse = true
        if let exchange {
            exchange.clientFailed(reason, status: status)
            return
        }
        guard let recorder = connection.openFlow(kind: .http, server: Endpoint(host: "-", port: 0), limits: limits) else {
            closeNow()
            return
        }
        // No head could be read: the flow still gets a request row, so its answer has somewhere to be recorded.
        recorder.requestStarted(
            HTTPRequestStarted(flowID: recorder.flowID, time: Date(), method: "-", url: "(unparsable request)", version: "-", headers: [])
        )
        recorder.failed(.client, reason)
        respond(status, message: reason, recorder: recorder, timings: HTTPTimings())
        recorder.finish()
        closeAfterFlush()
    }

    /// The client's TLS handshake with Sluice failed: usually it does not trust Sluice's CA (or pins its server's
    /// certificate). Recorded as a flow that says so, since nothing else of this connection will be.
    private func clientTLSFailed(_ error: Error, tunnel: InterceptedTunnel) {
        let reasons = Self.tlsReasons(error)
        let alerts = ["UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_REVOKED"]
        let message: String
        if let alert = alerts.first(where: { alert in reasons.contains { $0.contains(alert) } }) {
            message = "client rejected Sluice's certificate for \(tunnel.serverName) (alert \(alert.lowercased())); "
                + "trust Sluice's CA (sluice ca) or add the host to tls.passthrough"
        } else {
            // TLS 1.3 clients send their alert encrypted, and often cut the connection first: most such failures are
            // a client that does not trust Sluice's CA or pins the server's certificate.
            message = "client ended the TLS handshake for \(tunnel.serverName) (\(reasons.joined(separator: ", "))): "
                + "it most likely rejected Sluice's certificate; trust Sluice's CA (sluice ca) or add the host to tls.passthrough"
        }
        if let recorder = connection.openFlow(kind: .http, server: tunnel.endpoint, limits: limits) {
            recorder.requestStarted(
                HTTPRequestStarted(flowID: recorder.flowID, time: Date(), method: "CONNECT", url: tunnel.target.url, version: "-", headers: [])
            )
            recorder.failed(.client, message)
            recorder.finish()
        }
        tunnelUpstream?.close()
        tunnelUpstream = nil
        closeNow()
    }

    /// BoringSSL's reason codes in an error (`UNKNOWN_CA`, `BAD_RECORD_MAC`...), without the file and line noise.
    static func tlsReasons(_ error: Error) -> [String] {
        let text = "\(error)"
        var reasons: [String] = []
        for part in text.components(separatedBy: "OPENSSL_internal:").dropFirst() {
            let reason = String(part.prefix { $0.isUppercase || $0.isNumber || $0 == "_" })
            if !reason.isEmpty, !reasons.contains(reason) { reasons.append(reason) }
        }
        return reasons.isEmpty ? [String(text.prefix(120))] : reasons
    }

    /// A client that completes the TLS handshake with Sluice and then leaves without a request: recorded once, since
    /// certificate pinning looks exactly like this.
    private func tunnelEndedWithoutRequest(_ tunnel: InterceptedTunnel) {
        guard !sawRequest, !tunnelEndRecorded else { return }
        tunnelEndRecorded = true
        guard let recorder = connection.openFlow(kind: .http, server: tunnel.endpoint, limits: limits) else { return }
        recorder.requestStarted(
            HTTPRequestStarted(flowID: recorder.flowID, time: Date(), method: "CONNECT", url: tunnel.target.url, version: "-", headers: [])
        )
        recorder.failed(
            .client,
            "client closed the connection right after the TLS handshake for \(tunnel.serverName), without a request: "
                + "it may pin the server's certificate; add the host to tls.passthrough"
        )
        recorder.finish()
        tunnelUpstream?.close()
        tunnelUpstream = nil
    }
}

@available(*, unavailable)
extension HTTPProxyHandler: Sendable {}

extension HTTPVersion {
    /// `HTTP/1.1`. The two versions Sluice meets are literals: this is recorded twice per exchange.
    var text: String {
        switch (major, minor) {
        case (1, 1): "HTTP/1.1"
        case (1, 0): "HTTP/1.0"
        default: "HTTP/\(major).\(minor)"
        }
    }
}
