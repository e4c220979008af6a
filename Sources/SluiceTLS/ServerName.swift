import NIOCore

/// The server name Sluice's TLS to a target sends (SNI) and checks its certificate against.
public enum ServerName {
    /// `host` when it is a name; nil for an IPv4 or IPv6 address, which SNI cannot carry (then only the
    /// certificate's chain is checked).
    public static func sni(for host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }
}
