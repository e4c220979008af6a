import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 origin server on loopback for in-process tests: answers every request with `200` and a body that
/// repeats the method, path and request body, and remembers each request it got. A path ending in `/early` is
/// answered `413` as soon as its head is in, before any body (a server refusing an upload).
public final class HTTPTestServer: Sendable {
    public struct Request: Sendable, Equatable {
        public var method: String
        public var uri: String
        public var headers: [String: String]
        public var body: String
    }

    public let channel: Channel
    private let received = NIOLockedValueBox<[Request]>([])

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var requests: [Request] { received.withLockedValue { $0 } }
    /// Connections accepted so far.
    public var connectionCount: Int { accepted.withLockedValue { $0 } }
    private let accepted = NIOLockedValueBox(0)

    public init(group: EventLoopGroup) async throws {
        let received = self.received
        let accepted = self.accepted
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(received: received))
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

        let received: NIOLockedValueBox<[Request]>
        var head: HTTPRequestHead?
        var body = ""
        var answered = false

        init(received: NIOLockedValueBox<[Request]>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = ""
                answered = head.uri.hasSuffix("/early")
                if answered {
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Length", value: "0")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .payloadTooLarge, headers: headers))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
            case .body(let buffer):
                body += String(buffer: buffer)
            case .end:
                guard let head, !answered else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                received.withLockedValue {
                    $0.append(Request(method: head.method.rawValue, uri: head.uri, headers: headers, body: body))
                }
                let text = "\(head.method.rawValue) \(head.uri) \(body)"
                var responseHeaders = HTTPHeaders()
                responseHeaders.add(name: "Content-Length", value: String(text.utf8.count))
                responseHeaders.add(name: "X-Test", value: "yes")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: responseHeaders))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
