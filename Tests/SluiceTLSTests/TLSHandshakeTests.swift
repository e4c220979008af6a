import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SluiceTestSupport
import Testing

@testable import SluiceTLS

/// Echoes every byte back: the server side of the loopback test.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

struct EchoResult: Equatable {
    var echoed: String
    var negotiatedProtocol: String?
}

private struct ConnectionClosedEarly: Error {}
private struct TimedOut: Error {}

/// Sends a message once connected and completes when it has come back (or the connection fails).
private final class EchoClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let message: String
    private let promise: EventLoopPromise<EchoResult>
    private var received = ""
    private var negotiatedProtocol: String?

    init(message: String, promise: EventLoopPromise<EchoResult>) {
        self.message = message
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        // NIOSSL buffers this until the handshake completes.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: message)), promise: nil)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent {
            negotiatedProtocol = negotiated
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        if received.utf8.count >= message.utf8.count {
            promise.succeed(EchoResult(echoed: received, negotiatedProtocol: negotiatedProtocol))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ConnectionClosedEarly())  // Ignored if the promise already completed.
    }
}

@Suite(.ownThread) struct TLSHandshakeTests {
    /// Runs a loopback TLS echo: server presents the leaf minted for `leafHost`, client connects as `serverName`.
    func echo(leafHost: String, serverName: String, clientContext: NIOSSLContext, cache: LeafCertificateCache)
        async throws -> EchoResult
    {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverContext = try cache.serverContext(forHost: leafHost)
        do {
            let server = try await ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
                        try channel.pipeline.syncOperations.addHandler(EchoHandler())
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            let address = try #require(server.localAddress)
            let promise = group.next().makePromise(of: EchoResult.self)
            let timeout = group.next().scheduleTask(in: .seconds(20)) { promise.fail(TimedOut()) }
            let client = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try UpstreamTLS.clientHandler(context: clientContext, serverName: serverName)
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHandler(
                            EchoClientHandler(message: "hello sluice", promise: promise))
                    }
                }
                .connect(to: address)
                .get()
            let result: Result<EchoResult, any Error>
            do {
                result = .success(try await promise.futureResult.get())
            } catch {
                result = .failure(error)
            }
            timeout.cancel()
            try? await client.close().get()
            try? await server.close().get()
            try await group.shutdownGracefully()
            return try result.get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    @Test func handshakeSucceedsWithTheCATrusted() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: temp.path + "/leaves")
        let client = try UpstreamTLS.clientContext(verify: true, extraTrustRootsPEMFile: authority.certificatePath)
        let result = try await echo(
            leafHost: "test.local", serverName: "test.local", clientContext: client, cache: cache)
        #expect(result == EchoResult(echoed: "hello sluice", negotiatedProtocol: "http/1.1"))
    }

    @Test func ipLiteralIsVerifiedAgainstTheIPSAN() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: nil)
        let client = try UpstreamTLS.clientContext(verify: true, extraTrustRootsPEMFile: authority.certificatePath)
        let result = try await echo(leafHost: "127.0.0.1", serverName: "127.0.0.1", clientContext: client, cache: cache)
        #expect(result.echoed == "hello sluice")
    }

    @Test func handshakeFailsWithoutTheCA() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: nil)
        let client = try UpstreamTLS.clientContext(verify: true, extraTrustRootsPEMFile: nil)
        await #expect(throws: NIOSSLError.self) {
            _ = try await echo(leafHost: "test.local", serverName: "test.local", clientContext: client, cache: cache)
        }
    }

    @Test func handshakeFailsForTheWrongName() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: nil)
        let client = try UpstreamTLS.clientContext(verify: true, extraTrustRootsPEMFile: authority.certificatePath)
        await #expect(throws: (any Error).self) {
            _ = try await echo(leafHost: "test.local", serverName: "other.local", clientContext: client, cache: cache)
        }
    }

    @Test func insecureUpstreamAcceptsAnUntrustedCertificate() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: nil)
        let client = try UpstreamTLS.clientContext(verify: false, extraTrustRootsPEMFile: nil)
        let result = try await echo(
            leafHost: "test.local", serverName: "test.local", clientContext: client, cache: cache)
        #expect(result.echoed == "hello sluice")
    }

    @Test func missingTrustRootsFileIsAClearError() throws {
        let error = #expect(throws: TLSSetupError.self) {
            try UpstreamTLS.clientContext(verify: true, extraTrustRootsPEMFile: "/nonexistent/roots.pem")
        }
        #expect(error?.message.hasPrefix("cannot load trust roots from /nonexistent/roots.pem") == true)
    }
}
