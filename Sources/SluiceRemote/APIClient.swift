import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceAPI

/// Why a call to the recorder's API did not work, in one line.
public struct RemoteError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// What the API answered: the status, the envelope's message, and its `data` as parsed JSON.
public struct APIReply {
    public var status: Int
    public var message: String
    public var data: Any?

    public var succeeded: Bool { (200..<300).contains(status) }
}

/// An HTTP/1.1 client of a recorder's control API (`http://HOST:PORT` or `unix:PATH`), with its bearer token. Each
/// request is one short connection on the client's own event loop; callers wait for the reply (the TUI's thread
/// does, for a verdict or a kill: the API is local, so that is a millisecond), bounded by a timeout.
public final class APIClient: Sendable {
    public let address: APIListenAddress
    private let token: String
    let group: MultiThreadedEventLoopGroup
    private let calls = CallGate()

    /// The most of a reply's body taken (a held message's payload comes whole).
    static let maxReplyBytes = 64 << 20

    public init(address: APIListenAddress, token: String) {
        self.address = address
        self.token = token
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Waits for the calls under way (each is bounded by its timeouts), then stops the event loop; later calls fail
    /// at once. (A poll's timer can fire as the TUI quits: a connect begun on a stopped event loop never completes.)
    public func shutdown() {
        calls.close()
        try? group.syncShutdownGracefully()
    }

    /// Sends one request and waits for its reply.
    /// - Parameter json: the body, a JSON text; none for nil.
    /// - Throws: `RemoteError` when the recorder cannot be reached or does not answer in time; an answer with an
    ///   error status is a reply, not a throw.
    public func request(_ method: HTTPMethod, _ path: String, json: String? = nil, timeout: TimeAmount = .seconds(5)) throws(RemoteError)
        -> APIReply
    {
        guard calls.enter() else { throw RemoteError("\(method) \(path): the connection to the recorder is closed") }
        defer { calls.leave() }
        let promise = group.next().makePromise(of: (status: Int, body: [UInt8]).self)
        let collector = ReplyCollector(promise: promise)
        let connected = connect { channel in try channel.pipeline.syncOperations.addHandler(collector) }
        connected.whenSuccess { channel in
            channel.eventLoop.scheduleTask(in: timeout) {
                collector.fail(RemoteError("the recorder did not answer \(method) \(path) within \(timeout.nanoseconds / 1_000_000_000) s"))
                channel.close(promise: nil)
            }
            self.write(method, path, json: json, accept: "application/json", on: channel)
        }
        connected.whenFailure { error in promise.fail(RemoteError("cannot reach the recorder's API at \(self.address): \(error)")) }
        let reply: (status: Int, body: [UInt8])
        do {
            reply = try promise.futureResult.wait()
        } catch let error as RemoteError {
            throw error
        } catch {
            throw RemoteError("\(method) \(path): \(error)")
        }
        return try Self.envelope(status: reply.status, body: reply.body, what: "\(method) \(path)")
    }

    /// Reads the API's envelope `{"success", "message", "data"}`.
    static func envelope(status: Int, body: [UInt8], what: String) throws(RemoteError) -> APIReply {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw RemoteError("\(what): the recorder answered \(status) without the API's JSON envelope")
        }
        let message = object["message"] as? String ?? "HTTP \(status)"
        let data = object["data"].flatMap { $0 is NSNull ? nil : $0 }
        return APIReply(status: status, message: message, data: data)
    }

    /// A connection with NIO's HTTP/1 client handlers, then the caller's.
    func connect(_ addHandlers: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        guard calls.enter() else { return group.next().makeFailedFuture(RemoteError("the connection to the recorder is closed")) }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(3))
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMapThrowing { try addHandlers(channel) }
            }
        let connected =
            switch address {
            case .tcp(let endpoint): bootstrap.connect(host: endpoint.host, port: endpoint.port)
            case .unix(let path): bootstrap.connect(unixDomainSocketPath: path)
            }
        connected.whenComplete { [calls] _ in calls.leave() }
        return connected
    }

    func write(_ method: HTTPMethod, _ path: String, json: String?, accept: String, on channel: Channel) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "sluice")
        headers.add(name: "Authorization", value: "Bearer \(token)")
        headers.add(name: "Accept", value: accept)
        headers.add(name: "Connection", value: "close")
        let body = json.map { ByteBuffer(string: $0) }
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        } else if method == .POST || method == .PUT {
            headers.add(name: "Content-Length", value: "0")
        }
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }
}

/// Lets calls in until `close()`, which then waits for those already in.
private final class CallGate: @unchecked Sendable {
    // @unchecked: its state is guarded by `condition`.
    private let condition = NSCondition()
    private var inside = 0
    private var closed = false

    /// Whether a call may begin; each `true` must be followed by one `leave()`.
    func enter() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return false }
        inside += 1
        return true
    }

    func leave() {
        condition.lock()
        inside -= 1
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        while inside > 0 { condition.wait() }
        condition.unlock()
    }
}

/// Collects one reply: its status and whole body, bounded by `APIClient.maxReplyBytes`.
private final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop.
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    private var status = 0
    private var body: [UInt8] = []
    private var done = false

    init(promise: EventLoopPromise<(status: Int, body: [UInt8])>) {
        self.promise = promise
    }

    func fail(_ error: RemoteError) {
        guard !done else { return }
        done = true
        promise.fail(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= APIClient.maxReplyBytes else {
                fail(RemoteError("the recorder's reply is over \(APIClient.maxReplyBytes >> 20) MiB"))
                context.close(promise: nil)
                return
            }
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard !done else { return }
            done = true
            promise.succeed((status, body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(RemoteError("the recorder closed the connection before it answered"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(RemoteError("the connection to the recorder failed: \(error)"))
        context.close(promise: nil)
    }
}
