import Crypto
import Foundation
import NIOSSH
import SluiceTLS

/// Sluice's own SSH host key, the one clients see: Ed25519 (swift-nio-ssh signs with no RSA), made on first run.
///
/// Stored as `<data-dir>/ssh_host_ed25519_key` (0600, the 32-byte seed in base64 on one line) beside
/// `ssh_host_ed25519_key.pub` (0600 too) in OpenSSH's format, which operators add to their clients' known_hosts.
public struct SSHHostKey: Sendable {
    public let privateKey: Curve25519.Signing.PrivateKey
    /// The public key as an OpenSSH `known_hosts` / `authorized_keys` entry: `ssh-ed25519 AAAA…`.
    public let openSSHPublicKey: String
    /// `SHA256:…`, as `ssh` prints it when it asks whether to trust a host.
    public let fingerprint: String

    public static let fileName = "ssh_host_ed25519_key"

    init(privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKey = privateKey
        let publicKey = NIOSSHPrivateKey(ed25519Key: privateKey).publicKey
        self.openSSHPublicKey = String(openSSHPublicKey: publicKey)
        self.fingerprint = KnownHosts.fingerprint(of: publicKey)
    }

    public var nioKey: NIOSSHPrivateKey { NIOSSHPrivateKey(ed25519Key: privateKey) }

    /// Reads the key from `directory`, creating it (and its `.pub`) when there is none.
    public static func loadOrCreate(in directory: String) throws(TLSSetupError) -> SSHHostKey {
        try SecureFile.ensureDirectory(directory)
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let existing = try SecureFile.readFile(path, requirePrivate: true) {
            return try parse(existing, path: path)
        }
        let key = SSHHostKey(privateKey: Curve25519.Signing.PrivateKey())
        let text = key.privateKey.rawRepresentation.base64EncodedString() + "\n"
        guard try SecureFile.createPrivate(path, contents: Array(text.utf8)) else {
            // Another Sluice made one between our read and our create: use theirs.
            guard let raced = try SecureFile.readFile(path, requirePrivate: true) else {
                throw TLSSetupError("\(path) vanished while it was being created")
            }
            return try parse(raced, path: path)
        }
        // 0600 like everything in the data directory, though it is no secret: `cat` it into clients' known_hosts.
        try SecureFile.writeAtomically(path + ".pub", contents: Array((key.openSSHPublicKey + " sluice\n").utf8), mode: 0o600)
        return key
    }

    static func parse(_ bytes: [UInt8], path: String) throws(TLSSetupError) -> SSHHostKey {
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let seed = Data(base64Encoded: text), seed.count == 32,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        else {
            throw TLSSetupError("\(path) is not a Sluice SSH host key (one line: a 32-byte Ed25519 seed in base64); move it away and Sluice makes a new one")
        }
        return SSHHostKey(privateKey: key)
    }
}
