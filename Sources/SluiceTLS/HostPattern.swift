/// One entry of a passthrough list: hosts whose TLS Sluice relays untouched instead of intercepting (pinned apps,
/// banking, anything the operator must not break).
///
/// `*.example.com` matches every subdomain but not `example.com` itself (list both to cover both, as with
/// certificate wildcards); `example.com` matches exactly; `*` matches everything. Case-insensitive, and a trailing
/// dot is ignored.
public struct HostPattern: Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case any
        case exact(String)
        /// Stored with its leading dot (".example.com") so matching is a suffix test that cannot hit "badexample.com".
        case subdomains(String)
    }

    private let kind: Kind

    /// Nil for patterns that would silently never match: empty, or a '*' anywhere but as the whole pattern or the
    /// leading "*." label. A config loader reports those instead of ignoring them.
    public init?(_ pattern: String) {
        guard pattern != "*." else { return nil }  // Would otherwise normalise to "*" and match everything.
        let normalised = Self.normalise(pattern)
        if normalised == "*" {
            kind = .any
        } else if normalised.hasPrefix("*.") {
            let suffix = String(normalised.dropFirst(1))  // ".example.com"
            guard suffix.count > 1, !suffix.contains("*") else { return nil }
            kind = .subdomains(suffix)
        } else {
            guard !normalised.isEmpty, !normalised.contains("*") else { return nil }
            kind = .exact(normalised)
        }
    }

    public var description: String {
        switch kind {
        case .any: return "*"
        case .exact(let host): return host
        case .subdomains(let suffix): return "*" + suffix
        }
    }

    public func matches(_ host: String) -> Bool {
        let host = Self.normalise(host)
        switch kind {
        case .any:
            return true
        case .exact(let exact):
            return host == exact
        case .subdomains(let suffix):
            return host.count > suffix.count && host.hasSuffix(suffix)
        }
    }

    public static func matches(_ host: String, any patterns: [HostPattern]) -> Bool {
        patterns.contains { $0.matches(host) }
    }

    private static func normalise(_ text: String) -> String {
        var text = text.lowercased()
        if text.hasPrefix("[") && text.hasSuffix("]") && text.count >= 2 {
            text = String(text.dropFirst().dropLast())
        }
        if text.hasSuffix(".") && text != "." { text.removeLast() }
        return text
    }
}
