// nioproxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
//
// What SwiftNIO's HTTP/1 stack costs by itself: each client connection gets one kept-alive connection to the
// upstream, request and response parts are relayed as NIOHTTP1 decodes them, and nothing else happens (no
// routing, no header rewriting, no recording, no flow control beyond what one small response needs). It is a
// measuring stick for bench/http_floor.sh, not a proxy to use.
import NIOCore
import NIOHTTP1
import NIOPosix

/// Server to client: response parts go back as they arrive.
final class ResponseRelay: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let client: Channel

    init(client: Channel) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): client.write(HTTPServerResponsePart.head(head), promise: nil)
        case .body(let body): client.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
        case .end(let trailers): client.writeAndFlush(HTTPServerResponsePart.end(trailers), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.close(promise: nil)
    }
}

/// Client to server: the first request part opens the upstream connection; parts read before it is up wait.
final class RequestRelay: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    let upstreamHost: String
    let upstreamPort: Int
    private var upstream: Channel?
    private var waiting: [HTTPClientRequestPart] = []
    private var connecting = false

    init(upstreamHost: String, upstreamPort: Int) {
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch unwrapInboundIn(data) {
        case .head(let head): part = .head(head)
        case .body(let body): part = .body(.byteBuffer(body))
        case .end(let trailers): part = .end(trailers)
        }
        if let upstream {
            if case .end = part { upstream.writeAndFlush(part, promise: nil) } else { upstream.write(part, promise: nil) }
            return
        }
        waiting.append(part)
        guard !connecting else { return }
        connecting = true
        let client = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseRelay(client: client))
                }
            }
            .connect(host: upstreamHost, port: upstreamPort)
            .whenComplete { result in
                let relay = loopBound.value
                switch result {
                case .success(let channel):
                    relay.upstream = channel
                    for part in relay.waiting { channel.write(part, promise: nil) }
                    relay.waiting = []
                    channel.flush()
                case .failure:
                    client.close(promise: nil)
                }
            }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let listenPort = Int(arguments[1]), let upstreamPort = Int(arguments[3]) else {
    print("usage: nioproxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT")
    exit(2)
}
let upstreamHost = arguments[2]
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
            try channel.pipeline.syncOperations.addHandler(RequestRelay(upstreamHost: upstreamHost, upstreamPort: upstreamPort))
        }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
