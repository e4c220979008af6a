import Foundation
import NIOSSL
import SluiceCore
import SluiceModel
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
        do {
            // The data directory may not exist yet (`sluice ca` before any recording); private, like everything in it.
            try FileManager.default.createDirectory(
                atPath: configuration.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw TLSSetupError("cannot create \(configuration.dataDirectory): \(describeFileError(error))")
        }
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
