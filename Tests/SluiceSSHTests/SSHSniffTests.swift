import NIOCore
import SluiceCore
import Testing

@testable import SluiceSSH

/// How a transparent listener recognises an SSH client: its identification string (RFC 4253 §4.2).
@Suite struct SSHSniffTests {
    private func sniff(_ bytes: [UInt8], port: Int = 22) -> SniffResult {
        SSHModule.sniff(ByteBuffer(bytes: bytes).readableBytesView, port: port)
    }

    @Test(arguments: ["SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", "SSH-2.0-", "SSH-1.99-PuTTY\r\n", "SSH-2.0-x"])
    func anIdentificationStringIsSSHOnAnyPort(text: String) {
        #expect(sniff(Array(text.utf8)) == .match)
        #expect(sniff(Array(text.utf8), port: 443) == .match)
    }

    @Test func byteAtATime() {
        let text = Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)
        for length in 1..<8 {
            #expect(sniff(Array(text.prefix(length))) == .needMoreData, "after \(length) bytes")
        }
        for length in 8...text.count {
            #expect(sniff(Array(text.prefix(length))) == .match)
        }
        // `SSH-1.` still fits 1.99; `SSH-1.5-` (version 1 only) does not.
        #expect(sniff(Array("SSH-1.".utf8)) == .needMoreData)
        #expect(sniff(Array("SSH-1.5-".utf8)) == .noMatch)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\n", "ssh-2.0-lowercase", "SSH-3.0-future", "SSH2.0", " SSH-2.0-", "\u{16}\u{03}\u{01}", "\u{0}\u{0}\u{0}\u{8}",
    ])
    func somethingElseIsNot(text: String) {
        #expect(sniff(Array(text.utf8)) == .noMatch)
    }

    @Test func nothingYetNeedsMore() {
        #expect(sniff([]) == .needMoreData)
    }

    @Test func declaredOnPort22AsClientFirst() {
        let declared = SSHModule.transparentProtocols
        #expect(declared.map(\.name) == ["ssh"] && declared.first?.ports == [22])
        guard case .clientFirst = declared.first?.opening else {
            Issue.record("SSH clients speak first")
            return
        }
    }
}
