import SluiceCore

// The listen schemes SluiceHTTP serves (`HTTPProxyModule`). In a file of their own, so the HTTP/1 fuzz targets,
// which compile `ExchangePlan` from its source, can have them too.
extension ListenScheme {
    /// Explicit HTTP(S) proxy: absolute-form requests and CONNECT tunnels. `?tls=passthrough` relays every tunnel's
    /// TLS untouched (as `tls.passthrough` does for the hosts it lists); `intercept`, the default, terminates it.
    public static let http = ListenScheme(name: "http", target: .none, options: ["tls": ["intercept", "passthrough"]])
    /// Reverse proxy: every request goes to one backend (`=>http://` or `=>https://`).
    public static let reverseHTTP = ListenScheme(name: "reverse+http", target: .url)
}
