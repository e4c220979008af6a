import NIOCore
import SluiceCore
import SluiceModel
import SluiceTLS

extension HTTPProxyModule {
    /// Behind a transparent listener: a plain HTTP/1 request line, or TLS (intercepted as the explicit proxy's
    /// CONNECT tunnels are, or passed through).
    public static var transparentProtocols: [TransparentProtocol] {
        [TransparentProtocol(scheme: .http, ports: plainPorts.union(tlsPorts), opening: .clientFirst(sniff))]
    }

    static let plainPorts: Set<Int> = [80, 8080]
    static let tlsPorts: Set<Int> = [443, 8443]

    /// What a transparent client's first bytes say about HTTP.
    ///
    /// TLS counts on the HTTPS ports from its record header on (`16 03`); elsewhere only a whole ClientHello whose
    /// ALPN offers HTTP does (an IMAPS or PostgreSQL direct-TLS client is no HTTP client, and is better relayed as
    /// bytes than intercepted).
    static func sniff(_ bytes: ByteBufferView, port: Int) -> SniffResult {
        guard let first = bytes.first else { return .needMoreData }
        guard first == 0x16 else { return requestLine(bytes) }
        switch ClientHelloParser.peek(bytes) {
        case .notTLS, .malformed:
            return .noMatch
        case .needMoreData:
            return tlsPorts.contains(port) && bytes.count >= 3 ? .match : .needMoreData
        case .clientHello(let hello):
            return tlsPorts.contains(port) || hello.alpn.contains(where: httpALPN.contains) ? .match : .noMatch
        }
    }

    static let httpALPN: Set<String> = ["http/1.1", "http/1.0", "h2"]

    /// An HTTP/1 request line's start (RFC 9112 §3): an upper-case method of at most 20 letters, one space, and a
    /// request target that begins as one does: `/` (origin form), `*`, or `http://` / `https://` (absolute form).
    static func requestLine(_ bytes: ByteBufferView) -> SniffResult {
        var index = bytes.startIndex
        var methodLength = 0
        while index < bytes.endIndex, bytes[index] >= UInt8(ascii: "A"), bytes[index] <= UInt8(ascii: "Z") {
            methodLength += 1
            guard methodLength <= 20 else { return .noMatch }
            index = bytes.index(after: index)
        }
        guard index < bytes.endIndex else { return .needMoreData }
        guard methodLength > 0, bytes[index] == UInt8(ascii: " ") else { return .noMatch }
        let target = bytes[bytes.index(after: index)...]
        guard let first = target.first else { return .needMoreData }
        if first == UInt8(ascii: "/") || first == UInt8(ascii: "*") { return .match }
        let lowered = target.prefix(8).map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
        for scheme in absoluteSchemes {
            if lowered.starts(with: scheme) { return .match }
            if scheme.starts(with: lowered) { return .needMoreData }
        }
        return .noMatch
    }

    private static let absoluteSchemes: [[UInt8]] = [Array("http://".utf8), Array("https://".utf8)]

    /// A transparent connection to `target`: connect first (as for CONNECT), then let `TunnelSetup` read the client's
    /// first bytes and intercept TLS, proxy plain HTTP, or relay anything else as bytes. A target that cannot be
    /// reached is a `tcp` flow with the connect error (there was no request to answer).
    func acceptTransparent(_ connection: ClientConnection, target: Endpoint) {
        let started = NIODeadline.now()
        let tls = self.tls
        connection.connect(to: target).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let server) where connection.channel.isActive:
                let tunnel = RequestTarget(scheme: "https", host: target.host, port: target.port, path: "/")
                let connected = TunnelServer.connected(server, connectMilliseconds: Upstream.milliseconds(since: started))
                TunnelSetup(connection: connection, server: connected, target: tunnel, tls: tls).start()
            case .success(let server):
                server.close(promise: nil)
            case .failure(let error):
                if let recorder = connection.openFlow(kind: .tcp, server: target) {
                    recorder.failed(.connect, "cannot connect to \(target): \(describe(error))")
                    recorder.finish()
                }
                connection.channel.close(promise: nil)
            }
        }
    }
}
