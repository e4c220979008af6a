import Dispatch
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceModel

/// The control API's HTTP server (NIO's HTTP/1 server pipeline): its own event loop, so requests never run on the
/// proxy's, and a queue for the routes, whose store reads may take a while. Every request must carry the bearer
/// token; the answers are JSON in one envelope, or the event stream.
public final class APIServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    /// Where it listens, as bound (the port the system chose for port 0).
    public let address: String

    /// The largest request body taken; a larger one is a 413.
    static let maxBodyBytes = 1 << 20
    /// Connections open at once, event streams included.
    static let maxConnections = 256

    /// Binds and starts serving.
    /// - Throws: one line when the address cannot be bound.
    public static func start(
        at listen: APIListenAddress, router: APIRouter, token: APIToken, events: APIEventHub
    ) throws(APIError) -> APIServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let queue = DispatchQueue(label: "sluice-api", attributes: .concurrent)
        let open = OpenConnections(limit: maxConnections)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // Past the cap a connection is closed at once: token or not, nobody can make the API hold more.
                guard open.admit(channel) else { return channel.close() }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(
                        APIHTTPHandler(router: router, token: token, events: events, queue: queue)
                    )
                }
            }
        do {
            let channel: Channel
            let shown: String
            switch listen {
            case .tcp(let endpoint):
                channel = try bootstrap.bind(host: endpoint.host, port: endpoint.port).wait()
                shown = "http://" + Endpoint(host: endpoint.host, port: channel.localAddress?.port ?? endpoint.port).description
            case .unix(let path):
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                // Only the recorder's user may connect, token or not.
                chmod(path, 0o600)
                shown = "unix:" + path
            }
            return APIServer(group: group, channel: channel, address: shown)
        } catch {
            try? group.syncShutdownGracefully()
            throw APIError("cannot start the API on \(listen): \(error)")
        }
    }

    private init(group: MultiThreadedEventLoopGroup, channel: Channel, address: String) {
        self.group = group
        self.channel = channel
        self.address = address
    }

    /// Closes the listener and every open request and stream.
    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// How many connections the API has open, up to a limit.
final class OpenConnections: Sendable {
    private let count = NIOLockedValueBox(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts `channel` until it closes; false when the limit is reached.
    func admit(_ channel: Channel) -> Bool {
        let admitted = count.withLockedValue { count -> Bool in
            guard count < limit else { return false }
            count += 1
            return true
        }
        if admitted { channel.closeFuture.whenComplete { _ in self.count.withLockedValue { $0 -= 1 } } }
        return admitted
    }

    var current: Int { count.withLockedValue { $0 } }
}

/// One connection's requests: collects each request's body (up to `APIServer.maxBodyBytes`), checks the token,
/// answers on the route queue, and writes the answer back on the connection's loop. The event stream keeps its
/// connection; every other answer closes it.
final class APIHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: APIRouter
    private let token: APIToken
    private let events: APIEventHub
    private let queue: DispatchQueue
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// A connection must finish its request within `requestTimeout`: one that sends nothing, or trickles, is closed,
    /// so idle peers cannot hold the API's descriptors.
    private var requestDeadline: Scheduled<Void>?
    static let requestTimeout = TimeAmount.seconds(10)

    init(router: APIRouter, token: APIToken, events: APIEventHub, queue: DispatchQueue) {
        self.router = router
        self.token = token
        self.events = events
        self.queue = queue
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startDeadline(context: context)
        context.fireChannelActive()
    }

    private func startDeadline(context: ChannelHandlerContext) {
        guard requestDeadline == nil else { return }
        let channel = context.channel
        requestDeadline = context.eventLoop.scheduleTask(in: Self.requestTimeout) { channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        requestDeadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
        case .body(var chunk):
            if body.count + chunk.readableBytes > APIServer.maxBodyBytes {
                tooLarge = true
            } else if let bytes = chunk.readBytes(length: chunk.readableBytes) {
                body += bytes
            }
        case .end:
            guard let head else { return }
            self.head = nil
            requestDeadline?.cancel()
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard token.admits(head.headers.first(name: "authorization")) else {
            return send(401, APIEnvelope.failure("a bearer token is required: Authorization: Bearer <the api-token file's content>"), context: context)
        }
        guard !tooLarge else {
            return send(413, APIEnvelope.failure("the body is larger than \(APIServer.maxBodyBytes) bytes"), context: context)
        }
        let request = APIRequest(method: head.method.rawValue, target: head.uri, body: body)
        let router = self.router
        let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        queue.async {
            let result: Result<APIResult, APIFailure>
            do throws(APIFailure) {
                result = .success(try router.answer(request))
            } catch {
                result = .failure(error)
            }
            loop.eventLoop.execute {
                let (handler, context) = loop.value
                switch result {
                case .success(.data(let json, let message, let status)):
                    handler.send(status, APIEnvelope.success(json, message: message), context: context)
                case .success(.events):
                    handler.startStream(context: context)
                case .success(.file(let path, let contentType)):
                    handler.sendFile(path, contentType: contentType, context: context)
                case .failure(let failure):
                    handler.send(failure.status, APIEnvelope.failure(failure.message), context: context)
                }
            }
        }
    }

    private func send(_ status: Int, _ json: String, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(json.utf8.count)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: json)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// A file from disk as the body, by `sendfile` (a `FileRegion`): a large recording is never held in memory.
    private func sendFile(_ path: String, contentType: String, context: ChannelHandlerContext) {
        let handle: NIOFileHandle
        let size: Int
        do {
            handle = try NIOFileHandle(_deprecatedPath: path)
            size = Int(try handle.withUnsafeFileDescriptor { descriptor in lseek(descriptor, 0, SEEK_END) })
        } catch {
            return send(404, APIEnvelope.failure("cannot read \((path as NSString).lastPathComponent): \(error)"), context: context)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(size)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        let region = FileRegion(fileHandle: handle, readerIndex: 0, endIndex: size)
        context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            try? handle.close()
            context.close(promise: nil)
        }
    }

    /// The event stream: headers now, then one event per message as the hub sends them, until either side closes.
    private func startStream(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-store")
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        // A first comment, so a client sees the stream is open before any event.
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: ": sluice events\n\n")))), promise: nil)
        // The hub writes raw bytes from here on: the HTTP encoder would frame them as chunks, which it does for a
        // response without a length, so the events go through it.
        let channel = context.channel
        try? channel.pipeline.syncOperations.addHandler(EventFraming(), position: .last)
        events.add(channel)
    }
}

/// Wraps the hub's raw event bytes as HTTP body parts for the encoder (which chunks them).
final class EventFraming: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTPServerResponsePart

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(wrapOutboundOut(.body(.byteBuffer(unwrapOutboundIn(data)))), promise: promise)
    }
}
