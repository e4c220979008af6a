import NIOCore

/// Cuts one direction of a MySQL/MariaDB connection into logical payloads, without I/O.
///
/// Sans-I/O, like `PostgresFramer`: the caller appends what it read to a buffer and calls `next` until it returns
/// nil. Nothing of a partial payload is consumed, except for streamed payloads (below), which are handed out as they
/// arrive. Packets are never altered: every frame's `raw` is a slice of the input.
///
/// **Framing** (PROTOCOLS.md §2; MariaDB "0-packet"). A packet is `len:u24, seq:u8, payload`, little-endian. A
/// payload of 2^24−1 bytes or more travels as packets of exactly 0xFFFFFF bytes followed by a shorter last one, which
/// is empty when the payload's length is a multiple of 0xFFFFFF; the receiver joins them before parsing. The framer
/// does that join and checks that each continuation packet's sequence id is its predecessor's plus one, as the
/// server's network layer does. Whether a payload's *first* sequence id is right (0 for a command, counting on
/// through its response) depends on the conversation, which is the inspector's to follow. The same framer serves
/// both directions: the framing is the same, and the greeting, SSLRequest and every later packet share it. Sluice
/// clears CLIENT_COMPRESS and CLIENT_ZSTD_COMPRESSION_ALGORITHM, so compressed framing never reaches it; after an
/// SSLRequest the inspector moves to the decrypted stream.
///
/// **Limits and streaming.** A logical payload of at most `maxInspectedPayloadBytes` is framed whole (`.payload`).
/// A larger one (a big INSERT, a LOAD DATA LOCAL chunk, a long BLOB parameter, a large row) is streamed: the framer
/// knows it is too large as soon as the packet headers seen so far add up to more than the cap, and then emits
/// `.streamStart` with the first `streamHeadBytes` of the payload, then `.streamPart`s of whatever has arrived, packet
/// by packet, the last with `isLast`. The server itself limits payloads by `max_allowed_packet` (at most 1 GiB); the
/// framer needs no limit of its own since nothing is buffered beyond the cap. So the caller never holds more than
/// the cap plus a few headers plus one read. With the default cap of 16 MiB, a payload of up to 16 MiB (one full
/// packet and a second of 0 or 1 bytes) is framed whole, and anything larger is streamed.
public struct MySQLPacketFramer: Sendable {
    /// 16 MiB: the largest payload a single packet can carry plus a byte, far above any statement a person or ORM
    /// writes, small enough to buffer per connection.
    public static let defaultMaxInspectedPayloadBytes = 16 << 20
    /// The cap is raised to at least this, so that a streamed payload always has bytes after its head.
    public static let minimumInspectedPayloadBytes = 4096
    /// The largest payload of one packet; a packet this full is continued by the next.
    public static let maxPacketPayloadBytes = 0xFF_FFFF
    /// How much of a streamed payload `.streamStart` carries: a command byte, a statement id, the first kilobyte of
    /// SQL.
    public static let streamHeadBytes = 1024

    /// Largest logical payload framed whole; see the type's documentation.
    public let maxInspectedPayloadBytes: Int

    /// The packet a stream is in: payload bytes still to come in it, whether it is full (so another packet follows),
    /// and its sequence id (the next packet's must be one more).
    private struct StreamPosition: Sendable {
        var packetRemaining: Int
        var packetIsFull: Bool
        var sequenceID: UInt8
    }

    private var stream: StreamPosition?

    /// True between a `.streamStart` and the `.streamPart` with `isLast`.
    public var isStreaming: Bool { stream != nil }

    public init(maxInspectedPayloadBytes: Int = defaultMaxInspectedPayloadBytes) {
        self.maxInspectedPayloadBytes = max(maxInspectedPayloadBytes, Self.minimumInspectedPayloadBytes)
    }

