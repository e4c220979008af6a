import NIOCore

/// A range of TCP ports as the operator writes it, `LOW-HIGH` (`10000-20000`) or one port: where the control API
/// opens a session's proxies (`api.proxy_ports`), a transparent target's ports, the ports the rules redirect.
public struct PortRange: Sendable, Equatable, CustomStringConvertible {
    public let lower: Int
    public let upper: Int

    /// - Precondition: `1 <= lower <= upper <= 65535`; `init(parsing:)` checks text.
    public init(_ lower: Int, _ upper: Int) {
        self.lower = lower
        self.upper = upper
    }

    /// - Returns: nil unless `text` is `LOW-HIGH` or `PORT` with ports from 1 to 65535 and LOW <= HIGH.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        // Digits only: `Int("+5")` would take a sign, and a negative port must not pass as a range's dash.
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) && $0.count <= 5 }),
            let lower = Int(parts[0]), let upper = Int(parts[parts.count - 1]), 1 <= lower, lower <= upper, upper <= 65535
        else { return nil }
        self.init(lower, upper)
    }

    public var count: Int { upper - lower + 1 }

    public func contains(_ port: Int) -> Bool { lower <= port && port <= upper }

    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

    /// What a bad `api.proxy_ports` value is told.
    public static let expected = "expected LOW-HIGH, ports from 1 to 65535 with LOW <= HIGH (e.g. 10000-20000)"
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension Configuration {
    /// Checks `api.proxy_host`: an IP address to bind a session's proxies to (a name would be resolved at each bind,
    /// and could change under a running Sluice).
    static func proxyHostProblem(_ host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil
            ? "expected an IP address to bind session proxies to (127.0.0.1, ::1, 0.0.0.0), got '\(host)'" : nil
    }
}
