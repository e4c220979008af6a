import NIOCore
import Testing

@testable import SluiceTLS

@Suite struct ClientHelloParserTests {
    typealias H = HelloBuilder

    func expectMalformed(
        _ bytes: [UInt8], containing fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let result = ClientHelloParser.peek(bytes)
        guard case .malformed(let reason) = result else {
            Issue.record("expected malformed, got \(result)", sourceLocation: sourceLocation)
            return
        }
        #expect(!reason.isEmpty && !reason.contains("\n"), sourceLocation: sourceLocation)
        if let fragment {
            #expect(reason.contains(fragment), "\(reason)", sourceLocation: sourceLocation)
        }
    }

    @Test func realHelloFromNIOSSLYieldsSNIAndALPN() throws {
        let hello = try captureClientHello(serverName: "example.com", alpn: ["h2", "http/1.1"])
        #expect(hello.starts(with: [0x16, 0x03]))
        let expected = ClientHelloInfo(serverName: "example.com", alpn: ["h2", "http/1.1"], legacyVersion: 0x0303)
        #expect(ClientHelloParser.peek(hello) == .clientHello(expected))
        #expect(ClientHelloParser.peek(ByteBuffer(bytes: hello)) == .clientHello(expected))
        // Bytes after the hello (say, early data arriving together) change nothing.
        #expect(ClientHelloParser.peek(hello + [0x17, 0x03, 0x03, 0x00, 0x01, 0xff]) == .clientHello(expected))
    }

    @Test func helloWithoutSNIOrALPN() throws {
        let hello = try captureClientHello(serverName: nil)
        let expected = ClientHelloInfo(serverName: nil, alpn: [], legacyVersion: 0x0303)
        #expect(ClientHelloParser.peek(hello) == .clientHello(expected))
    }

    @Test func peekDoesNotConsume() throws {
        var buffer = ByteBuffer(bytes: try captureClientHello(serverName: "example.com"))
        let before = buffer.readableBytes
        _ = ClientHelloParser.peek(buffer)
        #expect(buffer.readableBytes == before)
        buffer.moveReaderIndex(forwardBy: 1)  // A view that does not start at index 0 must still work.
        #expect(ClientHelloParser.peek(buffer) == .notTLS)
    }

    @Test func everyPrefixNeedsMoreData() throws {
        let hello = try captureClientHello(serverName: "example.com", alpn: ["http/1.1"])
        for length in 0..<hello.count {
            let result = ClientHelloParser.peek(hello[0..<length])
            if result != .needMoreData {
                Issue.record("prefix of \(length) bytes gave \(result)")
                break
            }
        }
        guard case .clientHello(let info) = ClientHelloParser.peek(hello) else {
            Issue.record("complete hello not parsed")
            return
        }
        #expect(info.serverName == "example.com")
    }

    @Test func helloSplitAcrossTwoRecordsReassembles() throws {
        let hello = try captureClientHello(serverName: "split.example.com", alpn: ["http/1.1"])
        let handshake = Array(hello[5...])
        let recordLength = Int(hello[3]) << 8 | Int(hello[4])
        #expect(recordLength == handshake.count)  // NIOSSL sent it as one record.
        let expected = ClientHelloParser.peek(hello)
        for cut in [1, 3, 4, 50, handshake.count / 2, handshake.count - 1] {
            let split = [0x16, 0x03, 0x01] + H.u16(cut) + handshake[..<cut]
                + [0x16, 0x03, 0x01] + H.u16(handshake.count - cut) + handshake[cut...]
            #expect(ClientHelloParser.peek(split) == expected, "cut at \(cut)")
            for length in stride(from: 0, to: split.count, by: 7) {
                #expect(ClientHelloParser.peek(split[..<length]) == .needMoreData)
            }
        }
        // Many tiny records, as some DPI-evasion tools send, up to the record limit.
        let tiny = H.records(handshake, fragment: handshake.count / 60 + 1)
        #expect(ClientHelloParser.peek(tiny) == expected)
    }

    @Test func largePostQuantumSizedHelloSpanningRecords() {
        let padding = H.extensionBytes(0x0015, [UInt8](repeating: 0, count: 20_000))
        let handshake = H.handshake(extensions: H.serverName("big.example") + padding + H.alpn(["http/1.1"]))
        let bytes = H.records(handshake)
        #expect(bytes.count > 16_384 + 5)
        let expected = ClientHelloInfo(serverName: "big.example", alpn: ["http/1.1"], legacyVersion: 0x0303)
        #expect(ClientHelloParser.peek(bytes) == .clientHello(expected))
        #expect(ClientHelloParser.peek(bytes.prefix(16_384 + 5)) == .needMoreData)
    }

    @Test func helloWithoutExtensionsParses() {
        let bytes = H.records(H.handshake(extensions: nil))
        let expected = ClientHelloInfo(serverName: nil, alpn: [], legacyVersion: 0x0303)
        #expect(ClientHelloParser.peek(bytes) == .clientHello(expected))
    }

    @Test func plainTextIsNotTLS() {
        #expect(ClientHelloParser.peek(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) == .notTLS)
        #expect(ClientHelloParser.peek(Array("SSH-2.0-OpenSSH_9.6\r\n".utf8)) == .notTLS)
        #expect(ClientHelloParser.peek([0x16, 0x47]) == .notTLS)
        #expect(ClientHelloParser.peek([UInt8]()) == .needMoreData)
        #expect(ClientHelloParser.peek([0x16]) == .needMoreData)
        #expect(ClientHelloParser.peek([0x16, 0x03]) == .needMoreData)
    }

