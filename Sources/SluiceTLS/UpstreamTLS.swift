import NIOSSL

/// TLS towards the real server: Sluice is the client there, so it must verify the server like a browser would,
/// otherwise the proxy would silently downgrade every intercepted connection's security.
public enum UpstreamTLS {
    /// A client context that verifies servers against the system's default trust roots plus, when given, every
    /// certificate in `extraTrustRootsPEMFile` (for upstreams behind a private CA).
    ///
    /// - Parameter verify: false turns certificate verification off entirely.
    public static func clientContext(verify: Bool, extraTrustRootsPEMFile: String?) throws(TLSSetupError)
        -> NIOSSLContext
    {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // TLS 1.0/1.1 are deprecated (RFC 8996) and no longer offered by browsers, so Sluice does not offer them
        // upstream either.
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        // A server that never answers our close_notify must not hold a connection (or Sluice's exit) for 5 s.
        configuration.shutdownTimeout = .milliseconds(500)
        if verify {
            configuration.certificateVerification = .fullVerification
            configuration.trustRoots = .default
            if let file = extraTrustRootsPEMFile {
                // Loaded eagerly so a typo in the path is reported at startup, not on the first connection.
                let certificates: [NIOSSLCertificate]
                do {
                    certificates = try NIOSSLCertificate.fromPEMFile(file)
                } catch {
                    throw TLSSetupError("cannot load trust roots from \(file): \(error)")
                }
                guard !certificates.isEmpty else {
                    throw TLSSetupError("\(file) contains no PEM certificates")
                }
                configuration.additionalTrustRoots = [.certificates(certificates)]
            }
        } else {
            // INSECURE: the operator's `--insecure-upstream`. Any certificate is accepted, so anyone on the path to the
            // upstream can read and alter the traffic. Extra trust roots are pointless then and are ignored.
            configuration.certificateVerification = .none
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("cannot build the upstream TLS client context: \(error)")
        }
    }

    /// A client handler for a connection to `serverName` (host name or IP literal, brackets allowed).
    ///
    /// SNI carries host names only (RFC 6066), so for an IP literal none is sent; NIOSSL then checks the certificate
    /// against the connected peer's address, which is the address the client asked for.
    public static func clientHandler(context: NIOSSLContext, serverName: String) throws(TLSSetupError)
        -> NIOSSLClientHandler
    {
        var name = serverName
        if name.hasPrefix("[") && name.hasSuffix("]") && name.count >= 2 {
            name = String(name.dropFirst().dropLast())
        }
        let sniName: String? = ValidatedHost.ipAddressBytes(name) == nil ? name : nil
        do {
            return try NIOSSLClientHandler(context: context, serverHostname: sniName)
        } catch {
            throw TLSSetupError("cannot start TLS to \(String(reflecting: String(serverName.prefix(80)))): \(error)")
        }
    }
}
