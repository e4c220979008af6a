import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS
import SluiceTLS
import SluiceCore
import SluiceModel

/// A connection to a server, owned by one client connection's `HTTPProxyHandler` and reused across exchanges
/// while both sides keep it alive. Its handler passes what it reads to whoever uses it right now.
final class Upstream {
    struct Key: Hashable {
        var endpoint: Endpoint
        /// The name sent as SNI and checked against the server's certificate; nil for plain HTTP.
        var tlsServerName: String?
    }

    let key: Key
    let channel: Channel
    private let handler: UpstreamHandler
    /// Milliseconds the TCP connect and the TLS handshake took; nil for a reused connection.
    private var connectMilliseconds: Double?
    private var tlsMilliseconds: Double?

    private init(key: Key, channel: Channel, handler: UpstreamHandler, connectMilliseconds: Double?, tlsMilliseconds: Double?) {
        self.key = key
        self.channel = channel
        self.handler = handler
        self.connectMilliseconds = connectMilliseconds
        self.tlsMilliseconds = tlsMilliseconds
    }

    /// Connects on the client's event loop, then sets the connection up with `establish`.
    static func connect(
        _ key: Key, via connection: ClientConnection, tls: NIOSSLContext?, then done: @escaping (Result<Upstream, Error>) -> Void
    ) {
        let started = NIODeadline.now()
        connection.connect(to: key.endpoint).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                establish(channel, key: key, connectMilliseconds: milliseconds(since: started), tls: tls, then: done)
            case .failure(let error):
                done(.failure(error))
            }
        }
    }

    /// Turns a connected channel (reads off, `EarlyInput` in its pipeline) into an upstream: TLS first when the key
    /// asks for it, waiting for the handshake so that a bad certificate is one clear error, then the
    /// `UpstreamHandler`, which speaks HTTP/1.1. Framing headers are the proxy's (`ExchangePlan`); 1xx responses are
    /// passed on, not swallowed.
    static func establish(
        _ channel: Channel, key: Key, connectMilliseconds: Double?, tls: NIOSSLContext?,
        then done: @escaping (Result<Upstream, Error>) -> Void
    ) {
        func installHTTP(tlsMilliseconds: Double?) {
            do {
                let handler = UpstreamHandler()
                let operations = channel.pipeline.syncOperations
                try operations.addHandler(handler)
                if let early = try? operations.handler(type: EarlyInput.self) { early.release() }
                done(.success(Upstream(key: key, channel: channel, handler: handler, connectMilliseconds: connectMilliseconds, tlsMilliseconds: tlsMilliseconds)))
            } catch {
                channel.close(promise: nil)
                done(.failure(error))
            }
        }
        guard let serverName = key.tlsServerName, let tls else {
            installHTTP(tlsMilliseconds: nil)
            return
        }
        let started = NIODeadline.now()
        do {
            let operations = channel.pipeline.syncOperations
            let early = try operations.handler(type: EarlyInput.self)
            try operations.addHandler(try UpstreamTLS.clientHandler(context: tls, serverName: serverName), position: .after(early))
            let waiter = HandshakeWaiter { result in
                switch result {
                case .success:
                    installHTTP(tlsMilliseconds: milliseconds(since: started))
                case .failure(let error):
                    channel.close(promise: nil)
                    done(.failure(UpstreamTLSError(serverName: serverName, underlying: error)))
                }
            }
            try operations.addHandler(waiter)
            early.release()
            channel.read()
        } catch {
            channel.close(promise: nil)
            done(.failure(error))
        }
    }

    static func milliseconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1_000_000
    }

    /// Hands the connection to an exchange; a reused connection reports no connect or TLS time.
    func attach(_ exchange: Exchange) -> (connect: Double?, tls: Double?) {
        handler.delegate = .exchange(exchange)
        defer {
            connectMilliseconds = nil
            tlsMilliseconds = nil
        }
        return (connectMilliseconds, tlsMilliseconds)
    }

    /// Carried connection-bound authentication (NTLM, Negotiate): never shared with another client connection.
    var isPrivate = false

    /// Between exchanges: keep reading so that a server closing the idle connection is noticed at once.
    func watchWhileIdle(owner: HTTPProxyHandler) {
        handler.delegate = .idle(owner)
        channel.read()
    }

    /// The same while it waits in the pool for another client connection.
    func watchWhileIdle(in pool: UpstreamPool) {
        handler.delegate = .pooled(pool)
        channel.read()
    }

    func write(_ part: HTTPClientRequestPart) {
        handler.write(part)
    }

    func flush() {
        channel.flush()
    }

    func read() {
        channel.read()
    }

    var isWritable: Bool { channel.isWritable }

    func close() {
        handler.delegate = nil
        channel.close(promise: nil)
    }

    /// Takes the HTTP handler out after a `101`, leaving an `EarlyInput` with whatever it read beyond the response.
    func becomeRaw() -> EventLoopFuture<Void> {
        handler.becomeRaw() ?? channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
    }
}

