import NIOCore
import SluicePostgres
import SluiceTestSupport
import Testing

@Suite("PostgresFramer", .ownThread)
struct PostgresFramerTests {
    /// What psql 15 sends for `SELECT 1` at the prompt: the text with its semicolon, simple query protocol.
    static let psqlSelect1 = hexBytes("51 00 00 00 0e 53 45 4c 45 43 54 20 31 3b 00")

    /// The server's answer to it: RowDescription (`?column?`, int4 = OID 23, size 4, typmod -1, text), DataRow
    /// ("1"), CommandComplete ("SELECT 1"), ReadyForQuery (idle).
    static let select1Reply = hexBytes(
        """
        54 00 00 00 21 00 01 3f 63 6f 6c 75 6d 6e 3f 00 00 00 00 00 00 00 00 00 00 17 00 04 ff ff ff ff 00 00
        44 00 00 00 0b 00 01 00 00 00 01 31
        43 00 00 00 0d 53 45 4c 45 43 54 20 31 00
        5a 00 00 00 05 49
        """)

    /// psql's StartupMessage (protocol 3.0).
    static let psqlStartup = Wire.startup([
        ("user", "alice"), ("database", "shop"), ("application_name", "psql"), ("client_encoding", "UTF8"),
    ])

    static let sslRequest = hexBytes("00 00 00 08 04 d2 16 2f")
    static let gssEncRequest = hexBytes("00 00 00 08 04 d2 16 30")

    static func typedFrontend(cap: Int = PostgresFramer.defaultMaxInspectedMessageBytes) -> PostgresFramer {
        var framer = PostgresFramer(direction: .frontend, maxInspectedMessageBytes: cap)
        framer.expectTypedMessages()
        return framer
    }

    // MARK: Whole messages

    @Test("psql's SELECT 1 is one Query frame whose raw bytes are the input")
    func psqlQuery() throws {
        var framer = Self.typedFrontend()
        var input = buffer(Self.psqlSelect1)
        let frame = try #require(try framer.next(&input))
        #expect(frame.raw == buffer(Self.psqlSelect1))
        #expect(frame.kind == .message(type: UInt8(ascii: "Q"), body: buffer(Array("SELECT 1;".utf8) + [0])))
        #expect(input.readableBytes == 0)
        #expect(try framer.next(&input) == nil)
    }

    @Test("many backend messages in one buffer")
    func manyInOneBuffer() throws {
        var framer = PostgresFramer(direction: .backend)
        #expect(framer.phase == .typed)
        var input = buffer(Self.select1Reply)
        var types: [String] = []
        var raws: [UInt8] = []
        while let frame = try framer.next(&input) {
            guard case .message(let type, _) = frame.kind else {
                Issue.record("unexpected \(frame.kind)")
                return
            }
            types.append(String(UnicodeScalar(type)))
            raws += Array(frame.raw.readableBytesView)
        }
        #expect(types == ["T", "D", "C", "Z"])
        #expect(raws == Self.select1Reply)
    }

    @Test("one message over many buffers is framed only when its last byte arrives")
    func oneOverMany() throws {
        let sql = String(repeating: "SELECT 'x'; ", count: 10_000)
        let bytes = Wire.message("Q", Wire.cstring(sql))
        var framer = Self.typedFrontend()
        var received = ByteBuffer()
        var frames: [PostgresFrame] = []
        for start in stride(from: 0, to: bytes.count, by: 997) {
            received.writeBytes(bytes[start..<min(start + 997, bytes.count)])
            if let frame = try framer.next(&received) {
                frames.append(frame)
                #expect(start + 997 >= bytes.count)
            }
        }
        #expect(frames.count == 1)
        #expect(frames.first?.raw == buffer(bytes))
        #expect(received.readableBytes == 0)
    }

