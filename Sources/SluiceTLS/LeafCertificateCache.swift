import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import SwiftASN1
import X509

/// Mints, per intercepted host, a leaf certificate signed by the Sluice CA and the server `NIOSSLContext` that
/// presents it to the client.
///
/// Minting costs a signature and an SSL_CTX, so contexts are kept in memory; with a directory, leaf certificates are
/// also kept on disk so a restarted proxy presents the same certificate (clients that pin per session, and people
/// comparing certificates, see no churn).
public final class LeafCertificateCache: Sendable {
    public static let leafKeyFileName = "leaf-key.pem"
    /// Leaves live 397 days at most: the longest validity Apple's and Chrome's policies accept.
    static let leafLifetime: TimeInterval = 397 * 86_400
    /// A cached leaf closer than this to expiry is re-minted, so no client sees it expire mid-session.
    static let minimumRemainingValidity: TimeInterval = 86_400

    public let authority: CertificateAuthority
    public let directory: String?
    /// Bounds memory: host names come from the network, so a client cycling SNI values must not grow this forever.
    let maxEntries: Int
    /// Bounds the disk the same way: past this many leaf files, the least recently written tenth is removed.
    let maxFilesOnDisk: Int
    /// Leaf files in `directory` now, counted once at start and kept up to date.
    private let filesOnDisk: NIOLockedValueBox<Int>

    /// One key for every leaf, as mitmproxy does: generating a key per host would cost far more than signing, and
    /// the key never leaves this machine, so sharing it weakens nothing the CA key does not already cover.
    private let leafKey: Certificate.PrivateKey
    private let nioLeafKey: NIOSSLPrivateKey
    private let contexts: NIOLockedValueBox<[String: NIOSSLContext]>

