import Foundation
import NIOCore
import NIOSSL
import SluiceCore
import SluiceModel
import SluiceTLS

/// A CONNECT tunnel after its `200`: waits for the client's first bytes and then intercepts TLS (a minted
/// certificate towards the client, an HTTP proxy inside) or relays the bytes untouched as a TCP flow.
struct TunnelSetup {
    let connection: ClientConnection
    let server: Channel
    let target: RequestTarget
    let connectMilliseconds: Double
    let tls: TLSInterception?

    /// The client pipeline holds only an `EarlyInput` with whatever came behind the CONNECT request.
    func start() {
        let client = connection.channel
        do {
            let operations = client.pipeline.syncOperations
            let early = try operations.handler(type: EarlyInput.self)
            guard tls != nil else {
                relay(reason: nil)
                return
            }
            let sniffer = ClientHelloSniffer { peek, bytes in self.decide(peek, bytes) }
            try operations.addHandler(sniffer, position: .after(early))
            early.release()
            sniffer.start()
        } catch {
            server.close(promise: nil)
            client.close(promise: nil)
        }
    }

    private func decide(_ peek: ClientHelloPeek, _ bytes: ByteBuffer?) {
        switch peek {
        case .notTLS where bytes.map(Self.looksLikeHTTP) == true:
            // Plain HTTP through CONNECT, as clients send ws:// through a proxy: proxied and recorded like any.
            interceptHTTP()
        case .needMoreData, .notTLS:
            relay(reason: nil)
        case .clientHello(let hello):
            let name = hello.serverName ?? target.host
            if let tls, !tls.isPassthrough(name) {
                intercept(serverName: name, tls: tls)
            } else {
                relay(reason: nil)
            }
        case .malformed(let reason):
            refuse("client sent broken TLS instead of a ClientHello: \(reason)")
        }
    }

    /// Relays the tunnel's bytes as they are, recorded as a TCP flow.
    private func relay(reason: String?) {
        let client = connection.channel
        guard let recorder = connection.openFlow(kind: .tcp, server: target.endpoint) else {
            server.close(promise: nil)
            client.close(promise: nil)
            return
        }
        let loopBound = NIOLoopBound(recorder, eventLoop: connection.eventLoop)
        client.closeFuture.whenComplete { _ in loopBound.value.sideClosed(.client) }
        server.closeFuture.whenComplete { _ in loopBound.value.sideClosed(.server) }
        do {
            let operations = client.pipeline.syncOperations
            if let sniffer = try? operations.handler(type: ClientHelloSniffer.self) {
                try operations.addHandler(EarlyInput(), position: .after(sniffer))
                sniffer.release()
            }
            connection.splice(with: server, recorder: recorder)
        } catch {
            recorder.failed(.proxy, "cannot set up the tunnel: \(describe(error))")
            server.close(promise: nil)
            client.close(promise: nil)
        }
    }

    /// Terminates the client's TLS with a certificate for `serverName` and proxies the HTTP inside; the server
    /// connection made for CONNECT becomes the first request's upstream, its TLS handshake started now, beside the
    /// client's.
    private func intercept(serverName: String, tls: TLSInterception) {
        let client = connection.channel
        do {
            let context = try tls.leaves.serverContext(forHost: serverName)
            let operations = client.pipeline.syncOperations
            let sniffer = try operations.handler(type: ClientHelloSniffer.self)
            try operations.addHandler(NIOSSLServerHandler(context: context), position: .after(sniffer))
            var tunnelTarget = target
            tunnelTarget.host = serverName
            let key = Upstream.Key(endpoint: target.endpoint, tlsServerName: serverName)
            let upstream: TunnelUpstream
            if UpstreamPool.shares(connection), let pooled = UpstreamPool.current.take(key) {
                // A connection to this server is idle already: no second handshake, and the new one is not needed.
                server.close(promise: nil)
                upstream = .pooled(pooled)
            } else {
                upstream = .establishing(
                    PendingUpstream(server, key: key, connectMilliseconds: connectMilliseconds, tls: tls.upstreamContext)
                )
            }
            let handler = HTTPProxyHandler(
                connection: connection, tls: tls,
                tunnel: InterceptedTunnel(target: tunnelTarget, serverName: serverName, endpoint: target.endpoint),
                tunnelUpstream: upstream
            )
            try HTTPProxyHandler.configureClientPipeline(client, handler: handler)
            sniffer.release()
            client.read()
        } catch {
            refuse("cannot intercept TLS for \(serverName): \(error)")
        }
    }

    /// The HTTP proxy inside a tunnel that carries plain HTTP.
    private func interceptHTTP() {
        let client = connection.channel
        do {
            let handler = HTTPProxyHandler(
                connection: connection, tls: tls,
                tunnel: InterceptedTunnel(target: plainTarget, serverName: target.host, endpoint: target.endpoint),
                tunnelUpstream: .connected(server, connectMilliseconds: connectMilliseconds)
            )
            try HTTPProxyHandler.configureClientPipeline(client, handler: handler)
            try client.pipeline.syncOperations.handler(type: ClientHelloSniffer.self).release()
            client.read()
        } catch {
            server.close(promise: nil)
            client.close(promise: nil)
        }
    }

    private var plainTarget: RequestTarget {
        RequestTarget(scheme: "http", host: target.host, port: target.port, path: "/")
    }

    /// `GET `, `POST `...: an uppercase token and a space, as an HTTP/1.x request line starts.
    static func looksLikeHTTP(_ bytes: ByteBuffer) -> Bool {
        let view = bytes.readableBytesView.prefix(12)
        guard let space = view.firstIndex(of: UInt8(ascii: " ")), space > view.startIndex else { return false }
        return view[..<space].allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    /// Broken TLS from the client: a `decode_error` alert (RFC 8446 §6.2), a flow that records it, and a close.
    private func refuse(_ message: String) {
        let client = connection.channel
        if let recorder = connection.openFlow(kind: .tcp, server: target.endpoint) {
            recorder.failed(.client, message)
            recorder.finish()
        }
        server.close(promise: nil)
        let alert = ByteBuffer(bytes: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])
        if let sniffer = try? client.pipeline.syncOperations.handler(type: ClientHelloSniffer.self) {
            client.pipeline.syncOperations.removeHandler(sniffer, promise: nil)
        }
        client.writeAndFlush(alert).whenComplete { _ in client.close(promise: nil) }
    }
}
