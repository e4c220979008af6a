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
    let server: TunnelServer
    let target: RequestTarget
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
            let sniffer = ClientHelloSniffer(completionTimeout: .fromSeconds(connection.configuration.timeouts.requestHead)) { peek, bytes in
                self.decide(peek, bytes)
            }
            try operations.addHandler(sniffer, position: .after(early))
            early.release()
            sniffer.start()
        } catch {
            server.release()
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
            if let tls, connection.spec.options["tls"] != "passthrough", !tls.isPassthrough(name) {
                intercept(serverName: name, tls: tls)
            } else {
                relay(reason: nil)
            }
        case .malformed(let reason):
            refuse("client sent broken TLS instead of a ClientHello: \(reason)")
        }
    }

    /// Relays the tunnel's bytes as they are, recorded as a TCP flow, over a connection of its own: the one made
    /// for CONNECT, or a new one when the tunnel was answered from the pool.
    private func relay(reason: String?) {
        switch server {
        case .connected(let channel, _):
            relay(to: channel)
        case .pooled:
            server.release()
            let client = connection.channel
            connection.connect(to: target.endpoint).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let channel) where client.isActive:
                    relay(to: channel)
                case .success(let channel):
                    channel.close(promise: nil)
                case .failure(let error):
                    if let recorder = connection.openFlow(kind: .tcp, server: target.endpoint) {
                        recorder.failed(.connect, "cannot connect to \(target.endpoint): \(describe(error))")
                        recorder.finish()
                    }
                    client.close(promise: nil)
                }
            }
        }
    }

    private func relay(to server: Channel) {
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
        let sniffer: ClientHelloSniffer
        do {
            let context = try tls.leaves.serverContext(forHost: serverName)
            let operations = client.pipeline.syncOperations
            sniffer = try operations.handler(type: ClientHelloSniffer.self)
            let closer = TLSSocketCloser()
            try operations.addHandler(closer, position: .after(sniffer))
            try operations.addHandler(NIOSSLServerHandler(context: context), position: .after(closer))
        } catch {
            refuse("cannot intercept TLS for \(serverName): \(error)")
            return
        }
        var tunnelTarget = target
        tunnelTarget.host = serverName
        let upstream = tunnelUpstream(for: Upstream.Key(endpoint: target.endpoint, tlsServerName: serverName), tls: tls)
        do {
            let handler = HTTPProxyHandler(
                connection: connection, tls: tls,
                tunnel: InterceptedTunnel(target: tunnelTarget, serverName: serverName, endpoint: target.endpoint),
                tunnelUpstream: upstream
            )
            try HTTPProxyHandler.configureClientPipeline(client, handler: handler)
            sniffer.release()
            client.read()
        } catch {
            upstream?.close()
            refuse("cannot intercept TLS for \(serverName): \(error)", serverTaken: true)
        }
    }

    /// The server connection for an intercepted TLS tunnel to `key`: an idle one from the pool, or the one made
    /// for CONNECT with its handshake started now. None when the tunnel was answered from the pool with a
    /// connection for another name: the first request connects.
    private func tunnelUpstream(for key: Upstream.Key, tls: TLSInterception) -> TunnelUpstream? {
        switch server {
        case .pooled(let pooled) where pooled.key == key:
            return .pooled(pooled)
        case .pooled:
            server.release()
            return UpstreamPool.current.take(key).map(TunnelUpstream.pooled)
        case .connected(let channel, let connectMilliseconds):
            if UpstreamPool.shares(connection), let pooled = UpstreamPool.current.take(key) {
                // A connection to this server is idle already: no second handshake, and the new one is not needed.
                channel.close(promise: nil)
                return .pooled(pooled)
            }
            return .establishing(PendingUpstream(channel, key: key, connectMilliseconds: connectMilliseconds, tls: tls.upstreamContext))
        }
    }

    /// The HTTP proxy inside a tunnel that carries plain HTTP.
    private func interceptHTTP() {
        let client = connection.channel
        var upstream: TunnelUpstream?
        switch server {
        case .connected(let channel, let connectMilliseconds): upstream = .connected(channel, connectMilliseconds: connectMilliseconds)
        case .pooled: server.release()  // a TLS connection: of no use to plain HTTP
        }
        do {
            let handler = HTTPProxyHandler(
                connection: connection, tls: tls,
                tunnel: InterceptedTunnel(target: plainTarget, serverName: target.host, endpoint: target.endpoint),
                tunnelUpstream: upstream
            )
            try HTTPProxyHandler.configureClientPipeline(client, handler: handler)
            try client.pipeline.syncOperations.handler(type: ClientHelloSniffer.self).release()
            client.read()
        } catch {
            upstream?.close()
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
    /// `serverTaken`: the server connection is no longer this setup's to release.
    private func refuse(_ message: String, serverTaken: Bool = false) {
        let client = connection.channel
        if let recorder = connection.openFlow(kind: .tcp, server: target.endpoint) {
            recorder.failed(.client, message)
            recorder.finish()
        }
        if !serverTaken { server.release() }
        let alert = ByteBuffer(bytes: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])
        if let sniffer = try? client.pipeline.syncOperations.handler(type: ClientHelloSniffer.self) {
            client.pipeline.syncOperations.removeHandler(sniffer, promise: nil)
        }
        client.writeAndFlush(alert).whenComplete { _ in client.close(promise: nil) }
    }
}

/// What a CONNECT tunnel has of its server when it answers `200`.
enum TunnelServer {
    /// A TCP connection made for this tunnel.
    case connected(Channel, connectMilliseconds: Double)
    /// An idle TLS connection to the server from the `UpstreamPool`: the server is there, and no new connection
    /// was made.
    case pooled(Upstream)

    /// Not needed after all: a connection of its own is closed, a pooled one goes back.
    func release() {
        switch self {
        case .connected(let channel, _): channel.close(promise: nil)
        case .pooled(let upstream): UpstreamPool.current.put(upstream)
        }
    }
}