    /// Consumes and returns the next frame from the front of `buffer`, or returns nil and consumes nothing when the
    /// buffer does not hold one yet. A throwing call consumes nothing either. After an error the connection must be
    /// failed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(MySQLProtocolError) -> MySQLFrame? {
        if let position = stream {
            return try nextStreamPart(&buffer, position)
        }
        let start = buffer.readerIndex
        var offset = start
        var total = 0
        var firstSequenceID: UInt8 = 0
        var lastSequenceID: UInt8 = 0
        var packets = 0
        // Walks the headers of the packets forming one payload; their number is at most cap / 0xFFFFFF + 1, so a
        // call that finds the payload incomplete costs a few reads, not a scan of the buffered bytes.
        while true {
            guard let (length, sequenceID) = Self.header(in: buffer, at: offset) else { return nil }
            if packets == 0 {
                firstSequenceID = sequenceID
            } else {
                try Self.checkContinuation(sequenceID, after: lastSequenceID)
            }
            lastSequenceID = sequenceID
            packets += 1
            total += length
            if total > maxInspectedPayloadBytes {
                return startStream(&buffer)
            }
            guard buffer.writerIndex - offset >= 4 + length else { return nil }
            offset += 4 + length
            if length < Self.maxPacketPayloadBytes {
                break
            }
        }
        guard let raw = buffer.readSlice(length: offset - start) else { return nil }
        let payload: ByteBuffer
        if packets == 1 {
            payload = raw.getSlice(at: raw.readerIndex + 4, length: total) ?? ByteBuffer()
        } else {
            payload = Self.join(raw, total: total)
        }
        return MySQLFrame(
            kind: .payload(payload), raw: raw, sequenceID: firstSequenceID, lastSequenceID: lastSequenceID)
    }

    /// The first packet's header and the payload's head, once they have arrived. The payload is over the cap, which
    /// is at least 4 KiB, and only a full packet is continued, so the first packet always holds more than the head.
    private mutating func startStream(_ buffer: inout ByteBuffer) -> MySQLFrame? {
        guard let (length, sequenceID) = Self.header(in: buffer, at: buffer.readerIndex),
            let raw = buffer.readSlice(length: 4 + Self.streamHeadBytes)
        else { return nil }
        stream = StreamPosition(
            packetRemaining: length - Self.streamHeadBytes, packetIsFull: length == Self.maxPacketPayloadBytes,
            sequenceID: sequenceID)
        let head = raw.getSlice(at: raw.readerIndex + 4, length: Self.streamHeadBytes) ?? ByteBuffer()
        return MySQLFrame(kind: .streamStart(head: head), raw: raw, sequenceID: sequenceID, lastSequenceID: sequenceID)
    }

    private mutating func nextStreamPart(
        _ buffer: inout ByteBuffer, _ position: StreamPosition
    ) throws(MySQLProtocolError) -> MySQLFrame? {
        var position = position
        var headerLength = 0
        if position.packetRemaining == 0 {
            // Only a full packet leaves the stream open at its end, so a continuation packet starts here.
            guard let (length, sequenceID) = Self.header(in: buffer, at: buffer.readerIndex) else { return nil }
            try Self.checkContinuation(sequenceID, after: position.sequenceID)
            // Wait for a byte of payload, so that only the empty last packet makes an empty part.
            guard length == 0 || buffer.readableBytes > 4 else { return nil }
            position = StreamPosition(
                packetRemaining: length, packetIsFull: length == Self.maxPacketPayloadBytes, sequenceID: sequenceID)
            headerLength = 4
        }
        let count = min(position.packetRemaining, buffer.readableBytes - headerLength)
        guard count > 0 || position.packetRemaining == 0, let raw = buffer.readSlice(length: headerLength + count)
        else { return nil }
        position.packetRemaining -= count
        let isLast = position.packetRemaining == 0 && !position.packetIsFull
        stream = isLast ? nil : position
        let bytes = raw.getSlice(at: raw.readerIndex + headerLength, length: count) ?? ByteBuffer()
        return MySQLFrame(
            kind: .streamPart(bytes: bytes, isLast: isLast), raw: raw, sequenceID: position.sequenceID,
            lastSequenceID: position.sequenceID)
    }

    /// `len:u24, seq:u8` at `index`, or nil when the four bytes have not all arrived.
    private static func header(in buffer: ByteBuffer, at index: Int) -> (length: Int, sequenceID: UInt8)? {
        guard let word = buffer.getInteger(at: index, endianness: .little, as: UInt32.self) else { return nil }
        return (Int(word & 0xFF_FFFF), UInt8(truncatingIfNeeded: word >> 24))
    }

    private static func checkContinuation(_ sequenceID: UInt8, after previous: UInt8) throws(MySQLProtocolError) {
        guard sequenceID == previous &+ 1 else {
            throw MySQLProtocolError(
                kind: .packetsOutOfOrder,
                reason: "continuation packet has sequence id \(sequenceID), expected \(previous &+ 1) after a full "
                    + "packet with \(previous)")
        }
    }

    /// Copies the payloads of the packets in `raw` (headers and all) into one buffer.
    private static func join(_ raw: ByteBuffer, total: Int) -> ByteBuffer {
        var payload = ByteBufferAllocator().buffer(capacity: total)
        var index = raw.readerIndex
        while let (length, _) = header(in: raw, at: index), let part = raw.getSlice(at: index + 4, length: length) {
            payload.writeImmutableBuffer(part)
            index += 4 + length
        }
        return payload
    }
}
