import Foundation
import SluiceModel

/// Who may use a listener: source-address allow and deny lists (CIDR) for every listener, and credentials for the
/// explicit HTTP proxy. Meant for a proxy left running on a jumphost; every refusal is recorded as a flow.
public struct AccessRules: Sendable, Equatable {
    /// Empty means every source is allowed (unless denied).
    public var allow: [CIDR] = []
    /// Checked first: a denied source is refused even when it is also allowed.
    public var deny: [CIDR] = []
    /// `user:password` pairs for `Proxy-Authorization: Basic`.
    public var users: [String] = []
    /// A shared token, accepted as `Proxy-Authorization: Bearer TOKEN` or as the password of any Basic user.
    public var token: String?

    public init() {}

    public var requiresProxyAuthentication: Bool { !users.isEmpty || token != nil }

    /// Nil when `address` may connect, else the reason it may not.
    public func refusal(for address: String) -> String? {
        guard !allow.isEmpty || !deny.isEmpty else { return nil }
        guard let bytes = CIDR.addressBytes(address) else { return "source \(address) is not an IP address" }
        if let rule = deny.first(where: { $0.contains(bytes) }) {
            return "source \(address) is denied (deny \(rule))"
        }
        if !allow.isEmpty, !allow.contains(where: { $0.contains(bytes) }) {
            return "source \(address) is not in the allow list"
        }
        return nil
    }

    /// Checks a `Proxy-Authorization` header value (RFC 7617 Basic, RFC 6750 Bearer).
    /// - Returns: nil when accepted, else why not (naming the user, never the password).
    public func authenticationFailure(_ header: String?) -> String? {
        guard requiresProxyAuthentication else { return nil }
        guard let header, let space = header.firstIndex(of: " ") else { return "proxy authentication required" }
        let scheme = header[..<space].lowercased()
        let credentials = header[header.index(after: space)...].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer":
            return token != nil && Self.constantTimeEqual(credentials, token ?? "") ? nil : "proxy token rejected"
        case "basic":
            guard let data = Data(base64Encoded: credentials), let pair = String(data: data, encoding: .utf8),
                let colon = pair.firstIndex(of: ":")
            else { return "malformed Basic credentials" }
            let user = String(pair[..<colon])
            let password = String(pair[pair.index(after: colon)...])
            if let token, Self.constantTimeEqual(password, token) { return nil }
            if users.contains(where: { Self.constantTimeEqual($0, pair) }) { return nil }
            return "proxy credentials rejected for user '\(user.prefix(64))'"
        default:
            return "unsupported proxy authentication scheme '\(scheme.prefix(20))'"
        }
    }

    /// Compares without stopping at the first difference, so timing does not reveal how much of a guess was right.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }
}

/// An address range: `10.0.0.0/8`, `192.168.1.7` (a single host), `fd00::/8`.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let network: [UInt8]
    public let prefixLength: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.addressBytes(String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        let length: Int
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...bits).contains(value) else { return nil }
            length = value
        } else {
            length = bits
        }
        network = bytes
        prefixLength = length
        description = text
    }

    func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        if network.count == 4, candidate.count == 16, candidate[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) {
            candidate = Array(candidate[12...])
        }
        guard candidate.count == network.count else { return false }
        var remaining = prefixLength
        for index in network.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if candidate[index] & mask != network[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The address's bytes (4 or 16), or nil when it is not an IP address.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        let host = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? text
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

extension AccessRules {
    /// `USER:PASSWORD` entries, one per line (blank lines and `#` comments skipped), from a file or the
    /// environment: credentials given on the command line would show in `ps`.
    public static func parseUsers(_ text: String, source: String) throws(ConfigurationError) -> [String] {
        var users: [String] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.contains(":"), !line.hasPrefix(":") else {
                throw ConfigurationError(source: source, line: number + 1, message: "expected USER:PASSWORD")
            }
            users.append(line)
        }
        guard !users.isEmpty else { throw ConfigurationError(source: source, line: nil, message: "no USER:PASSWORD line") }
        return users
    }

    public static func readUsers(file path: String) throws(ConfigurationError) -> [String] {
        try parseUsers(try readSecret(path), source: path)
    }

    /// The token in a file: its first line, without surrounding space.
    public static func readToken(file path: String) throws(ConfigurationError) -> String {
        let token = try readSecret(path).split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !token.isEmpty else { throw ConfigurationError(source: path, line: nil, message: "the token file is empty") }
        return token
    }

    private static func readSecret(_ path: String) throws(ConfigurationError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(source: path, line: nil, message: "cannot read: \(describeFileError(error))")
        }
    }
}
