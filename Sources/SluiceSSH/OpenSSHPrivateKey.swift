import Crypto
import Foundation
import NIOSSH

/// Reads an OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`, as `ssh-keygen` writes it) into a key
/// swift-nio-ssh can sign with: Ed25519 or ECDSA P-256/P-384/P-521, unencrypted (Sluice runs unattended, so there
/// is nobody to type a passphrase; keep the file 0600).
///
/// Format: PROTOCOL.key in OpenSSH's sources: "openssh-key-v1\0", cipher, KDF, KDF options, the number of keys,
/// the public keys, then the private section (two equal check words, then per key its type and key material, a
/// comment, and padding).
enum OpenSSHPrivateKey {
    struct ParseError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func parse(_ text: String) throws -> NIOSSHPrivateKey {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN OPENSSH PRIVATE KEY-----"),
            let end = lines.firstIndex(of: "-----END OPENSSH PRIVATE KEY-----"), begin < end
        else {
            throw ParseError("not an OpenSSH private key (expected -----BEGIN OPENSSH PRIVATE KEY-----; convert with ssh-keygen -p -f FILE)")
        }
        guard let data = Data(base64Encoded: lines[(begin + 1)..<end].joined()) else {
            throw ParseError("the key's base64 is damaged")
        }
        var reader = Reader(Array(data))
        guard reader.take(15) == Array("openssh-key-v1\0".utf8) else { throw ParseError("not an openssh-key-v1 key") }
        let cipher = try reader.string()
        let kdf = try reader.string()
        _ = try reader.blob()  // KDF options
        guard cipher == "none", kdf == "none" else {
            throw ParseError("the key is encrypted (\(cipher)); Sluice needs it unencrypted: ssh-keygen -p -N '' -f FILE")
        }
        guard try reader.uint32() == 1 else { throw ParseError("the file holds more than one key") }
        _ = try reader.blob()  // the public key, repeated in the private section
        var secret = Reader(try reader.blob())
        guard try secret.uint32() == secret.uint32() else { throw ParseError("the key's check words differ (damaged)") }
        let type = try secret.string()
        switch type {
        case "ssh-ed25519":
            _ = try secret.blob()  // public
            let privateAndPublic = try secret.blob()
            guard privateAndPublic.count == 64 else { throw ParseError("an Ed25519 key of the wrong length") }
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: privateAndPublic.prefix(32))
            return NIOSSHPrivateKey(ed25519Key: key)
        case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
            _ = try secret.string()  // curve name
            _ = try secret.blob()  // public point
            let scalar = Array(try secret.blob().drop(while: { $0 == 0 }))  // an mpint: a leading zero for the sign
            switch type {
            case "ecdsa-sha2-nistp256":
                return NIOSSHPrivateKey(p256Key: try P256.Signing.PrivateKey(rawRepresentation: padded(scalar, to: 32)))
            case "ecdsa-sha2-nistp384":
                return NIOSSHPrivateKey(p384Key: try P384.Signing.PrivateKey(rawRepresentation: padded(scalar, to: 48)))
            default:
                return NIOSSHPrivateKey(p521Key: try P521.Signing.PrivateKey(rawRepresentation: padded(scalar, to: 66)))
            }
        default:
            throw ParseError("a \(type) key, which swift-nio-ssh cannot sign with (use ssh-keygen -t ed25519)")
        }
    }

    private static func padded(_ bytes: [UInt8], to length: Int) throws -> [UInt8] {
        guard bytes.count <= length else { throw ParseError("an ECDSA scalar too long for its curve") }
        return [UInt8](repeating: 0, count: length - bytes.count) + bytes
    }

    /// SSH wire encoding: big-endian lengths, strings prefixed by theirs. Every read is bounds-checked.
    struct Reader {
        private var buffer: [UInt8]
        private var offset = 0

        init(_ buffer: [UInt8]) { self.buffer = buffer }

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, buffer.count - offset >= count else { return nil }
            defer { offset += count }
            return Array(buffer[offset..<(offset + count)])
        }

        mutating func uint32() throws -> UInt32 {
            guard let word = take(4) else { throw ParseError("the key file is cut short") }
            return word.reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func blob() throws -> [UInt8] {
            let count = try uint32()
            guard count <= 1 << 20, let value = take(Int(count)) else { throw ParseError("the key file is cut short") }
            return value
        }

        mutating func string() throws -> String {
            String(decoding: try blob(), as: UTF8.self)
        }
    }
}
