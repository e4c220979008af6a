import NIOCore
import SluiceMySQL
import SluiceTestSupport
import Testing

@Suite("MySQLPacketFramer", .ownThread)
struct MySQLPacketFramerTests {
    static let full = MySQLPacketFramer.maxPacketPayloadBytes

    // MARK: Whole payloads

    @Test("the mysql client's COM_QUERY 'select 1' is one payload whose raw bytes are the input")
    func oneQuery() throws {
        let packet = hexBytes("09 00 00 00 03 73 65 6c 65 63 74 20 31")
        var framer = MySQLPacketFramer()
        var input = buffer(packet)
        let frame = try #require(try framer.next(&input))
        #expect(frame.raw == buffer(packet))
        #expect(frame.kind == .payload(buffer(Array("\u{03}select 1".utf8))))
        #expect(frame.sequenceID == 0)
        #expect(frame.lastSequenceID == 0)
        #expect(frame.packetCount == 1)
        #expect(input.readableBytes == 0)
        #expect(try framer.next(&input) == nil)
    }

    @Test("MariaDB's answer to select 1 (no DEPRECATE_EOF) is five payloads with sequence ids 1 to 5")
    func selectOneReply() throws {
        let step = MariaDBCaptures.classic[named: "COM_QUERY select 1"]
        var framer = MySQLPacketFramer()
        let outcome = frame(step.serverStream, with: &framer)
        #expect(outcome.violations.isEmpty)
        #expect(outcome.error == nil)
        #expect(outcome.frames.map(\.sequenceID) == [1, 2, 3, 4, 5])
        #expect(outcome.frames.map(\.raw) == step.serverPackets.map(buffer))
        #expect(outcome.frames.map(\.kind) == step.serverPayloads.map { .payload($0) })
    }

    @Test("an empty payload is a frame of its own")
    func emptyPayload() throws {
        var framer = MySQLPacketFramer()
        var input = buffer(Wire.header(length: 0, sequenceID: 3) + Wire.packet(4, [1]))
        let empty = try #require(try framer.next(&input))
        #expect(empty.kind == .payload(ByteBuffer()))
        #expect(empty.raw.readableBytes == 4)
        #expect(empty.sequenceID == 3)
        #expect(try framer.next(&input)?.sequenceID == 4)
    }

    @Test("byte-at-a-time feeding equals whole feeding, each frame exactly at its last byte")
    func byteAtATime() throws {
        let packets = MariaDBCaptures.classic.flatMap(\.serverPackets)
        let stream = packets.flatMap { $0 }
        var ends: [Int] = []
        for packet in packets {
            ends.append((ends.last ?? 0) + packet.count)
        }
        var whole = MySQLPacketFramer()
        let oneShot = frame(stream, with: &whole)
        #expect(oneShot.violations.isEmpty)
        #expect(oneShot.frames.count == packets.count)

        var framer = MySQLPacketFramer()
        var received = ByteBuffer()
        var frames: [MySQLFrame] = []
        var mistimed = 0
        for (offset, byte) in stream.enumerated() {
            received.writeInteger(byte)
            if let frame = try framer.next(&received) {
                frames.append(frame)
                if offset + 1 != ends[frames.count - 1] { mistimed += 1 }
            }
            #expect(try framer.next(&received) == nil)
        }
        #expect(mistimed == 0)
        #expect(frames == oneShot.frames)
    }

    @Test("random splits of a real session give the same frames, and raw slices re-concatenate to the input")
    func randomSplits() {
        let stream = MariaDBCaptures.deprecateEOF.flatMap(\.serverStream)
        var reference = MySQLPacketFramer()
        let expected = frame(stream, with: &reference).frames
        var generator = SplitMix(seed: 0x5157_3330_0000_0001)
        for _ in 0..<50 {
            var framer = MySQLPacketFramer()
            let outcome = frame(stream, with: &framer, chunkSize: { generator.int(in: 1...300) })
            #expect(outcome.violations.isEmpty)
            #expect(outcome.consumed == stream.count)
            #expect(outcome.frames == expected)
        }
    }

    // MARK: Continued packets

    /// A payload of `length` bytes (byte i is i mod 251) as packets starting at `sequenceID`, split the protocol's
    /// way: 0xFFFFFF-byte packets and a shorter, possibly empty, last one.
    static func splitPayload(length: Int, sequenceID: UInt8 = 0) -> ByteBuffer {
        var wire = ByteBuffer()
        var sequenceID = sequenceID
        var offset = 0
        while true {
            let count = min(length - offset, full)
            wire.writeBytes(Wire.header(length: count, sequenceID: sequenceID))
            writePattern(from: offset, count: count, into: &wire)
            offset += count
            sequenceID &+= 1
            if count < full { return wire }
        }
    }

    /// 4,096 rounds of 0...250: any run of the pattern is a slice of it.
    static let pattern: [UInt8] = (0..<(251 * 4096)).map { UInt8($0 % 251) }