@available(*, unavailable)
extension Upstream: Sendable {}

/// The server-facing end of the pipeline: writes requests as bytes (`HTTP1MessageWriter`), reads responses
/// (`HTTP1Reader`) and passes them to the exchange using the connection, or notices the server closing an idle one.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    enum Delegate {
        case exchange(Exchange)
        case idle(HTTPProxyHandler)
        case pooled(UpstreamPool)
    }

    var delegate: Delegate?
    private var context: ChannelHandlerContext?
    private let reader = HTTP1Reader<HTTPResponseHead>()
    private var writer = HTTP1MessageWriter()

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// A request part, written as bytes; a head also tells the reader how its response is framed, and its bytes
    /// count towards the exchange's `up` total.
    func write(_ part: HTTPClientRequestPart) {
        guard let context else { return }
        var headRecorder: FlowRecorder?
        if case .head(let head) = part {
            reader.expectResponse(to: head.method)
            if case .exchange(let exchange) = delegate { headRecorder = exchange.recorder }
        }
        writer.write(part, allocator: context.channel.allocator, promise: nil) { bytes, promise in
            headRecorder?.countHead(bytes.readableBytes, direction: .up)
            context.write(NIOAny(bytes), promise: promise)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), deliver: { responsePart($0, context: context) }, fail: { failed($0, context: context) })
    }

    private func responsePart(_ part: HTTPClientResponsePart, context: ChannelHandlerContext) {
        switch delegate {
        case .exchange(let exchange):
            exchange.responsePart(part)
        case .idle, .pooled:
            // A server may not speak first on an idle connection (RFC 9112 §9.3); drop it rather than misframe.
            context.close(promise: nil)
        case nil:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .exchange(let exchange) = delegate { exchange.upstreamReadComplete() }
    }

    /// A server that stops sending has nothing more to say on HTTP/1.1: a response read until close ends, and the
    /// connection closes, so that an exchange still waiting for its answer gets a 502 now (not when the client
    /// gives up) and an idle connection is not used again.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            endInput(context: context)
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        endInput(context: context)
        switch delegate {
        case .exchange(let exchange): exchange.upstreamClosed()
        case .idle(let owner): owner.idleUpstreamClosed(upstreamChannel: context.channel)
        case .pooled(let pool): pool.closed(context.channel)
        case nil: break
        }
        delegate = nil
        context.fireChannelInactive()
    }

    /// A response read until the server closed ends here; one cut short fails.
    private func endInput(context: ChannelHandlerContext) {
        reader.endInput(deliver: { responsePart($0, context: context) }, fail: { failed($0, context: context) })
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .exchange(let exchange) = delegate { exchange.upstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failed(error, context: context)
    }

    private func failed(_ error: Error, context: ChannelHandlerContext) {
        if case .exchange(let exchange) = delegate {
            exchange.upstreamFailed(error)
        }
        delegate = nil
        context.close(promise: nil)
    }

    /// After a `101`: an `EarlyInput` takes this handler's place and the bytes it read beyond the response (the
    /// server's first frames), and holds them for the relay.
    func becomeRaw() -> EventLoopFuture<Void>? {
        delegate = nil
        guard let context else { return nil }
        return reader.handOver(from: self, context: context)
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}

/// Waits in a fresh TLS client pipeline for the handshake's outcome, then leaves.
final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var done: ((Result<Void, Error>) -> Void)?

    init(done: @escaping (Result<Void, Error>) -> Void) {
        self.done = done
    }

    private func finish(_ result: Result<Void, Error>, context: ChannelHandlerContext) {
        guard let done else { return }
        self.done = nil
        if case .success = result {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        done(result)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            finish(.success(()), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failure(error), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ChannelError.eof), context: context)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension HandshakeWaiter: Sendable {}

/// The TLS handshake with a server failed: its certificate did not verify, or it does not speak TLS.
struct UpstreamTLSError: Error, CustomStringConvertible {
    var serverName: String
    var underlying: Error

    var description: String {
        let text = "\(underlying)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "TLS handshake with \(serverName) failed: its certificate did not verify (trust its CA with --upstream-ca, or --insecure-upstream for a test server)"
        }
        if let eof = underlying as? ChannelError, eof == .eof {
            return "TLS handshake with \(serverName) failed: the server closed the connection"
        }
        return "TLS handshake with \(serverName) failed: \(text)"
    }
}

/// The server connection an intercepted CONNECT tunnel made before its `200`, waiting for the tunnel's first
/// request. Inside TLS its handshake starts as soon as the client's ClientHello names the server, so the two
/// handshakes overlap instead of the server's waiting for the first request (as mitmproxy's eager strategy does).
enum TunnelUpstream {
    /// Plain HTTP inside the tunnel: set up when the first request asks for it.
    case connected(Channel, connectMilliseconds: Double)
    /// TLS: being set up already.
    case establishing(PendingUpstream)
    /// A connection to the same server that another client connection left (`UpstreamPool`).
    case pooled(Upstream)

    /// Hands the connection to the first request when it is for this tunnel's server, else closes it and says no.
    func take(for key: Upstream.Key, tunnelEndpoint: Endpoint?, tls: NIOSSLContext?, then done: @escaping (Result<Upstream, Error>) -> Void) -> Bool {
        switch self {
        case .connected(let channel, let connectMilliseconds):
            guard channel.isActive, key.endpoint == tunnelEndpoint else {
                channel.close(promise: nil)
                return false
            }
            Upstream.establish(channel, key: key, connectMilliseconds: connectMilliseconds, tls: tls, then: done)
            return true
        case .establishing(let pending):
            guard pending.key == key else {
                pending.abandon()
                return false
            }
            pending.whenReady(done)
            return true
        case .pooled(let upstream):
            guard upstream.key == key, upstream.channel.isActive else {
                upstream.close()
                return false
            }
            done(.success(upstream))
            return true
        }
    }

    func close() {
        switch self {
        case .connected(let channel, _): channel.close(promise: nil)
        case .establishing(let pending): pending.abandon()
        case .pooled(let upstream): upstream.close()
        }
    }
}

/// An upstream being set up (`Upstream.establish`) before anyone asked for it; on its channel's event loop.
final class PendingUpstream {
    let key: Upstream.Key
    private var result: Result<Upstream, Error>?
    private var waiting: ((Result<Upstream, Error>) -> Void)?
    private var abandoned = false

    init(_ channel: Channel, key: Upstream.Key, connectMilliseconds: Double, tls: NIOSSLContext?) {
        self.key = key
        Upstream.establish(channel, key: key, connectMilliseconds: connectMilliseconds, tls: tls) { [self] result in
            self.completed(result)
        }
    }

    func whenReady(_ done: @escaping (Result<Upstream, Error>) -> Void) {
        if let result {
            self.result = nil
            done(result)
        } else {
            waiting = done
        }
    }

    /// Nobody will use it: closed now, or as soon as it is set up.
    func abandon() {
        abandoned = true
        waiting = nil
        if case .success(let upstream)? = result { upstream.close() }
        result = nil
    }

    private func completed(_ result: Result<Upstream, Error>) {
        if abandoned {
            if case .success(let upstream) = result { upstream.close() }
            return
        }
        if let waiting {
            self.waiting = nil
            waiting(result)
        } else {
            self.result = result
        }
    }
}

@available(*, unavailable)
extension PendingUpstream: Sendable {}
