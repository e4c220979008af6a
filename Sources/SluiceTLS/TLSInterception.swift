import Foundation
import NIOSSL
import SluiceModel

/// What a protocol needs to intercept TLS: Sluice's CA and its minted leaves, the context for talking TLS to
/// servers, and the hosts left alone. Here rather than in SluiceHTTP so that any protocol module (the database
/// proxies next) can terminate TLS without importing HTTP.
public struct TLSInterception: Sendable {
    public let authority: CertificateAuthority
    public let leaves: LeafCertificateCache
    /// For Sluice's own connections to servers: verified against the system's roots and any extra ones.
    public let upstreamContext: NIOSSLContext
    let passthrough: [HostPattern]

    /// Loads (or on first run creates) the CA in `<dataDirectory>/ca/`, with minted leaves cached in `ca/leaves/`.
    /// - Parameters:
    ///   - passthrough: host patterns (`tls.passthrough`) whose TLS is tunnelled untouched.
    ///   - verifyUpstream: false only for test servers (`--insecure-upstream`).
    ///   - upstreamCA: a PEM file of extra roots for servers' certificates.
    public static func load(
        dataDirectory: String, passthrough: [String], verifyUpstream: Bool, upstreamCA: String?
    ) throws(TLSSetupError) -> TLSInterception {
        do {
            // The data directory may not exist yet (`sluice ca` before any recording); private, like everything in it.
            try FileManager.default.createDirectory(
                atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw TLSSetupError("cannot create \(dataDirectory): \(describeFileError(error))")
        }
        let directory = (dataDirectory as NSString).appendingPathComponent("ca")
        let authority = try CertificateAuthority.loadOrCreate(directory: directory)
        let leaves = try LeafCertificateCache(authority: authority, directory: (directory as NSString).appendingPathComponent("leaves"))
        var patterns: [HostPattern] = []
        for text in passthrough {
            guard let pattern = HostPattern(text) else {
                throw TLSSetupError("tls.passthrough: '\(text)' is not a host pattern (example.com, *.example.com or *)")
            }
            patterns.append(pattern)
        }
        let upstreamContext = try UpstreamTLS.clientContext(verify: verifyUpstream, extraTrustRootsPEMFile: upstreamCA)
        return TLSInterception(authority: authority, leaves: leaves, upstreamContext: upstreamContext, passthrough: patterns)
    }

    /// Whether connections to `host` are tunnelled untouched (`tls.passthrough`).
    public func isPassthrough(_ host: String) -> Bool {
        HostPattern.matches(host, any: passthrough)
    }
}
