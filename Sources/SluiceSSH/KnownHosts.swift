import Crypto
import Foundation
import NIOSSH

/// The target host keys Sluice trusts, in OpenSSH's `known_hosts` format, so operators can copy entries from their
/// own `~/.ssh/known_hosts` (plain or hashed names, `[host]:port` for ports other than 22, `@revoked` markers).
///
/// Parsing and lookup are pure; `append` is the one write (trust on first use).
public struct KnownHosts: Sendable {
    struct Entry: Sendable {
        enum Names: Sendable {
            /// Comma-separated patterns; `*` and `?` wildcards, `!` negation.
            case patterns([String])
            /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
            case hashed(salt: Data, hash: Data)
        }
        var names: Names
        var revoked: Bool
        /// The key as OpenSSH writes it: its type and its wire-format blob, compared as bytes, so keys of types
        /// swift-nio-ssh cannot parse (RSA) still count.
        var keyType: String
        var keyBlob: Data
        var line: Int
    }

    /// What the file says about a key a target presented.
    public enum Verdict: Equatable, Sendable {
        case trusted
        /// No entry names this host.
        case unknown
        /// Entries name this host, none with this key: it changed, or someone is in the middle.
        case changed(knownLine: Int)
        case revoked(line: Int)
    }

    private var entries: [Entry] = []
    /// Lines that could not be read (a typo, a certificate authority): skipped, and counted so a lookup that finds
    /// nothing can say why. Keys of types swift-nio-ssh cannot use (RSA) are read: they still say the host has a
    /// key, so a different one presented is a change.
    public private(set) var skippedLines: [Int] = []

    public init() {}

    public init(text: String) {
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            var revoked = false
            if let marker = fields.first, marker.hasPrefix("@") {
                // Certificate authorities are not supported (nio-ssh's client takes plain host keys here): skip them.
                guard marker == "@revoked" else {
                    skippedLines.append(offset + 1)
                    continue
                }
                revoked = true
                fields.removeFirst()
            }
            guard fields.count >= 3, let names = Self.names(fields[0]), let blob = Data(base64Encoded: fields[2]), !blob.isEmpty
            else {
                skippedLines.append(offset + 1)
                continue
            }
            entries.append(Entry(names: names, revoked: revoked, keyType: fields[1], keyBlob: blob, line: offset + 1))
        }
    }

    /// The name OpenSSH files a target under: `host` on port 22, `[host]:port` elsewhere.
    public static func hostName(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    public func check(_ key: NIOSSHPublicKey, host: String, port: Int) -> Verdict {
        let name = Self.hostName(host: host, port: port)
        let (keyType, keyBlob) = Self.typeAndBlob(of: key)
        var firstKnown: Int?
        for entry in entries where Self.matches(entry.names, name) {
            if entry.keyType == keyType && entry.keyBlob == keyBlob {
                if entry.revoked { return .revoked(line: entry.line) }
                return .trusted
            }
            if !entry.revoked, firstKnown == nil { firstKnown = entry.line }
        }
        if let firstKnown { return .changed(knownLine: firstKnown) }
        return .unknown
    }

    /// One `known_hosts` line for `key` at the target.
    public static func line(for key: NIOSSHPublicKey, host: String, port: Int) -> String {
        "\(hostName(host: host, port: port)) \(String(openSSHPublicKey: key))"
    }

    /// `SHA256:…` (unpadded base64 of the SHA-256 of the key blob), as `ssh` and `ssh-keygen -l` print it.
    public static func fingerprint(of key: NIOSSHPublicKey) -> String {
        let digest = Data(SHA256.hash(data: typeAndBlob(of: key).blob)).base64EncodedString()
        return "SHA256:" + digest.replacingOccurrences(of: "=", with: "")
    }

    /// A key's type name and wire-format blob, from its OpenSSH text form.
    static func typeAndBlob(of key: NIOSSHPublicKey) -> (type: String, blob: Data) {
        let parts = String(openSSHPublicKey: key).split(separator: " ")
        guard parts.count >= 2, let blob = Data(base64Encoded: String(parts[1])) else { return ("?", Data()) }
        return (String(parts[0]), blob)
    }

    private static func names(_ field: String) -> Entry.Names? {
        if field.hasPrefix("|1|") {
            let parts = field.dropFirst(3).split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 2, let salt = Data(base64Encoded: String(parts[0])),
                let hash = Data(base64Encoded: String(parts[1]))
            else { return nil }
            return .hashed(salt: salt, hash: hash)
        }
        let patterns = field.split(separator: ",").map(String.init)
        return patterns.isEmpty ? nil : .patterns(patterns)
    }

    private static func matches(_ names: Entry.Names, _ name: String) -> Bool {
        switch names {
        case .hashed(let salt, let hash):
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
            return Data(mac) == hash
        case .patterns(let patterns):
            var matched = false
            for pattern in patterns {
                if pattern.hasPrefix("!") {
                    if glob(Array(pattern.dropFirst().lowercased().utf8), Array(name.lowercased().utf8)) { return false }
                } else if glob(Array(pattern.lowercased().utf8), Array(name.lowercased().utf8)) {
                    matched = true
                }
            }
            return matched
        }
    }

    /// OpenSSH's `match_pattern`: `*` any run, `?` any one character. Iterative, so a hostile pattern costs
    /// O(pattern × name) at worst.
    static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0
        var t = 0
        var star: Int?
        var resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
