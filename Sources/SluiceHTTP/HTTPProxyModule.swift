import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceModel
import SluiceTLS

/// The HTTP proxies: the explicit proxy (`http://HOST:PORT`, absolute-form requests and CONNECT tunnels) and the
/// reverse proxy (`reverse+http://HOST:PORT=>http://backend:port`). One flow per exchange.
///
/// Behind a transparent listener, HTTP and TLS connections come as `http` specs with a target (the original
/// destination), which no operator can write: each is served as a CONNECT tunnel to that target would be.
public struct HTTPProxyModule: ProtocolModule {
    let tls: TLSInterception?

    /// - Parameter tls: Sluice's CA and TLS settings; without them CONNECT tunnels are relayed as bytes and
    ///   `https` backends cannot be reached.
    public init(tls: TLSInterception?) {
        self.tls = tls
    }

    public static var schemes: [ListenScheme] { [.http, .reverseHTTP] }

    public func accept(_ connection: ClientConnection) {
        if connection.spec.scheme == .http, let target = connection.spec.target {
            acceptTransparent(connection, target: target)
            return
        }
        do {
            let handler = HTTPProxyHandler(connection: connection, tls: tls)
            try HTTPProxyHandler.configureClientPipeline(connection.channel, handler: handler)
            try connection.channel.pipeline.syncOperations.handler(type: EarlyInput.self).release()
            handler.readClientIfWanted()
        } catch {
            connection.channel.close(promise: nil)
        }
    }
}
