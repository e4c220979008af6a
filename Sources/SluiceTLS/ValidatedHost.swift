#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import Crypto

/// A host name from the network (SNI, CONNECT line, Host header) after checking that it is safe to put in a file name
/// and a certificate SAN.
///
/// Those names are attacker-controlled: "../../etc/x" must never reach a path and a NUL or space must never reach a
/// certificate, so everything but letters, digits, '-', '.', '_' or an IP literal is refused rather than escaped.
struct ValidatedHost: Hashable, Sendable {
    /// Lowercased DNS name without a trailing dot, or the canonical text of an IP address.
    let name: String
    /// The 4 or 16 address bytes when the host is an IP literal; nil for DNS names.
    let ipAddress: [UInt8]?

    static let maxLength = 253
    /// File names Sluice itself uses, minus ".pem".
    static let reservedStems: Set<String> = ["leaf-key", "sluice-ca", "sluice-ca-key"]

    init(_ raw: String) throws(TLSSetupError) {
        // Cheap size check first so a megabyte of junk is not lowercased and scanned.
        guard raw.utf8.count <= Self.maxLength + 3 else {
            throw TLSSetupError("host name is \(raw.utf8.count) bytes, longer than \(Self.maxLength)")
        }
        var host = raw
        if host.hasPrefix("[") && host.hasSuffix("]") && host.count >= 2 {
            host = String(host.dropFirst().dropLast())  // "[::1]" as written in URLs and CONNECT lines.
        }
        if let bytes = Self.ipAddressBytes(host) {
            self.name = Self.canonicalText(bytes) ?? host.lowercased()
            self.ipAddress = bytes
            return
        }
        if host.hasSuffix(".") { host.removeLast() }  // "example.com." is the same name as "example.com".
        host = host.lowercased()
        guard !host.isEmpty else { throw TLSSetupError("empty host name") }
        guard host.utf8.count <= Self.maxLength else {
            throw TLSSetupError("host name is \(host.utf8.count) bytes, longer than \(Self.maxLength)")
        }
        let allowed = host.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
        }
        guard allowed else {
            throw TLSSetupError("refusing host name \(Self.quoted(raw)): only letters, digits, '-', '.', '_' allowed")
        }
        // Empty labels ("a..b", ".x") are not DNS names and would make odd file names such as "..pem".
        guard !host.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw TLSSetupError("refusing host name \(Self.quoted(raw)): empty label")
        }
        self.name = host
        self.ipAddress = nil
    }

    /// The file name (without extension) for this host's cached leaf. Never the name of a key or CA file (so a leaf
    /// directory shared with the CA directory cannot be made to overwrite them), and never longer than 200 bytes: a
    /// 253-byte name plus ".pem" would exceed NAME_MAX (255).
    var fileStem: String {
        if ipAddress != nil {
            // ':' is legal on Linux but not on every file system an operator may sync this directory to.
            return "ip-" + name.replacingColons()
        }
        if Self.reservedStems.contains(name) {
            return "_" + name
        }
        if name.utf8.count > 200 {
            // Keep a readable prefix; the hash keeps distinct long names apart (the SAN check on load would catch a
            // collision anyway, at the cost of re-minting).
            let digest = SHA256.hash(data: Array(name.utf8)).prefix(8).map(SecureFile.hex).joined()
            return String(name.prefix(180)) + "-" + digest
        }
        return name
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 literal (without brackets), or nil if `text` is not one.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        guard text.utf8.count <= 64, !text.utf8.contains(0) else { return nil }
        var v4 = [UInt8](repeating: 0, count: 4)
        if v4.withUnsafeMutableBytes({ inet_pton(AF_INET, text, $0.baseAddress) }) == 1 {
            return v4
        }
        var v6 = [UInt8](repeating: 0, count: 16)
        if v6.withUnsafeMutableBytes({ inet_pton(AF_INET6, text, $0.baseAddress) }) == 1 {
            return v6
        }
        return nil
    }

    /// inet_ntop's spelling, so "::0001" and "::1" share one cache entry and one file.
    private static func canonicalText(_ bytes: [UInt8]) -> String? {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { address in
            buffer.withUnsafeMutableBufferPointer { out in
                inet_ntop(family, address.baseAddress, out.baseAddress, socklen_t(out.count)) != nil
            }
        }
        guard ok else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A short, escaped rendering for error messages, since the raw name may hold control characters.
    private static func quoted(_ raw: String) -> String {
        String(reflecting: raw.count > 80 ? String(raw.prefix(80)) + "…" : raw)
    }
}

extension String {
    fileprivate func replacingColons() -> String {
        String(self.map { $0 == ":" ? "-" : $0 })
    }
}
