import Foundation
import NIOSSL
import Testing
import X509

@testable import SluiceTLS

@Suite struct LeafCertificateCacheTests {
    /// A CA plus a leaf cache with a disk directory, both under one temporary directory.
    struct Fixture {
        let temp: TemporaryDirectory
        let authority: CertificateAuthority
        let cache: LeafCertificateCache
        var leafDirectory: String { temp.path + "/leaves" }

        init() throws {
            temp = try TemporaryDirectory()
            authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
            cache = try LeafCertificateCache(authority: authority, directory: temp.path + "/leaves")
        }
    }

    @Test func mintedLeafVerifiesAgainstTheCAWithOpenSSL() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        _ = try fixture.cache.serverContext(forHost: "Example.COM")
        let leafPath = try #require(try fixture.cache.certificatePath(forHost: "example.com"))
        #expect(leafPath == fixture.leafDirectory + "/example.com.pem")

        let verify = try openssl([
            "verify", "-purpose", "sslserver", "-verify_hostname", "example.com",
            "-CAfile", fixture.authority.certificatePath, leafPath,
        ])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.output.contains(": OK"))

        let san = try openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", leafPath])
        #expect(san.output.contains("DNS:example.com"), "\(san.output)")

        let text = try openssl(["x509", "-noout", "-text", "-in", leafPath]).output
        #expect(text.contains("TLS Web Server Authentication"))
        #expect(text.contains("Digital Signature"))
        #expect(text.contains("X509v3 Authority Key Identifier"))
        #expect(text.contains("CA:FALSE"))
        #expect(text.contains("Subject: CN = example.com"))
    }

    @Test func leafShapeSerialAndValidity() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        _ = try fixture.cache.serverContext(forHost: "example.com")
        let leafPath = try #require(try fixture.cache.certificatePath(forHost: "example.com"))
        let leaf = try Certificate(pemEncoded: String(contentsOfFile: leafPath, encoding: .utf8))
        #expect(leaf.serialNumber.bytes.count == 16)
        #expect((leaf.serialNumber.bytes.first ?? 0x80) < 0x80)
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        #expect(abs(lifetime - 398 * 86_400) < 60)
        #expect(leaf.issuer == fixture.authority.certificate.subject)
        #expect(try fileMode(fixture.leafDirectory + "/leaf-key.pem") == 0o600)
    }

    @Test func ipLiteralsGetAnIPAddressSAN() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        _ = try fixture.cache.serverContext(forHost: "127.0.0.1")
        let v4Path = try #require(try fixture.cache.certificatePath(forHost: "127.0.0.1"))
        let v4 = try openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", v4Path]).output
        #expect(v4.contains("IP Address:127.0.0.1"), "\(v4)")
        #expect(!v4.contains("DNS:"))
        let verify = try openssl([
            "verify", "-verify_ip", "127.0.0.1", "-CAfile", fixture.authority.certificatePath, v4Path,
        ])
        #expect(verify.status == 0, "\(verify.output)")

        _ = try fixture.cache.serverContext(forHost: "[::1]")
        let v6Path = try #require(try fixture.cache.certificatePath(forHost: "::1"))
        #expect(v6Path.hasSuffix("/ip---1.pem"))
        let v6 = try openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", v6Path]).output
        #expect(v6.contains("IP Address:0:0:0:0:0:0:0:1"), "\(v6)")
    }

    @Test func cacheHitReturnsTheSameContext() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        let first = try fixture.cache.serverContext(forHost: "example.com")
        let second = try fixture.cache.serverContext(forHost: "EXAMPLE.com.")
        #expect(first === second)
        let other = try fixture.cache.serverContext(forHost: "example.org")
        #expect(first !== other)
    }

    @Test func diskCacheIsReusedByANewCacheInstance() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        _ = try fixture.cache.serverContext(forHost: "example.com")
        let leafPath = try #require(try fixture.cache.certificatePath(forHost: "example.com"))
        let before = try String(contentsOfFile: leafPath, encoding: .utf8)

        let reopened = try LeafCertificateCache(authority: fixture.authority, directory: fixture.leafDirectory)
        _ = try reopened.serverContext(forHost: "example.com")
        // Re-minting would have produced a new random serial, hence different bytes.
        #expect(try String(contentsOfFile: leafPath, encoding: .utf8) == before)
    }

    @Test func leavesFromAnotherCAAreReminted() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        _ = try fixture.cache.serverContext(forHost: "example.com")
        let leafPath = try #require(try fixture.cache.certificatePath(forHost: "example.com"))
        let before = try String(contentsOfFile: leafPath, encoding: .utf8)

        let newAuthority = try CertificateAuthority.loadOrCreate(directory: fixture.temp.path + "/ca2")
        let cache = try LeafCertificateCache(authority: newAuthority, directory: fixture.leafDirectory)
        _ = try cache.serverContext(forHost: "example.com")
        #expect(try String(contentsOfFile: leafPath, encoding: .utf8) != before)
        let verify = try openssl(["verify", "-CAfile", newAuthority.certificatePath, leafPath])
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test(arguments: [
        "../etc", "a b", String(repeating: "a", count: 300), "", ".", "a..b", ".example.com", "x/y", "x\u{0}y",
        "*.example.com", "exämple.com", "host:443", "%2e%2e",
    ])
    func hostileHostNamesAreRefused(_ host: String) throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        #expect(throws: TLSSetupError.self) {
            try fixture.cache.serverContext(forHost: host)
        }
        // Nothing but the shared key was written.
        let entries = try FileManager.default.contentsOfDirectory(atPath: fixture.leafDirectory)
        #expect(entries == ["leaf-key.pem"])
    }

    @Test func edgeCaseNamesAreAccepted() throws {
        let fixture = try Fixture()
        defer { fixture.temp.cleanup() }
        let longest = (0..<4).map { _ in String(repeating: "a", count: 62) }.joined(separator: ".")  // 251 chars
        for host in ["_dmarc.example.com", "localhost", "leaf-key", "sluice-ca-key", longest] {
            _ = try fixture.cache.serverContext(forHost: host)
        }
        // "leaf-key" must not clobber the shared key file.
        #expect(FileManager.default.fileExists(atPath: fixture.leafDirectory + "/_leaf-key.pem"))
        #expect(FileManager.default.fileExists(atPath: fixture.leafDirectory + "/_sluice-ca-key.pem"))
        let key = try String(contentsOfFile: fixture.leafDirectory + "/leaf-key.pem", encoding: .utf8)
        #expect(key.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        // The CN is cut to 64 characters; the SAN keeps the whole name.
        let path = try #require(try fixture.cache.certificatePath(forHost: longest))
        #expect(path.split(separator: "/").last.map(\.utf8.count) ?? 999 <= 255)
        #expect(FileManager.default.fileExists(atPath: path))
        let leaf = try Certificate(pemEncoded: String(contentsOfFile: path, encoding: .utf8))
        #expect(leaf.subject.description == "CN=" + String(longest.prefix(64)))
        let names = try #require(try leaf.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName(longest)))
    }

    @Test func inMemoryCacheWritesNothing() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: nil)
        let context = try cache.serverContext(forHost: "example.com")
        #expect(try cache.serverContext(forHost: "example.com") === context)
        #expect(try cache.certificatePath(forHost: "example.com") == nil)
    }

    @Test func boundedCacheEvicts() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let cache = try LeafCertificateCache(authority: authority, directory: nil, maxEntries: 2)
        for host in ["a.test", "b.test", "c.test", "d.test"] {
            _ = try cache.serverContext(forHost: host)
        }
        #expect(cache.cachedContextCount == 2)
    }

    /// Each SNI name a client sends leaves a file: a client cycling names must not fill the disk. Past the cap
    /// the least recently written tenth goes, and the newest leaves stay.
    @Test func theDiskCacheIsBoundedToo() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let authority = try CertificateAuthority.loadOrCreate(directory: temp.path + "/ca")
        let directory = temp.path + "/leaves"
        let cache = try LeafCertificateCache(authority: authority, directory: directory, maxEntries: 4, maxFilesOnDisk: 20)
        for index in 0..<65 {
            _ = try cache.serverContext(forHost: "host\(index).test")
        }
        let leaves = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != LeafCertificateCache.leafKeyFileName }
        #expect(leaves.count <= 20, "\(leaves.count) leaf files")
        #expect(leaves.contains("host64.test.pem"), "the newest leaf stays")
        #expect(FileManager.default.fileExists(atPath: directory + "/" + LeafCertificateCache.leafKeyFileName), "the key is never pruned")
        // A new cache over the same directory counts what is there.
        let reopened = try LeafCertificateCache(authority: authority, directory: directory, maxFilesOnDisk: 20)
        for index in 65..<80 {
            _ = try reopened.serverContext(forHost: "host\(index).test")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).count <= 21)
    }
}