    @Test func brokenRecordLayerIsMalformed() {
        let handshake = H.handshake(extensions: H.serverName("a.example"))
        expectMalformed([0x16, 0x03, 0x09], containing: "version 0309")
        expectMalformed([0x16, 0x03, 0x01, 0x00, 0x00], containing: "empty handshake fragment")
        expectMalformed([0x16, 0x03, 0x01, 0x50, 0x00], containing: "over the 16384-byte limit")
        expectMalformed([0x16, 0x03, 0x01, 0x00, 0x04, 0x02], containing: "not ClientHello")
        // Second record is application data, not the rest of the handshake.
        let first = [0x16, 0x03, 0x01] + H.u16(10) + handshake[..<10]
        expectMalformed(first + [0x17, 0x03, 0x03, 0x00, 0x05], containing: "content type 23")
        // A hello declaring more than 64 KiB is refused at once, without waiting for it.
        expectMalformed(
            [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00],
            containing: "65540 bytes exceeds the 65536-byte cap")
        // More than 64 one-byte records.
        expectMalformed(H.records(handshake, fragment: 1), containing: "more than 64 records")
    }

    @Test func brokenLengthsInsideTheHelloAreMalformed() {
        let extensions = H.serverName("a.example") + H.alpn(["h2"])
        let good = H.handshake(extensions: extensions)
        #expect(ClientHelloParser.peek(H.records(good)) != .needMoreData)

        // Handshake length shorter than the content: extensions length no longer fits.
        var short = good
        short[3] &-= 5
        expectMalformed(H.records(short), containing: "extensions length")

        expectMalformed(H.records(H.handshake(extensions: extensions, sessionIDLength: 33)), containing: "session_id")

        // SNI extension claiming more bytes than the extensions block holds.
        var sniLength = good
        let sniOffset = good.count - extensions.count
        sniLength[sniOffset + 2] = 0xff
        expectMalformed(H.records(sniLength), containing: "extension 0 needs")

        // server_name list length disagreeing with its extension length.
        var listLength = good
        listLength[sniOffset + 5] &+= 1
        expectMalformed(H.records(listLength), containing: "server_name list length")

        expectMalformed(
            H.records(H.handshake(extensions: H.serverName("a.example") + H.serverName("b.example"))),
            containing: "appears twice")
        expectMalformed(H.records(H.handshake(extensions: H.alpn(["h2", ""]))), containing: "ALPN protocol name")
        expectMalformed(H.records(H.handshake(extensions: H.serverName("a\u{1}b"))), containing: "printable ASCII")
        // Truncated inside the fixed fields.
        let tiny: [UInt8] = [0x01] + H.u24(10) + [0x03, 0x03] + [UInt8](repeating: 0, count: 8)
        expectMalformed(H.records(tiny), containing: "random needs 32 bytes")
    }

    /// Mutates real and synthetic hellos 5,000 times: the parser must never crash, must explain every rejection in
    /// one line, and its verdict on a prefix must never contradict its verdict on the whole.
    @Test func randomizedMutationsNeverCrash() throws {
        let padding = H.extensionBytes(0x0015, [UInt8](repeating: 0, count: 18_000))
        let seeds: [[UInt8]] = [
            try captureClientHello(serverName: "example.com", alpn: ["h2", "http/1.1"]),
            try captureClientHello(serverName: nil),
            H.records(H.handshake(extensions: H.serverName("x.example") + H.alpn(["http/1.1"])), fragment: 40),
            H.records(H.handshake(extensions: H.serverName("big.example") + padding)),
        ]
        var rng = SplitMix64(seed: 0x5EED_5EED)
        var verdicts: [String: Int] = [:]
        for _ in 0..<5_000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                mutate(&bytes, using: &rng)
            }
            let verdict = ClientHelloParser.peek(bytes)
            switch verdict {
            case .needMoreData: verdicts["needMoreData", default: 0] += 1
            case .notTLS: verdicts["notTLS", default: 0] += 1
            case .clientHello: verdicts["clientHello", default: 0] += 1
            case .malformed(let reason):
                verdicts["malformed", default: 0] += 1
                #expect(!reason.isEmpty && !reason.contains("\n"))
            }
            let prefix = ClientHelloParser.peek(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
            if prefix != .needMoreData && prefix != verdict {
                Issue.record("prefix verdict \(prefix) contradicts full verdict \(verdict)")
            }
        }
        // The mutations must exercise every outcome, or the test proves little.
        #expect(verdicts.count == 4, "\(verdicts)")
    }

    private func mutate(_ bytes: inout [UInt8], using rng: inout SplitMix64) {
        guard !bytes.isEmpty else {
            bytes = [0x16]
            return
        }
        let index = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0:  // Flip one bit.
            bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 1:  // Random byte.
            bytes[index] = UInt8.random(in: .min ... .max, using: &rng)
        case 2:  // Truncate.
            bytes.removeSubrange(index...)
        case 3:  // Overwrite what may be a length field with an extreme value.
            let extremes: [[UInt8]] = [[0xff, 0xff], [0x00, 0x00], [0x00, 0x01], [0x40, 0x00]]
            let value = extremes[Int.random(in: 0..<extremes.count, using: &rng)]
            for (offset, byte) in value.enumerated() where index + offset < bytes.count {
                bytes[index + offset] = byte
            }
        case 4:  // Insert junk.
            let count = Int.random(in: 1...8, using: &rng)
            let junk = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            bytes.insert(contentsOf: junk, at: index)
        case 5:  // Delete a run.
            bytes.removeSubrange(index..<min(bytes.count, index + Int.random(in: 1...16, using: &rng)))
        default:  // Small length tweak (off-by-one bugs live here).
            bytes[index] &+= Bool.random(using: &rng) ? 1 : 255
        }
    }
}
