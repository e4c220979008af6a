import NIOCore
import NIOSSL
import SluiceModel

/// Sluice's own TLS to a PostgreSQL server (`tls=intercept`): an SSLRequest, the server's one-byte answer, then a TLS
/// handshake verified like any of Sluice's upstream connections, all before the relay starts. The server must
/// answer `S`; `N` (TLS off on the server) ends the connection, since the listener asked for TLS on that leg.
enum PostgresUpstreamTLS {
    /// Negotiates TLS on a freshly connected server channel (reads off, an `EarlyInput` in its pipeline). The
    /// future succeeds once the TLS handler is in place (its handshake runs with the first bytes the relay sends).
    static func start(on server: Channel, context: NIOSSLContext, serverHostname: String?) -> EventLoopFuture<Void> {
        let promise = server.eventLoop.makePromise(of: Void.self)
        do {
            try server.pipeline.syncOperations.addHandler(
                SSLAnswerReader(promise: promise, context: context, serverHostname: serverHostname), position: .first
            )
        } catch {
            promise.fail(error)
        }
        return promise.futureResult
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends the SSLRequest and reads the single answer byte, then gives way to the TLS client handler.
    private final class SSLAnswerReader: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer

        private let promise: EventLoopPromise<Void>
        private let tlsContext: NIOSSLContext
        private let serverHostname: String?
        private var done = false

        init(promise: EventLoopPromise<Void>, context: NIOSSLContext, serverHostname: String?) {
            self.promise = promise
            self.tlsContext = context
            self.serverHostname = serverHostname
        }

        func handlerAdded(context: ChannelHandlerContext) {
            var request = ByteBuffer()
            request.writeInteger(Int32(8))
            request.writeInteger(Int32(80_877_103))
            context.writeAndFlush(NIOAny(request), promise: nil)
            context.read()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !done else { return }
            done = true
            let answer = unwrapInboundIn(data)
            guard answer.readableBytes == 1, answer.getInteger(at: answer.readerIndex, as: UInt8.self) == UInt8(ascii: "S") else {
                let reason: String
                switch answer.getInteger(at: answer.readerIndex, as: UInt8.self) {
                case UInt8(ascii: "N"): reason = "the server does not accept TLS (the listener's tls=intercept needs it)"
                case UInt8(ascii: "S"): reason = "the server sent data behind its TLS go-ahead (refused: CVE-2021-23222)"
                default: reason = "the server did not answer the SSLRequest with S or N"
                }
                promise.fail(Refused(description: reason))
                return
            }
            do {
                let handler = try NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname)
                let operations = context.pipeline.syncOperations
                try operations.addHandler(handler, position: .first)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                promise.succeed(())
            } catch {
                promise.fail(error)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done {
                done = true
                promise.fail(Refused(description: "the server closed the connection before answering the SSLRequest"))
            }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if !done {
                done = true
                promise.fail(error)
            }
            context.fireErrorCaught(error)
        }
    }
}
