import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceModel

/// A connection to a server, owned by one client connection's `HTTPProxyHandler` and reused across exchanges
/// while both sides keep it alive. Its handler passes what it reads to whoever uses it right now.
final class Upstream {
    struct Key: Hashable {
        var endpoint: Endpoint
        var tls: Bool
    }

    let key: Key
    let channel: Channel
    private let handler: UpstreamHandler
    /// Milliseconds the TCP connect took; nil for a reused connection.
    private(set) var connectMilliseconds: Double?

    private init(key: Key, channel: Channel, handler: UpstreamHandler, connectMilliseconds: Double?) {
        self.key = key
        self.channel = channel
        self.handler = handler
        self.connectMilliseconds = connectMilliseconds
    }

    /// Connects on the client's event loop and installs the HTTP client codec. Framing headers are the proxy's
    /// (`ExchangePlan`), so NIO's encoder leaves them alone; 1xx responses are passed on, not swallowed.
    static func connect(_ key: Key, via connection: ClientConnection, then done: @escaping (Result<Upstream, Error>) -> Void) {
        let started = NIODeadline.now()
        connection.connect(to: key.endpoint).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                do {
                    let handler = UpstreamHandler()
                    let operations = channel.pipeline.syncOperations
                    var encoderConfiguration = HTTPRequestEncoder.Configuration()
                    encoderConfiguration.automaticallySetFramingHeaders = false
                    try operations.addHandler(HTTPRequestEncoder(configuration: encoderConfiguration))
                    try operations.addHandler(
                        ByteToMessageHandler(
                            HTTPResponseDecoder(
                                leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward,
                                limitConfiguration: HeadLimits.decoder
                            )
                        )
                    )
                    try operations.addHandler(handler)
                    try operations.handler(type: EarlyInput.self).release()
                    let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1_000_000
                    done(.success(Upstream(key: key, channel: channel, handler: handler, connectMilliseconds: elapsed)))
                } catch {
                    channel.close(promise: nil)
                    done(.failure(error))
                }
            case .failure(let error):
                done(.failure(error))
            }
        }
    }

    /// Hands the connection to an exchange; a reused connection reports no connect time.
    func attach(_ exchange: Exchange) -> Double? {
        handler.delegate = .exchange(exchange)
        defer { connectMilliseconds = nil }
        return connectMilliseconds
    }

    /// Between exchanges: keep reading so that a server closing the idle connection is noticed at once.
    func watchWhileIdle(owner: HTTPProxyHandler) {
        handler.delegate = .idle(owner)
        channel.read()
    }

    func write(_ part: HTTPClientRequestPart) {
        channel.write(part, promise: nil)
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

    /// Takes the HTTP codec out after a `101`, leaving an `EarlyInput` with whatever the decoder held beyond it.
    func becomeRaw() -> EventLoopFuture<Void> {
        handler.delegate = nil
        let pipeline = channel.pipeline
        do {
            let decoder = try pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try pipeline.syncOperations.addHandler(EarlyInput(), position: .after(decoder))
            let encoder = try pipeline.syncOperations.handler(type: HTTPRequestEncoder.self)
            let handler = self.handler
            return pipeline.syncOperations.removeHandler(decoder).assumeIsolated()
                .flatMap { pipeline.syncOperations.removeHandler(encoder) }
                .flatMap { pipeline.syncOperations.removeHandler(handler) }
                .nonisolated()
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}

@available(*, unavailable)
extension Upstream: Sendable {}

/// The server-facing end of the pipeline: passes responses to the exchange using the connection, or notices the
/// server closing an idle one.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    enum Delegate {
        case exchange(Exchange)
        case idle(HTTPProxyHandler)
    }

    var delegate: Delegate?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch delegate {
        case .exchange(let exchange):
            exchange.responsePart(part)
        case .idle:
            // A server may not speak first on an idle connection (RFC 9112 §9.3); drop it rather than misframe.
            delegate = nil
            context.close(promise: nil)
        case nil:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .exchange(let exchange) = delegate { exchange.upstreamReadComplete() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch delegate {
        case .exchange(let exchange): exchange.upstreamClosed()
        case .idle(let owner): owner.idleUpstreamClosed(upstreamChannel: context.channel)
        case nil: break
        }
        delegate = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .exchange(let exchange) = delegate { exchange.upstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if case .exchange(let exchange) = delegate {
            exchange.upstreamFailed(error)
        }
        delegate = nil
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}