    @Test("byte-at-a-time feeding equals whole-buffer feeding, each frame exactly at its last byte")
    func byteAtATime() throws {
        let messages = [
            Self.psqlStartup, Wire.message("Q", Wire.cstring("BEGIN")),
            Wire.message("P", Wire.cstring(""), Wire.cstring("SELECT $1"), Wire.int16(0)),
            Wire.message(
                "B", Wire.cstring(""), Wire.cstring(""), Wire.int16(0), Wire.int16(1), Wire.value(Array("7".utf8)),
                Wire.int16(1), Wire.int16(0)),
            Wire.message("D", Wire.byte("P"), Wire.cstring("")), Wire.message("E", Wire.cstring(""), Wire.int32(0)),
            Wire.message("S"), Wire.message("X"),
        ]
        let stream = messages.flatMap { $0 }
        var ends: [Int] = []
        for message in messages {
            ends.append((ends.last ?? 0) + message.count)
        }

        var whole = PostgresFramer(direction: .frontend)
        let oneShot = frame(stream, with: &whole)

        var framer = PostgresFramer(direction: .frontend)
        var received = ByteBuffer()
        var frames: [PostgresFrame] = []
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
        #expect(frames.count == messages.count)
        #expect(oneShot.violations.isEmpty)
        #expect(framer.phase == .typed)
    }

    // MARK: Startup phase

    @Test("a StartupMessage switches the frontend to typed messages")
    func startupSwitchesToTyped() throws {
        var framer = PostgresFramer(direction: .frontend)
        #expect(framer.phase == .startup)
        var input = buffer(Self.psqlStartup + Self.psqlSelect1)
        let startup = try #require(try framer.next(&input))
        guard case .startupPacket(let body) = startup.kind else {
            Issue.record("expected a startup packet, got \(startup.kind)")
            return
        }
        #expect(startup.raw == buffer(Self.psqlStartup))
        #expect(body == buffer(Array(Self.psqlStartup[4...])))
        #expect(framer.phase == .typed)
        let query = try #require(try framer.next(&input))
        #expect(query.raw == buffer(Self.psqlSelect1))
    }

    @Test("SSLRequest and GSSENCRequest keep the startup phase (libpq: gssencmode=prefer, then sslmode=prefer)")
    func encryptionRequestsStayInStartup() throws {
        var framer = PostgresFramer(direction: .frontend)
        for request in [Self.gssEncRequest, Self.sslRequest] {
            var input = buffer(request)
            let frame = try #require(try framer.next(&input))
            #expect(frame.raw == buffer(request))
            #expect(framer.phase == .startup)
        }
        var input = buffer(Self.psqlStartup)
        _ = try #require(try framer.next(&input))
        #expect(framer.phase == .typed)
    }

    @Test("after a CancelRequest any byte is an error")
    func cancelEndsTheStream() throws {
        var framer = PostgresFramer(direction: .frontend)
        let cancel = Wire.startupPacket(code: 80_877_102, Wire.int32(4242), [1, 2, 3, 4])
        var input = buffer(cancel)
        _ = try #require(try framer.next(&input))
        #expect(framer.phase == .cancelled)
        #expect(try framer.next(&input) == nil)
        var more = buffer([0x51])
        #expect(reason { _ = try framer.next(&more) } == "data after a CancelRequest, which ends the connection")
        #expect(kind { _ = try framer.next(&more) } == .unexpectedData)
    }

    @Test("protocol 3.2 and an unknown 3.x minor are StartupMessages (the server negotiates the minor)")
    func startupMinorVersions() throws {
        for code: UInt32 in [196_610, 196_608 + 99] {
            var framer = PostgresFramer(direction: .frontend)
            var input = buffer(Wire.startup([("user", "u")], code: code))
            _ = try #require(try framer.next(&input))
            #expect(framer.phase == .typed)
        }
    }

    @Test(
        "bad startup codes are refused as soon as the code is there",
        arguments: [131_072 /* 2.0 */, 262_144 /* 4.0 */, 80_877_105 /* 1234.5681 */, 0, 0xFFFF_FFFF] as [UInt32])
    func badStartupCodes(code: UInt32) {
        var framer = PostgresFramer(direction: .frontend)
        // Only the length and code: the rest of a 9,000-byte packet never has to arrive.
        var input = buffer(Wire.int32(9000) + Wire.uint32(code))
        #expect(kind { _ = try framer.next(&input) } == .unsupportedStartupCode)
        #expect(input.readerIndex == 0)
    }

