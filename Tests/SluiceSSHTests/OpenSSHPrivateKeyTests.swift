import Foundation
import NIOSSH
import Testing

@testable import SluiceSSH

/// Keys as `ssh-keygen` writes them (made for these tests, used nowhere else).
@Suite struct OpenSSHPrivateKeyTests {
    static let ed25519 = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
        QyNTUxOQAAACDw6tdFcAw2Z7HuDOeJjzSWriT5Qz3X2h4cX8WyeoQ94QAAAIikZjB+pGYw
        fgAAAAtzc2gtZWQyNTUxOQAAACDw6tdFcAw2Z7HuDOeJjzSWriT5Qz3X2h4cX8WyeoQ94Q
        AAAEANM26sRMrwHCteljyz8+5V1m5A5E7CgdYFNMqX6AUgzfDq10VwDDZnse4M54mPNJau
        JPlDPdfaHhxfxbJ6hD3hAAAAAAECAwQF
        -----END OPENSSH PRIVATE KEY-----
        """
    static let ed25519Public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPDq10VwDDZnse4M54mPNJauJPlDPdfaHhxfxbJ6hD3h"
    static let ecdsa = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS
        1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQS7/qQg4Q8VNk/WMy6152/fNpc8f29q
        9I2fJy6LxF1xYZAuXGTpY2H++nhpKTSUsaNLtExGstuhlejw0yA7k/ByAAAAoAKFy2wChc
        tsAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLv+pCDhDxU2T9Yz
        LrXnb982lzx/b2r0jZ8nLovEXXFhkC5cZOljYf76eGkpNJSxo0u0TEay26GV6PDTIDuT8H
        IAAAAhAIK68G7cy6qeeGhihAmlQ2AwqppnFBrO/8LrFhPzhS2DAAAAAAECAwQFBgc=
        -----END OPENSSH PRIVATE KEY-----
        """
    static let ecdsaPublic = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLv+pCDhDxU2T9YzLrXnb982lzx/b2r0jZ8nLovEXXFhkC5cZOljYf76eGkpNJSxo0u0TEay26GV6PDTIDuT8HI="
    static let encrypted = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAaIXGV5Q
        spL+i99hBPgFkOAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAICuRWHVppogEUftV
        +SC7IH+qlFvWfsTulSQ5rY4OErLFAAAAkEwLtLmBgqf+KwQW+HQ+B1gei1k5xCowwsoTXl
        A+0z1KHxKh+WZIBaJ8K0We0TqO6slxpb5ifpZyMP0PZm/tFklqLQ48g0zY9kPxmYELWnnl
        YDebhDwgCLCZ6hWKrZ+EWG5XIAvSZCAG+RNQGHppW1SObmIxQi6kcIyW4aVzFuJVi6Qw21
        zkoA0h2Of6BPegfA==
        -----END OPENSSH PRIVATE KEY-----
        """

    @Test(arguments: [(ed25519, ed25519Public), (ecdsa, ecdsaPublic)])
    func aKeyReadsBackAsTheKeyItsPublicHalfNames(_ pair: (String, String)) throws {
        let key = try OpenSSHPrivateKey.parse(pair.0)
        #expect(String(openSSHPublicKey: key.publicKey) == pair.1)
    }

    @Test func anEncryptedKeyIsRefusedWithTheCommandThatFixesIt() {
        do {
            _ = try OpenSSHPrivateKey.parse(Self.encrypted)
            Issue.record("an encrypted key was read")
        } catch {
            #expect("\(error)".contains("ssh-keygen -p -N '' -f FILE"))
        }
    }

    @Test func damagedFilesAreErrorsNotTraps() {
        let body = Self.ed25519.split(separator: "\n")[1...].dropLast().joined()
        let data = Data(base64Encoded: body) ?? Data()
        // Every prefix of a real key, and every single-byte corruption of its first 120 bytes.
        for length in stride(from: 0, to: data.count, by: 7) {
            let text = "-----BEGIN OPENSSH PRIVATE KEY-----\n\(data.prefix(length).base64EncodedString())\n-----END OPENSSH PRIVATE KEY-----"
            _ = try? OpenSSHPrivateKey.parse(text)
        }
        for index in 0..<min(120, data.count) {
            var damaged = data
            damaged[damaged.startIndex + index] ^= 0xFF
            let text = "-----BEGIN OPENSSH PRIVATE KEY-----\n\(damaged.base64EncodedString())\n-----END OPENSSH PRIVATE KEY-----"
            _ = try? OpenSSHPrivateKey.parse(text)
        }
        #expect(throws: OpenSSHPrivateKey.ParseError.self) { try OpenSSHPrivateKey.parse("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----") }
    }
}