    /// - Parameter directory: where leaf certificates and the shared leaf key are kept between runs; nil keeps
    ///   everything in memory (a fresh key per process).
    public init(
        authority: CertificateAuthority, directory: String?, maxEntries: Int = 10_000, maxFilesOnDisk: Int = 2_000
    ) throws(TLSSetupError) {
        self.authority = authority
        self.directory = directory
        self.maxEntries = max(1, maxEntries)
        self.maxFilesOnDisk = max(1, maxFilesOnDisk)
        self.contexts = NIOLockedValueBox([:])
        self.filesOnDisk = NIOLockedValueBox(directory.map { Self.leafFiles(in: $0).count } ?? 0)

        let keyPEM: [UInt8]
        if let directory {
            try SecureFile.ensureDirectory(directory)
            keyPEM = try Self.loadOrCreateLeafKey(at: directory + "/" + Self.leafKeyFileName)
        } else {
            keyPEM = Array(P256.Signing.PrivateKey().pemRepresentation.utf8)
        }
        let keyPath = directory.map { $0 + "/" + Self.leafKeyFileName } ?? "in-memory leaf key"
        do {
            self.leafKey = try Certificate.PrivateKey(pemEncoded: String(decoding: keyPEM, as: UTF8.self))
        } catch {
            throw TLSSetupError("\(keyPath) is not a valid PEM private key (\(error))")
        }
        do {
            self.nioLeafKey = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)
        } catch {
            throw TLSSetupError("NIOSSL cannot load \(keyPath): \(error)")
        }
    }

    /// The server context presenting a leaf for `host` (a DNS name or IP literal), minted on first request.
    ///
    /// Thread-safe; concurrent first requests for one host may both mint, but all callers get the same context.
    /// A miss blocks for a disk read, maybe an fsync'd write and one ECDSA signature (about a millisecond); a
    /// caller on an event loop that must never block can run it on a `NIOThreadPool`.
    public func serverContext(forHost host: String) throws(TLSSetupError) -> NIOSSLContext {
        let validated = try ValidatedHost(host)
        if let hit = contexts.withLockedValue({ $0[validated.name] }) {
            return hit
        }
        // Mint outside the lock: a slow disk or signature must not stall handshakes for other hosts.
        let leaf: Certificate
        if let cached = loadFromDisk(validated) {
            leaf = cached
        } else {
            leaf = try mintAndStore(validated)
        }
        let context = try makeContext(leaf: leaf, host: validated)
        return contexts.withLockedValue { contexts in
            if let raced = contexts[validated.name] { return raced }
            if contexts.count >= maxEntries, let victim = contexts.keys.first {
                contexts[victim] = nil  // Arbitrary eviction is fine: re-minting is cheap and rare.
            }
            contexts[validated.name] = context
            return context
        }
    }

    /// How many contexts are held in memory (for tests and diagnostics).
    var cachedContextCount: Int {
        contexts.withLockedValue { $0.count }
    }

    /// Where the leaf PEM for `host` is (or would be) cached on disk; nil without a directory.
    public func certificatePath(forHost host: String) throws(TLSSetupError) -> String? {
        let validated = try ValidatedHost(host)
        return certificatePath(for: validated)
    }

    private func certificatePath(for host: ValidatedHost) -> String? {
        directory.map { $0 + "/" + host.fileStem + ".pem" }
    }

    // MARK: - Minting

    private func mintAndStore(_ host: ValidatedHost) throws(TLSSetupError) -> Certificate {
        let leaf = try mint(host)
        if let path = certificatePath(for: host) {
            let pem: String
            do {
                pem = try leaf.serializeAsPEM().pemString + "\n"
            } catch {
                throw TLSSetupError("cannot encode the leaf certificate for \(host.name): \(error)")
            }
            try SecureFile.writeAtomically(path, contents: Array(pem.utf8), mode: 0o644)
            let count = filesOnDisk.withLockedValue { count in
                count += 1
                return count
            }
            if count > maxFilesOnDisk { pruneDisk() }
        }
        return leaf
    }

    /// Leaf certificate files in `directory` (every `.pem` but the shared key).
    private static func leafFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".pem") && $0 != leafKeyFileName }
    }

    /// Removes the least recently written leaf files down to nine tenths of the cap, so a client cycling SNI names
    /// cannot fill the disk, and pruning happens once per tenth of the cap, not on every new host. A removed leaf
    /// is simply minted again if its host comes back.
    private func pruneDisk() {
        guard let directory else { return }
        let files = Self.leafFiles(in: directory).map { name -> (path: String, written: Date) in
            let path = directory + "/" + name
            let written = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
            return (path, written)
        }
        let keep = maxFilesOnDisk - maxFilesOnDisk / 10
        var remaining = files.count
        for file in files.sorted(by: { $0.written < $1.written }) where remaining > keep {
            if (try? FileManager.default.removeItem(atPath: file.path)) != nil { remaining -= 1 }
        }
        filesOnDisk.withLockedValue { $0 = remaining }
    }

    private func mint(_ host: ValidatedHost) throws(TLSSetupError) -> Certificate {
        let now = Date()
        // Never outlive the CA: a leaf valid past its issuer fails verification anyway, and confusingly.
        let notAfter = min(now.addingTimeInterval(Self.leafLifetime), authority.certificate.notValidAfter)
        let san: GeneralName
        if let ip = host.ipAddress {
            san = .ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip)))
        } else {
            san = .dnsName(host.name)
        }
        do {
            let subject = try DistinguishedName {
                CommonName(String(host.name.prefix(64)))  // X.520 caps CN at 64; SAN carries the full name.
            }
            return try Certificate(
                version: .v3,
                serialNumber: Self.randomSerialNumber(),
                publicKey: leafKey.publicKey,
                notValidBefore: now.addingTimeInterval(-86_400),  // Tolerates clients with slow clocks.
                notValidAfter: notAfter,
                issuer: authority.certificate.subject,
                subject: subject,
                extensions: Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([san])
                    AuthorityKeyIdentifier(keyIdentifier: authority.subjectKeyIdentifier)
                },
                issuerPrivateKey: authority.privateKey
            )
        } catch {
            throw TLSSetupError("cannot mint a certificate for \(host.name): \(error)")
        }
    }

    private func makeContext(leaf: Certificate, host: ValidatedHost) throws(TLSSetupError) -> NIOSSLContext {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(leaf)
            let nioLeaf = try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
            // The leaf alone: a client that can verify it already holds Sluice's CA, and RFC 8446 §4.4.2 lets the
            // trust anchor be left out. Sending the CA too cost every handshake a second certificate to parse (an
            // OpenSSL 3 client spent about a tenth more CPU per connection, and new intercepted connections ran 10–20 %
            // slower on two cores shared with the client).
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(nioLeaf)],
                privateKey: .privateKey(nioLeafKey)
            )
            configuration.minimumTLSVersion = .tlsv12
            // Only HTTP/1.1 until the proxy speaks h2: offering h2 here would break clients that pick it.
            configuration.applicationProtocols = ["http/1.1"]
            // A peer that never answers our close_notify must not hold a connection (or Sluice's exit) for NIO's
            // default 5 s.
            configuration.shutdownTimeout = .milliseconds(500)
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("cannot build the TLS server context for \(host.name): \(error)")
        }
    }

    /// 16 random bytes, top bit clear (DER INTEGERs are signed and serials must be positive) and second bit set so
    /// the minimal encoding is exactly 16 bytes.
    static func randomSerialNumber() -> Certificate.SerialNumber {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        bytes[0] = (bytes[0] & 0x7f) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    // MARK: - Disk cache

    /// A cached leaf from disk, or nil when it is missing, unreadable, for another host or key, from another CA, or
    /// about to expire; any of those is simply re-minted.
    private func loadFromDisk(_ host: ValidatedHost) -> Certificate? {
        guard let path = certificatePath(for: host),
            let bytes = try? SecureFile.readFile(path),
            let leaf = try? Certificate(pemEncoded: String(decoding: bytes, as: UTF8.self))
        else {
            return nil
        }
        let ca = authority.certificate
        let now = Date()
        guard leaf.issuer == ca.subject,
            ca.publicKey.isValidSignature(leaf.signature, for: leaf),
            leaf.publicKey == leafKey.publicKey,
            leaf.notValidBefore <= now,
            leaf.notValidAfter.timeIntervalSince(now) >= Self.minimumRemainingValidity
        else {
            return nil
        }
        // File names can collide (e.g. "ip-1.2.3.4" the DNS name and 1.2.3.4 the address), so check the SAN itself.
        let expected: GeneralName =
            host.ipAddress.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) } ?? .dnsName(host.name)
        guard let names = try? leaf.extensions.subjectAlternativeNames, names.contains(expected) else {
            return nil
        }
        return leaf
    }

    private static func loadOrCreateLeafKey(at path: String) throws(TLSSetupError) -> [UInt8] {
        if let existing = try SecureFile.readFile(path, requirePrivate: true) {
            return existing
        }
        let fresh = Array(P256.Signing.PrivateKey().pemRepresentation.utf8)
        if try SecureFile.createPrivate(path, contents: fresh) {
            return fresh
        }
        // Another process created it between our read and create: use theirs, so both present matching certs.
        guard let theirs = try SecureFile.readFile(path, requirePrivate: true) else {
            throw TLSSetupError("\(path) vanished while being created; run again")
        }
        return theirs
    }
}
