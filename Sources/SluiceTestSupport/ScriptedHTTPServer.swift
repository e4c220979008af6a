import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 origin on loopback whose every answer a test decides: respond, or read the request and close
/// without a word (a server that crashed, or closed a keep-alive connection just as a request arrived).
public final class ScriptedHTTPServer: Sendable {
    public enum Action: Sendable {
        /// 200 with `body` and a Content-Length, the connection kept alive.
        case respond(body: String)
        /// Closes the connection without answering.
        case close
        /// Keeps the connection open and never answers (a hung backend).
        case ignore
    }

    /// A request as the server read it, and where: the connection (counted from 0) and the request on it.
    public struct Request: Sendable, Equatable {
        public var connection: Int
        public var index: Int
        public var method: String
        public var uri: String
        public var headers: [String: String]
        public var body: String
    }

    public let channel: Channel
    private let received = NIOLockedValueBox<[Request]>([])
    private let accepted = NIOLockedValueBox(0)

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var requests: [Request] { received.withLockedValue { $0 } }
    public var connectionCount: Int { accepted.withLockedValue { $0 } }

    /// - Parameter script: the action for a request, from its connection and its index on that connection.
    public init(group: EventLoopGroup, script: @escaping @Sendable (_ connection: Int, _ index: Int) -> Action) async throws {
        let received = self.received
        let accepted = self.accepted
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let connection = accepted.withLockedValue { count in
                    defer { count += 1 }
                    return count
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(connection: connection, script: script, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    public func close() async throws {
        try await channel.close()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let connection: Int
        let script: @Sendable (Int, Int) -> Action
        let received: NIOLockedValueBox<[Request]>
        var head: HTTPRequestHead?
        var body = ""
        var index = 0

        init(connection: Int, script: @escaping @Sendable (Int, Int) -> Action, received: NIOLockedValueBox<[Request]>) {
            self.connection = connection
            self.script = script
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = ""
            case .body(let buffer):
                body += String(buffer: buffer)
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                let request = Request(
                    connection: connection, index: index, method: head.method.rawValue, uri: head.uri, headers: headers, body: body
                )
                received.withLockedValue { $0.append(request) }
                let action = script(connection, index)
                index += 1
                switch action {
                case .respond(let text):
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Length", value: String(text.utf8.count))
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                case .close:
                    context.close(promise: nil)
                case .ignore:
                    break
                }
            }
        }
    }
}