    /// Writes bytes `offset..<offset + count` of the endless pattern (byte i is i mod 251).
    static func writePattern(from offset: Int, count: Int, into buffer: inout ByteBuffer) {
        var position = offset
        var left = count
        while left > 0 {
            let start = position % 251
            let run = min(left, pattern.count - start)
            buffer.writeBytes(pattern[start..<start + run])
            position += run
            left -= run
        }
    }

    /// The first `length` bytes of the pattern, as the payload of `splitPayload(length:)`.
    static func patternPayload(length: Int) -> ByteBuffer {
        var payload = ByteBuffer()
        writePattern(from: 0, count: length, into: &payload)
        return payload
    }

    /// Feeds `input` in `readSize` reads as a relay would and checks every frame's raw bytes against the input.
    /// Returns the frames' payload bytes joined (whole and streamed), the kinds without bytes, the sequence ids of
    /// whole frames and stream parts, and the most bytes ever held in the read buffer.
    private static func feed(
        _ input: ByteBuffer, framer: inout MySQLPacketFramer, readSize: Int
    ) throws -> (payloadBytes: ByteBuffer, kinds: [String], sequenceIDs: [UInt8], maxHeld: Int, ok: Bool) {
        var received = ByteBuffer()
        var offset = input.readerIndex
        var consumed = input.readerIndex
        var payloadBytes = ByteBuffer()
        var kinds: [String] = []
        var sequenceIDs: [UInt8] = []
        var maxHeld = 0
        var ok = true
        while offset < input.writerIndex {
            let count = min(readSize, input.writerIndex - offset)
            guard let chunk = input.getSlice(at: offset, length: count) else { return (payloadBytes, [], [], 0, false) }
            received.writeImmutableBuffer(chunk)
            offset += count
            maxHeld = max(maxHeld, received.readableBytes)
            while let frame = try framer.next(&received) {
                ok = ok && input.getSlice(at: consumed, length: frame.raw.readableBytes) == frame.raw
                consumed += frame.raw.readableBytes
                switch frame.kind {
                case .payload(let payload):
                    kinds.append("payload \(payload.readableBytes)")
                    payloadBytes.writeImmutableBuffer(payload)
                case .streamStart(let head):
                    kinds.append("start \(head.readableBytes)")
                    payloadBytes.writeImmutableBuffer(head)
                case .streamPart(let bytes, let isLast):
                    if isLast {
                        kinds.append("last part")
                    } else if kinds.last != "part" {
                        kinds.append("part")
                    }
                    payloadBytes.writeImmutableBuffer(bytes)
                }
                if sequenceIDs.last != frame.sequenceID {
                    sequenceIDs.append(frame.sequenceID)
                }
            }
            received.discardReadBytes()
        }
        ok = ok && consumed == input.writerIndex && received.readableBytes == 0
        return (payloadBytes, kinds, sequenceIDs, maxHeld, ok)
    }

    @Test("a 40 MiB payload over three packets streams with the default cap, never holding more than cap + one read")
    func fortyMiB() throws {
        let length = 40 << 20
        let input = Self.splitPayload(length: length)
        #expect(input.readableBytes == length + 3 * 4)
        var framer = MySQLPacketFramer()
        let readSize = 64 * 1024
        let result = try Self.feed(input, framer: &framer, readSize: readSize)
        #expect(result.ok)
        #expect(result.kinds == ["start 1024", "part", "last part"])
        #expect(result.sequenceIDs == [0, 1, 2])
        #expect(result.payloadBytes == Self.patternPayload(length: length))
        // The first packet is buffered whole (it fits the cap) until the second header shows the payload is larger.
        #expect(result.maxHeld <= MySQLPacketFramer.defaultMaxInspectedPayloadBytes + readSize)
        #expect(!framer.isStreaming)
    }

    @Test("with a 1 MiB cap the 40 MiB payload streams from its first header, holding about one read")
    func fortyMiBSmallCap() throws {
        let length = 40 << 20
        var framer = MySQLPacketFramer(maxInspectedPayloadBytes: 1 << 20)
        let readSize = 100_003
        let result = try Self.feed(Self.splitPayload(length: length), framer: &framer, readSize: readSize)
        #expect(result.ok)
        #expect(result.kinds == ["start 1024", "part", "last part"])
        #expect(result.sequenceIDs == [0, 1, 2])
        #expect(result.payloadBytes.readableBytes == length)
        #expect(result.maxHeld <= readSize + 8)
    }

