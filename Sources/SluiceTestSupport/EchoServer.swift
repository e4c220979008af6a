import NIOCore
import NIOPosix

/// A TCP server on loopback that writes back what it reads, for in-process end-to-end tests.
public final class EchoServer: Sendable {
    public let channel: Channel

    public var port: Int { channel.localAddress?.port ?? 0 }

    public init(group: EventLoopGroup) async throws {
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    public func close() async throws {
        try await channel.close()
    }

    private final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event {
                context.close(mode: .output, promise: nil)
            }
        }
    }
}