    @Test("startup packet lengths: below 8 and over 10,000 are refused on the length alone")
    func startupLengths() throws {
        for length: Int32 in [-1, 0, 4, 7] {
            var framer = PostgresFramer(direction: .frontend)
            var input = buffer(Wire.int32(length))
            #expect(kind { _ = try framer.next(&input) } == .invalidLength)
        }
        var framer = PostgresFramer(direction: .frontend)
        var input = buffer(Wire.int32(10_001))
        #expect(kind { _ = try framer.next(&input) } == .messageTooLarge)

        // Exactly 10,000 bytes is allowed.
        let big = Wire.startup([("user", "u"), ("options", String(repeating: "x", count: 10_000 - 25))])
        #expect(big.count == 10_000)
        var exact = PostgresFramer(direction: .frontend)
        var bigInput = buffer(big)
        #expect(try exact.next(&bigInput)?.raw.readableBytes == 10_000)
    }

    @Test("expectTypedMessages skips the startup phase")
    func expectTyped() throws {
        var framer = PostgresFramer(direction: .frontend)
        framer.expectTypedMessages()
        var input = buffer(Self.psqlSelect1)
        #expect(try framer.next(&input)?.raw == buffer(Self.psqlSelect1))
    }

    // MARK: Limits

    @Test("length below 4 is refused", arguments: [3, 0, -1, Int32.min])
    func lengthBelowFour(length: Int32) {
        for direction in [PostgresDirection.frontend, .backend] {
            var framer = PostgresFramer(direction: direction)
            framer.expectTypedMessages()
            var input = buffer([UInt8(ascii: "d")] + Wire.int32(length))
            #expect(kind { _ = try framer.next(&input) } == .invalidLength)
        }
    }

    @Test("a streamable message over 1 GiB is refused")
    func overOneGiB() {
        var framer = PostgresFramer(direction: .backend)
        var input = buffer([UInt8(ascii: "D")] + Wire.int32(Int32.max))
        #expect(kind { _ = try framer.next(&input) } == .invalidLength)
        // 1 GiB of body is still accepted (streamed).
        var atLimit = PostgresFramer(direction: .backend)
        var limitInput = buffer([UInt8(ascii: "D")] + Wire.int32(Int32((1 << 30) + 4)) + [0, 1])
        #expect(throws: Never.self) { try atLimit.next(&limitInput) }
    }

    @Test("inspected messages over the cap are refused on the header, naming type, length and cap")
    func overCap() throws {
        let cap = 8192
        let cases: [(PostgresDirection, Unicode.Scalar, String)] = [
            (.frontend, "Q", "frontend 'Q' Query"), (.frontend, "P", "frontend 'P' Parse"),
            (.frontend, "F", "frontend 'F' FunctionCall"), (.frontend, "p", "frontend 'p' PasswordMessage"),
            (.backend, "E", "backend 'E' ErrorResponse"), (.backend, "T", "backend 'T' RowDescription"),
            (.backend, "R", "backend 'R' Authentication"), (.backend, "A", "backend 'A' NotificationResponse"),
        ]
        for (direction, letter, name) in cases {
            var framer = PostgresFramer(direction: direction, maxInspectedMessageBytes: cap)
            framer.expectTypedMessages()
            var input = buffer([UInt8(ascii: letter)] + Wire.int32(Int32(cap + 1)))
            do {
                _ = try framer.next(&input)
                Issue.record("\(name) over the cap was accepted")
            } catch {
                #expect(error.kind == .messageTooLarge)
                #expect(error.reason == "\(name) has length \(cap + 1), over the inspection cap of \(cap) bytes")
            }
        }
        // At the cap exactly, a message is framed whole.
        var framer = Self.typedFrontend(cap: cap)
        let atCap = Wire.message("Q", Wire.cstring(String(repeating: "a", count: cap - 5)))
        var input = buffer(atCap)
        #expect(try framer.next(&input)?.kind == .message(type: UInt8(ascii: "Q"), body: buffer(Array(atCap[5...]))))
    }

    @Test("the cap cannot be set below the minimum")
    func capMinimum() {
        #expect(PostgresFramer(direction: .backend, maxInspectedMessageBytes: 10).maxInspectedMessageBytes == 4096)
        #expect(PostgresFramer(direction: .backend).maxInspectedMessageBytes == 16 << 20)
    }

