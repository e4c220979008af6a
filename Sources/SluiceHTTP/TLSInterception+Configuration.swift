import SluiceCore
import SluiceTLS

extension TLSInterception {
    /// The interception the configuration asks for: `data_dir`, `tls.passthrough`, `tls.insecure_upstream`,
    /// `tls.upstream_ca`.
    public static func load(_ configuration: Configuration) throws(TLSSetupError) -> TLSInterception {
        try load(
            dataDirectory: configuration.dataDirectory, passthrough: configuration.tlsPassthrough,
            verifyUpstream: !configuration.insecureUpstream, upstreamCA: configuration.upstreamCA
        )
    }
}
