import Foundation
import NIOSSL
import SluiceCore
import SluiceTLS

/// What the HTTP proxies need to intercept TLS: Sluice's CA and its minted leaves, the context for talking TLS to
/// servers, and the hosts left alone.
public struct TLSInterception: Sendable {
    public let authority: CertificateAuthority
    let leaves: LeafCertificateCache
    let upstreamContext: NIOSSLContext
    let passthrough: [HostPattern]

    /// Loads (or on first run creates) the CA in `<data-dir>/ca/`, with minted leaves cached in `ca/leaves/`.
    public static func load(_ configuration: Configuration) throws(TLSSetupError) -> TLSInterception {
        let directory = (configuration.dataDirectory as NSString).appendingPathComponent("ca")
        let authority = try CertificateAuthority.loadOrCreate(directory: directory)
        let leaves = try LeafCertificateCache(authority: authority, directory: (directory as NSString).appendingPathComponent("leaves"))
        var patterns: [HostPattern] = []
        for text in configuration.tlsPassthrough {
            guard let pattern = HostPattern(text) else {
                throw TLSSetupError("tls.passthrough: '\(text)' is not a host pattern (example.com, *.example.com or *)")
            }
            patterns.append(pattern)
        }
        let upstreamContext = try UpstreamTLS.clientContext(verify: !configuration.insecureUpstream, extraTrustRootsPEMFile: configuration.upstreamCA)
        return TLSInterception(authority: authority, leaves: leaves, upstreamContext: upstreamContext, passthrough: patterns)
    }

    func isPassthrough(_ host: String) -> Bool {
        HostPattern.matches(host, any: passthrough)
    }
}
