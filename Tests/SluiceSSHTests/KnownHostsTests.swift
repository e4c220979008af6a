import Crypto
import Foundation
import NIOSSH
import Testing

@testable import SluiceSSH

@Suite struct KnownHostsTests {
    let key = NIOSSHPrivateKey(ed25519Key: Curve25519.Signing.PrivateKey()).publicKey
    let other = NIOSSHPrivateKey(ed25519Key: Curve25519.Signing.PrivateKey()).publicKey

    func entry(_ names: String, _ key: NIOSSHPublicKey, marker: String = "") -> String {
        (marker.isEmpty ? "" : marker + " ") + "\(names) \(String(openSSHPublicKey: key)) comment"
    }

    @Test func portTwentyTwoIsFiledUnderTheBareHostOthersInBrackets() {
        #expect(KnownHosts.hostName(host: "db.example", port: 22) == "db.example")
        #expect(KnownHosts.hostName(host: "10.0.0.7", port: 2222) == "[10.0.0.7]:2222")
        #expect(KnownHosts.line(for: key, host: "h", port: 2200).hasPrefix("[h]:2200 ssh-ed25519 "))
    }

    @Test func aListedKeyIsTrustedAndAnotherForTheSameHostIsAChange() {
        let known = KnownHosts(text: "# comment\n\n" + entry("[10.0.0.7]:2222,other.example", key) + "\n")
        #expect(known.check(key, host: "10.0.0.7", port: 2222) == .trusted)
        #expect(known.check(other, host: "10.0.0.7", port: 2222) == .changed(knownLine: 3))
        #expect(known.check(key, host: "10.0.0.7", port: 22) == .unknown)
        #expect(known.check(key, host: "OTHER.example", port: 22) == .trusted)
    }

    @Test func hashedNamesMatchAsOpenSSHWritesThem() {
        let salt = Data((0..<20).map { UInt8($0) })
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data("[127.0.0.1]:2022".utf8), using: SymmetricKey(data: salt))
        let names = "|1|\(salt.base64EncodedString())|\(Data(mac).base64EncodedString())"
        let known = KnownHosts(text: entry(names, key))
        #expect(known.check(key, host: "127.0.0.1", port: 2022) == .trusted)
        #expect(known.check(key, host: "127.0.0.2", port: 2022) == .unknown)
    }

    @Test func wildcardsAndNegation() {
        let known = KnownHosts(text: entry("*.example,!bad.example", key))
        #expect(known.check(key, host: "a.example", port: 22) == .trusted)
        #expect(known.check(key, host: "bad.example", port: 22) == .unknown)
        #expect(KnownHosts.glob(Array("a*b?d".utf8), Array("axxxbcd".utf8)))
        #expect(!KnownHosts.glob(Array("a*b?d".utf8), Array("axxxbd".utf8)))
        // A hostile pattern stays cheap: no backtracking explosion.
        let pattern = Array(String(repeating: "*a", count: 200).utf8)
        #expect(!KnownHosts.glob(pattern, Array((String(repeating: "a", count: 5000) + "b").utf8)))
    }

    @Test func aRevokedKeyIsRefusedEvenWhenAlsoListed() {
        let known = KnownHosts(text: entry("h", key, marker: "@revoked") + "\n" + entry("h", key))
        #expect(known.check(key, host: "h", port: 22) == .revoked(line: 1))
    }

    @Test func unreadableLinesAreSkippedAndCounted() {
        let text = "@cert-authority * \(String(openSSHPublicKey: key))\ngarbage\nh ssh-ed25519 !!notbase64\n" + entry("h", key)
        let known = KnownHosts(text: text)
        #expect(known.skippedLines == [1, 2, 3])
        #expect(known.check(key, host: "h", port: 22) == .trusted)
    }

    @Test func aHostKnownOnlyByAKeySluiceCannotUseIsAChangeNotUnknown() {
        // An RSA key (swift-nio-ssh speaks none) still says the host is known: an Ed25519 key presented instead is
        // refused even under trust-on-first-use.
        let known = KnownHosts(text: "rsa.example ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== rsa\n")
        #expect(known.skippedLines.isEmpty)
        #expect(known.check(key, host: "rsa.example", port: 22) == .changed(knownLine: 1))
    }

    @Test func fingerprintsAreOpenSSHsSHA256Form() {
        let fingerprint = KnownHosts.fingerprint(of: key)
        #expect(fingerprint.hasPrefix("SHA256:"))
        #expect(fingerprint.count == "SHA256:".count + 43)  // 32 bytes in unpadded base64
        #expect(!fingerprint.contains("="))
    }
}
