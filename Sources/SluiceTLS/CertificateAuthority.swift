import Crypto
import Foundation
import SwiftASN1
import X509

/// Sluice's own root CA: it signs the leaf certificates that let the proxy read a client's TLS traffic.
///
/// The operator installs `sluice-ca.pem` in the client's trust store once, so the CA must survive restarts: it is
/// created on first use and loaded afterwards. Its private key is the most sensitive thing Sluice owns — anyone holding
/// it can impersonate any site to the machines that trust it — hence mode 0600 from creation and the refusal to load
/// a key that others can read.
public final class CertificateAuthority: Sendable {
    public static let certificateFileName = "sluice-ca.pem"
    public static let keyFileName = "sluice-ca-key.pem"

    /// The parsed CA certificate.
    public let certificate: Certificate
    /// The CA certificate in PEM, for `sluice ca export` and for building trust stores in tests.
    public let certificatePEM: String
    public let certificatePath: String
    public let keyPath: String
    /// Colon-separated uppercase hex of the DER's SHA-256, as `openssl x509 -fingerprint -sha256` prints it, so the
    /// operator can compare it with what a browser shows.
    public let fingerprintSHA256: String

    /// Signs leaves; internal so nothing outside this module can mint certificates.
    let privateKey: Certificate.PrivateKey
    /// Copied into each leaf's authorityKeyIdentifier so verifiers pick the right issuer.
    let subjectKeyIdentifier: ArraySlice<UInt8>

    private init(
        certificate: Certificate,
        privateKey: Certificate.PrivateKey,
        certificatePath: String,
        keyPath: String
    ) throws(TLSSetupError) {
        let der: [UInt8]
        let pem: String
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            der = serializer.serializedBytes
            pem = try certificate.serializeAsPEM().pemString
        } catch {
            throw TLSSetupError("cannot encode the CA certificate: \(error)")
        }
        let ski: ArraySlice<UInt8>
        do {
            ski = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        } catch {
            throw TLSSetupError("\(certificatePath): bad subjectKeyIdentifier extension: \(error)")
        }
        self.certificate = certificate
        self.privateKey = privateKey
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.certificatePEM = pem.hasSuffix("\n") ? pem : pem + "\n"
        self.fingerprintSHA256 = SHA256.hash(data: der).map { SecureFile.hex($0).uppercased() }.joined(separator: ":")
        self.subjectKeyIdentifier = ski
    }

    /// Loads the CA from `directory`, creating the directory (0700), key (0600) and certificate (0644) on first use.
    public static func loadOrCreate(directory: String) throws(TLSSetupError) -> CertificateAuthority {
        try SecureFile.ensureDirectory(directory)
        let certificatePath = directory + "/" + certificateFileName
        let keyPath = directory + "/" + keyFileName

        let existingKey = try SecureFile.readFile(keyPath, requirePrivate: true)
        let existingCertificate = try SecureFile.readFile(certificatePath)

        switch (existingKey, existingCertificate) {
        case (let keyBytes?, let certificateBytes?):
            let key = try parseKey(keyBytes, path: keyPath)
            let certificate = try parseCertificate(certificateBytes, path: certificatePath)
            try check(certificate, matches: key, certificatePath: certificatePath, keyPath: keyPath)
            return try CertificateAuthority(
                certificate: certificate, privateKey: key, certificatePath: certificatePath, keyPath: keyPath)

        case (let keyBytes?, nil):
            // The key is written before the certificate, so this is a first run that stopped in between. Nobody can
            // have trusted a certificate that was never written, so minting one for the existing key is safe.
            let key = try parseKey(keyBytes, path: keyPath)
            return try createCertificate(for: key, certificatePath: certificatePath, keyPath: keyPath)

        case (nil, _?):
            // We never write a certificate without its key, so a person did this; guessing could discard a CA the
            // operator still wants.
            throw TLSSetupError(
                "found \(certificatePath) but not \(keyPath); "
                    + "restore the key, or delete the certificate to make a new CA"
            )

        case (nil, nil):
            let key = P256.Signing.PrivateKey()
            let created = try SecureFile.createPrivate(keyPath, contents: Array(key.pemRepresentation.utf8))
            guard created else {
                throw TLSSetupError("\(keyPath) appeared while creating the CA (another sluice starting?); run again")
            }
            return try createCertificate(
                for: Certificate.PrivateKey(key), certificatePath: certificatePath, keyPath: keyPath)
        }
    }

    private static func createCertificate(
        for key: Certificate.PrivateKey,
        certificatePath: String,
        keyPath: String
    ) throws(TLSSetupError) -> CertificateAuthority {
        let certificate: Certificate
        do {
            // A random suffix makes every install a distinct CA, so trust-store entries and logs can tell them apart.
            let name = try DistinguishedName {
                OrganizationName("Sluice")
                CommonName("Sluice CA \(SecureFile.randomHex(bytes: 4))")
            }
            let now = Date()
            let publicKey = key.publicKey
            certificate = try Certificate(
                version: .v3,
                serialNumber: LeafCertificateCache.randomSerialNumber(),
                publicKey: publicKey,
                // A day of back-dating tolerates clients whose clocks run slow.
                notValidBefore: now.addingTimeInterval(-86_400),
                notValidAfter: now.addingTimeInterval(10 * 365.25 * 86_400),
                issuer: name,
                subject: name,
                extensions: Certificate.Extensions {
                    // pathLen 0: this CA signs leaves only, never another CA.
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: key
            )
        } catch {
            throw TLSSetupError("cannot create the CA certificate: \(error)")
        }
        let authority = try CertificateAuthority(
            certificate: certificate, privateKey: key, certificatePath: certificatePath, keyPath: keyPath)
        try SecureFile.writeAtomically(certificatePath, contents: Array(authority.certificatePEM.utf8), mode: 0o644)
        return authority
    }

    private static func parseKey(_ bytes: [UInt8], path: String) throws(TLSSetupError) -> Certificate.PrivateKey {
        do {
            return try Certificate.PrivateKey(pemEncoded: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw TLSSetupError("\(path) is not a valid PEM private key (\(error))")
        }
    }

    private static func parseCertificate(_ bytes: [UInt8], path: String) throws(TLSSetupError) -> Certificate {
        do {
            return try Certificate(pemEncoded: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw TLSSetupError("\(path) is not a valid PEM certificate (\(error))")
        }
    }

    private static func check(
        _ certificate: Certificate,
        matches key: Certificate.PrivateKey,
        certificatePath: String,
        keyPath: String
    ) throws(TLSSetupError) {
        guard certificate.publicKey == key.publicKey else {
            throw TLSSetupError("\(keyPath) is not the private key of \(certificatePath); the CA files do not match")
        }
        let constraints: BasicConstraints?
        do {
            constraints = try certificate.extensions.basicConstraints
        } catch {
            throw TLSSetupError("\(certificatePath): bad basicConstraints extension: \(error)")
        }
        guard case .isCertificateAuthority = constraints else {
            throw TLSSetupError("\(certificatePath) is not a CA certificate (basicConstraints CA:true missing)")
        }
        guard certificate.notValidAfter > Date() else {
            throw TLSSetupError(
                "\(certificatePath) expired on \(certificate.notValidAfter); delete both CA files to make a new one"
            )
        }
    }
}