    @Test("unknown type letters are refused on the first byte")
    func unknownTypes() throws {
        let frontendUnknown: [UInt8] = [0, 0x7A, UInt8(ascii: "Z"), UInt8(ascii: "T"), UInt8(ascii: "R"), 0xFF]
        for type in frontendUnknown {
            var framer = Self.typedFrontend()
            var input = buffer([type])
            do {
                _ = try framer.next(&input)
                Issue.record("frontend type \(type) accepted")
            } catch {
                #expect(error.kind == .unknownMessageType)
                #expect(error.reason.hasPrefix("unknown frontend message type 0x"))
            }
        }
        var framer = Self.typedFrontend()
        var z = buffer([0x7A])
        #expect(reason { _ = try framer.next(&z) } == "unknown frontend message type 0x7a")

        for type in [UInt8(ascii: "B"), UInt8(ascii: "P"), UInt8(ascii: "Q"), UInt8(ascii: "X"), 0] {
            var backend = PostgresFramer(direction: .backend)
            var input = buffer([type])
            #expect(kind { _ = try backend.next(&input) } == .unknownMessageType)
        }
    }

    // MARK: Streaming

    /// Feeds a large message in `readSize` reads as a relay would, checks every raw slice against the input, and
    /// returns the frames' kinds (parts without their bytes) plus the most bytes ever held in the read buffer.
    private static func stream(
        _ input: ByteBuffer, framer: inout PostgresFramer, readSize: Int
    ) throws -> (starts: [PostgresFrame.Kind], parts: Int, partBytes: Int, lastSeen: Bool, maxHeld: Int, ok: Bool) {
        var received = ByteBuffer()
        var offset = input.readerIndex
        var consumed = input.readerIndex
        var starts: [PostgresFrame.Kind] = []
        var parts = 0
        var partBytes = 0
        var lastSeen = false
        var maxHeld = 0
        var ok = true
        while offset < input.writerIndex {
            let count = min(readSize, input.writerIndex - offset)
            guard let chunk = input.getSlice(at: offset, length: count) else { return (starts, 0, 0, false, 0, false) }
            received.writeImmutableBuffer(chunk)
            offset += count
            maxHeld = max(maxHeld, received.readableBytes)
            while let frame = try framer.next(&received) {
                ok = ok && input.getSlice(at: consumed, length: frame.raw.readableBytes) == frame.raw
                consumed += frame.raw.readableBytes
                switch frame.kind {
                case .streamPart(let bytes, let isLast):
                    parts += 1
                    partBytes += bytes.readableBytes
                    ok = ok && bytes == frame.raw && !lastSeen
                    lastSeen = isLast
                default:
                    starts.append(frame.kind)
                }
            }
            received.discardReadBytes()
        }
        ok = ok && consumed == input.writerIndex && received.readableBytes == 0
        return (starts, parts, partBytes, lastSeen, maxHeld, ok)
    }

    @Test("a 50 MiB DataRow streams with the default cap, holding no more than one read")
    func fiftyMiBDataRow() throws {
        let valueLength = 50 << 20
        var input = ByteBuffer()
        input.writeInteger(UInt8(ascii: "D"))
        input.writeInteger(Int32(4 + 2 + 4 + valueLength))
        input.writeInteger(Int16(1))
        input.writeInteger(Int32(valueLength))
        input.writeRepeatingByte(0x61, count: valueLength)
        input.writeBytes(Wire.message("C", Wire.cstring("SELECT 1")) + Wire.message("Z", Wire.byte("I")))

        var framer = PostgresFramer(direction: .backend)
        let readSize = 64 * 1024
        let result = try Self.stream(input, framer: &framer, readSize: readSize)
        #expect(result.ok)
        #expect(result.lastSeen)
        #expect(result.partBytes == 2 + 4 + valueLength - PostgresFramer.streamHeadBytes)
        #expect(result.parts >= valueLength / readSize)
        // Streaming drains every read: nothing accumulates towards the 50 MiB.
        #expect(result.maxHeld <= readSize + 5 + PostgresFramer.streamHeadBytes)
        #expect(result.starts.count == 3)
        guard case .streamStart(let type, let length, let head)? = result.starts.first else {
            Issue.record("no streamStart: \(result.starts)")
            return
        }
        #expect(type == UInt8(ascii: "D"))
        #expect(length == 4 + 2 + 4 + valueLength)
        #expect(head.readableBytes == PostgresFramer.streamHeadBytes)
        #expect(try PostgresStreamHead(direction: .backend, type: type, head: head) == .dataRow(columnCount: 1))
        #expect(framer.streamRemaining == 0)
    }

