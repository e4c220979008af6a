import Foundation
import Testing
import X509

@testable import SluiceTLS

@Suite struct CertificateAuthorityTests {
    @Test func createsFilesWithPrivateModes() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let directory = temp.path + "/ca"
        let authority = try CertificateAuthority.loadOrCreate(directory: directory)

        #expect(authority.certificatePath == directory + "/sluice-ca.pem")
        #expect(authority.keyPath == directory + "/sluice-ca-key.pem")
        #expect(try fileMode(directory) == 0o700)
        #expect(try fileMode(authority.keyPath) == 0o600)
        #expect(try fileMode(authority.certificatePath) == 0o644)
        let keyPEM = try String(contentsOfFile: authority.keyPath, encoding: .utf8)
        #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))  // PKCS#8, not SEC1.
        #expect(try String(contentsOfFile: authority.certificatePath, encoding: .utf8) == authority.certificatePEM)
        // Nothing else (no temporary files) is left behind.
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(entries == ["sluice-ca-key.pem", "sluice-ca.pem"])
    }

    @Test func certificateHasCAExtensions() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let text = try openssl(["x509", "-noout", "-text", "-in", authority.certificatePath])
        #expect(text.status == 0)
        #expect(text.output.contains("X509v3 Basic Constraints: critical"))
        #expect(text.output.contains("CA:TRUE, pathlen:0"))
        #expect(text.output.contains("X509v3 Key Usage: critical"))
        #expect(text.output.contains("Certificate Sign, CRL Sign"))
        #expect(text.output.contains("X509v3 Subject Key Identifier"))
        #expect(text.output.contains("ASN1 OID: prime256v1"))
        #expect(text.output.contains("O = Sluice"))
        #expect(text.output.contains("CN = Sluice CA "))
        let lifetime = authority.certificate.notValidAfter.timeIntervalSince(authority.certificate.notValidBefore)
        #expect(abs(lifetime - (10 * 365.25 + 1) * 86_400) < 60)
    }

    @Test func reloadKeepsTheSameCAAndInstallsDiffer() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let first = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let again = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        #expect(first.fingerprintSHA256 == again.fingerprintSHA256)
        #expect(first.certificatePEM == again.certificatePEM)

        let other = try CertificateAuthority.loadOrCreate(directory: temp.path + "/other")
        #expect(other.fingerprintSHA256 != first.fingerprintSHA256)
        #expect(other.certificate.subject != first.certificate.subject)
    }

    @Test func fingerprintMatchesOpenSSL() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let result = try openssl(["x509", "-noout", "-fingerprint", "-sha256", "-in", authority.certificatePath])
        #expect(result.status == 0)
        let printed = result.output.split(separator: "=", maxSplits: 1).last.map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(printed == authority.fingerprintSHA256)
        #expect(authority.fingerprintSHA256.count == 32 * 3 - 1)
    }

    @Test func refusesAWorldReadableKey() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        #expect(chmod(authority.keyPath, 0o644) == 0)
        let error = #expect(throws: TLSSetupError.self) {
            try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        }
        let message = error?.message ?? ""
        #expect(message.contains("sluice-ca-key.pem has permissions 0644"))
        #expect(message.contains("must be 0600"))
        #expect(!message.contains("\n"))

        // Owner-only but still wider than 0600 (an executable bit) is refused too; narrower (0400) is fine.
        #expect(chmod(authority.keyPath, 0o700) == 0)
        #expect(throws: TLSSetupError.self) { try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca") }
        #expect(chmod(authority.keyPath, 0o400) == 0)
        #expect(try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca").fingerprintSHA256
            == authority.fingerprintSHA256)
    }

    @Test func corruptCertificateGivesAClearMessage() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        try "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
            .write(toFile: authority.certificatePath, atomically: true, encoding: .utf8)
        let error = #expect(throws: TLSSetupError.self) {
            try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        }
        #expect(error?.message.contains("sluice-ca.pem is not a valid PEM certificate") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func corruptKeyGivesAClearMessage() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        try "garbage".write(toFile: authority.keyPath, atomically: false, encoding: .utf8)
        let error = #expect(throws: TLSSetupError.self) {
            try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        }
        #expect(error?.message.contains("sluice-ca-key.pem is not a valid PEM private key") == true)
    }

    @Test func mismatchedKeyAndCertificateAreRefused() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let mine = try CertificateAuthority.loadOrCreate(directory: temp.path + "/one")
        let theirs = try CertificateAuthority.loadOrCreate(directory: temp.path + "/two")
        try theirs.certificatePEM.write(toFile: mine.certificatePath, atomically: true, encoding: .utf8)
        let error = #expect(throws: TLSSetupError.self) {
            try CertificateAuthority.loadOrCreate(directory: temp.path + "/one")
        }
        #expect(error?.message.contains("do not match") == true)
    }

    @Test func certificateWithoutKeyIsRefusedButKeyWithoutCertificateRecovers() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")

        // Key present, certificate missing: an interrupted first run; a certificate is minted for the same key.
        try FileManager.default.removeItem(atPath: authority.certificatePath)
        let recovered = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        #expect(recovered.certificate.publicKey == authority.certificate.publicKey)

        // Certificate present, key missing: never our doing, so no guessing.
        try FileManager.default.removeItem(atPath: authority.keyPath)
        let error = #expect(throws: TLSSetupError.self) {
            try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        }
        #expect(error?.message.contains("but not") == true)
    }

    @Test func aFileInPlaceOfTheDirectoryIsAnError() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        try "x".write(toFile: temp.path + "/ca", atomically: false, encoding: .utf8)
        #expect(throws: TLSSetupError("\(temp.path)/ca exists but is not a directory")) {
            try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        }
    }
}