    @Test("exactly 0xFFFFFF bytes: a full packet and an empty one, joined into one payload under the default cap")
    func exactlyFull() throws {
        let input = Self.splitPayload(length: Self.full, sequenceID: 7)
        #expect(input.readableBytes == Self.full + 8)
        var framer = MySQLPacketFramer()
        let result = try Self.feed(input, framer: &framer, readSize: 1 << 20)
        #expect(result.ok)
        #expect(result.kinds == ["payload \(Self.full)"])
        var whole = MySQLPacketFramer()
        var all = input
        let frame = try #require(try whole.next(&all))
        #expect(frame.sequenceID == 7)
        #expect(frame.lastSequenceID == 8)
        #expect(frame.packetCount == 2)
        #expect(frame.raw.readableBytes == Self.full + 8)
    }

    @Test("exactly 0xFFFFFF bytes with a small cap: the empty packet is the stream's empty last part")
    func exactlyFullStreamed() throws {
        let input = Self.splitPayload(length: Self.full, sequenceID: 0xFF)
        var framer = MySQLPacketFramer(maxInspectedPayloadBytes: 1 << 20)
        var received = input
        var frames: [MySQLFrame] = []
        while let frame = try framer.next(&received) {
            frames.append(frame)
        }
        #expect(received.readableBytes == 0)
        guard case .streamPart(let bytes, true)? = frames.last?.kind else {
            Issue.record("no last part: \(frames.map(\.kind))")
            return
        }
        #expect(bytes.readableBytes == 0)
        #expect(frames.last?.raw == buffer(Wire.header(length: 0, sequenceID: 0)))
        // The sequence id wraps from 255 to 0.
        #expect(frames.last?.sequenceID == 0)
        #expect(frames.first?.sequenceID == 0xFF)
    }

    @Test("at the cap a continued payload is still whole; one byte more and it streams")
    func capBoundary() throws {
        let cap = MySQLPacketFramer.defaultMaxInspectedPayloadBytes
        #expect(cap == Self.full + 1)
        var framer = MySQLPacketFramer()
        var atCap = Self.splitPayload(length: cap)
        let whole = try #require(try framer.next(&atCap))
        guard case .payload(let payload) = whole.kind else {
            Issue.record("expected a payload, got \(whole.kind)")
            return
        }
        #expect(payload.readableBytes == cap)
        #expect(payload.getInteger(at: payload.readerIndex + Self.full, as: UInt8.self) == UInt8(Self.full % 251))

        var over = Self.splitPayload(length: cap + 1)
        let start = try #require(try framer.next(&over))
        #expect(start.kind == .streamStart(head: Self.patternPayload(length: 1024)))
    }

    @Test("a continuation packet with the wrong sequence id is refused without consuming anything")
    func outOfOrder() throws {
        var input = ByteBuffer()
        input.writeBytes(Wire.header(length: Self.full, sequenceID: 3))
        input.writeRepeatingByte(0x61, count: Self.full)
        input.writeBytes(Wire.header(length: 1, sequenceID: 5) + [0x62])
        var framer = MySQLPacketFramer()
        let before = input
        do {
            _ = try framer.next(&input)
            Issue.record("out-of-order packets accepted")
        } catch {
            #expect(error.kind == .packetsOutOfOrder)
            #expect(
                error.reason == "continuation packet has sequence id 5, expected 4 after a full packet with 3")
        }
        #expect(input == before)

        // The same inside a stream.
        var small = MySQLPacketFramer(maxInspectedPayloadBytes: 4096)
        var streamed = input
        var error: MySQLProtocolError?
        do {
            while try small.next(&streamed) != nil {}
        } catch let caught {
            error = caught
        }
        #expect(error?.kind == .packetsOutOfOrder)
    }

    @Test("the cap cannot be set below the minimum")
    func capMinimum() {
        #expect(MySQLPacketFramer(maxInspectedPayloadBytes: 10).maxInspectedPayloadBytes == 4096)
        #expect(MySQLPacketFramer().maxInspectedPayloadBytes == 16 << 20)
    }

    @Test("a streamed payload split at many points re-concatenates exactly, whatever the split")
    func streamedSplits() throws {
        let cap = 4096
        // A 6,000-byte row as one packet, then a small one.
        let row = Wire.packet(4, [UInt8](repeating: 7, count: 6000))
        let stream = row + Wire.packet(5, [0xFE, 0, 0, 2, 0])
        var reference = MySQLPacketFramer(maxInspectedPayloadBytes: cap)
        let expected = logical(frame(stream, with: &reference).frames)
        #expect(
            expected == [
                .stream([UInt8](repeating: 7, count: 6000), first: 4, last: 4, complete: true),
                .payload([0xFE, 0, 0, 2, 0], first: 5, last: 5),
            ])
        for split in stride(from: 1, to: stream.count, by: 41) {
            var framer = MySQLPacketFramer(maxInspectedPayloadBytes: cap)
            var sizes = [split, stream.count].makeIterator()
            let outcome = frame(stream, with: &framer, chunkSize: { sizes.next() ?? 1 })
            #expect(outcome.violations.isEmpty)
            #expect(logical(outcome.frames) == expected)
        }
    }
}