    @Test("a 50 MiB COPY FROM STDIN CopyData streams with a 1 MiB cap; messages after it frame whole")
    func fiftyMiBCopyData() throws {
        let dataLength = 50 << 20
        let cap = 1 << 20
        var input = ByteBuffer()
        input.writeInteger(UInt8(ascii: "d"))
        input.writeInteger(Int32(4 + dataLength))
        input.writeRepeatingByte(0x0A, count: dataLength)
        input.writeBytes(Wire.message("c") + Wire.message("S"))

        var framer = PostgresFramer(direction: .frontend, maxInspectedMessageBytes: cap)
        framer.expectTypedMessages()
        // Odd read sizes, so the head and parts straddle reads.
        let result = try Self.stream(input, framer: &framer, readSize: 100_003)
        #expect(result.ok)
        #expect(result.lastSeen)
        #expect(result.partBytes == dataLength - PostgresFramer.streamHeadBytes)
        #expect(result.maxHeld <= cap + 100_003)
        #expect(result.starts.count == 3)
        #expect(result.starts.dropFirst().first == .message(type: UInt8(ascii: "c"), body: ByteBuffer()))
    }

    @Test("a Bind over the cap streams, and its head names portal and statement; under the cap it is whole")
    func oversizedBind() throws {
        let cap = 4096
        let value = [UInt8](repeating: 0xAB, count: 10_000)
        let bind = Wire.message(
            "B", Wire.cstring("portal1"), Wire.cstring("stmt1"), Wire.int16(1), Wire.int16(1), Wire.int16(1),
            Wire.value(value), Wire.int16(0))
        var framer = Self.typedFrontend(cap: cap)
        let outcome = frame(bind, with: &framer, chunkSize: { 3000 })
        #expect(outcome.violations.isEmpty)
        #expect(outcome.error == nil)
        guard case .streamStart(let type, let length, let head)? = outcome.frames.first?.kind else {
            Issue.record("expected a streamStart, got \(outcome.frames)")
            return
        }
        #expect(type == UInt8(ascii: "B"))
        #expect(length == bind.count - 1)
        #expect(
            try PostgresStreamHead(direction: .frontend, type: type, head: head)
                == .bind(portal: "portal1", statement: "stmt1"))
        #expect(logical(outcome.frames) == [.stream(type, length: length, body: Array(bind[5...]), complete: true)])

        var small = Self.typedFrontend(cap: 1 << 20)
        let whole = frame(bind, with: &small)
        #expect(logical(whole.frames) == [.message(type, Array(bind[5...]))])
    }

    @Test("a streamed message split at every possible point re-concatenates exactly")
    func streamedSplits() throws {
        let cap = 4096
        let row = Wire.message("D", Wire.int16(2), Wire.value([UInt8](repeating: 7, count: 5000)), Wire.value(nil))
        let stream = row + Wire.message("C", Wire.cstring("SELECT 1"))
        var reference = PostgresFramer(direction: .backend, maxInspectedMessageBytes: cap)
        let expected = logical(frame(stream, with: &reference).frames)
        #expect(expected.count == 2)
        for split in stride(from: 1, to: stream.count, by: 37) {
            var framer = PostgresFramer(direction: .backend, maxInspectedMessageBytes: cap)
            var sizes = [split, stream.count].makeIterator()
            let outcome = frame(stream, with: &framer, chunkSize: { sizes.next() ?? 1 })
            #expect(outcome.violations.isEmpty)
            #expect(logical(outcome.frames) == expected)
        }
    }
}

/// The kind of the `PostgresProtocolError` `body` throws, or nil when it does not throw.
func kind(_ body: () throws -> Void) -> PostgresProtocolError.Kind? {
    do {
        try body()
        return nil
    } catch let error as PostgresProtocolError {
        return error.kind
    } catch {
        return nil
    }
}

/// The reason of the `PostgresProtocolError` `body` throws, or nil when it does not throw.
func reason(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as PostgresProtocolError {
        return error.reason
    } catch {
        return "\(error)"
    }
}
