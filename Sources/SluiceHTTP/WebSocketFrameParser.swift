import NIOCore

/// Decodes RFC 6455 frames (§5.2) from a receive buffer, validating everything that can be checked per frame.
///
/// Sans-I/O: the caller appends received bytes to a buffer and calls `parse` until it returns `nil`. A partial
/// frame leaves the buffer untouched, so data may arrive in pieces of any size. Header violations are reported as
/// soon as the header bytes are present, without waiting for (or buffering) a payload we will never accept.
public struct WebSocketFrameParser {
    /// Largest payload accepted in a single frame; larger frames fail with 1009 (RFC 6455 §10.4).
    public let maxFrameSize: Int
    /// `true` when parsing client-to-server traffic, which must be masked; `false` for server-to-client traffic,
    /// which must not be (RFC 6455 §5.1).
    public let expectMasked: Bool

    public init(maxFrameSize: Int, expectMasked: Bool) {
        self.maxFrameSize = max(0, maxFrameSize)
        self.expectMasked = expectMasked
    }

    /// Consumes and returns one complete frame from the front of `buffer`, or returns `nil` and consumes nothing
    /// when the buffer does not yet hold a whole frame.
    ///
    /// Masked payloads are unmasked into a new buffer; unmasked payloads are returned as a slice of `buffer`.
    /// After an error the connection must be failed: the buffer contents are not meaningful any more.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(WebSocketProtocolError) -> WebSocketFrame? {
        let start = buffer.readerIndex
        guard
            let firstByte = buffer.getInteger(at: start, as: UInt8.self),
            let secondByte = buffer.getInteger(at: start + 1, as: UInt8.self)
        else {
            return nil
        }

        let fin = firstByte & 0x80 != 0
        let rsv = (firstByte >> 4) & 0x7
        let masked = secondByte & 0x80 != 0
        let shortLength = secondByte & 0x7F

        // §5.2: a reserved opcode means the peer speaks something we cannot interpret.
        guard let opcode = WebSocketOpcode(rawValue: firstByte & 0xF) else {
            throw .protocolError("reserved opcode \(firstByte & 0xF)")
        }
        // §5.2: RSV bits are only meaningful with a negotiated extension, and the proxy negotiates none.
        guard rsv == 0 else {
            throw .protocolError("reserved bits set without a negotiated extension")
        }
        if opcode.isControl {
            // §5.5: control frames must not be fragmented and carry at most 125 bytes.
            guard fin else {
                throw .protocolError("control frame is fragmented")
            }
            guard shortLength <= WebSocketFrame.maxControlPayloadSize else {
                throw .protocolError("control frame payload exceeds 125 bytes")
            }
        }
        // §5.1: clients must mask, servers must not; either mistake fails the connection.
        guard masked == expectMasked else {
            throw .protocolError(expectMasked ? "frame from client is not masked" : "frame from server is masked")
        }

        var headerSize = 2
        let payloadLength: UInt64
        switch shortLength {
        case 126:
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            // §5.2: the minimal number of bytes must be used to encode the length.
            guard extended >= 126 else {
                throw .protocolError("16-bit length \(extended) is not minimally encoded")
            }
            payloadLength = UInt64(extended)
            headerSize += 2
        case 127:
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            // §5.2: "the most significant bit MUST be 0".
            guard extended & (1 << 63) == 0 else {
                throw .protocolError("64-bit length has the most significant bit set")
            }
            guard extended > 0xFFFF else {
                throw .protocolError("64-bit length \(extended) is not minimally encoded")
            }
            payloadLength = extended
            headerSize += 8
        default:
            payloadLength = UInt64(shortLength)
        }

        // Compared as UInt64 so a hostile 2^62 length cannot overflow Int arithmetic below.
        guard payloadLength <= UInt64(maxFrameSize) else {
            throw .messageTooBig("frame payload of \(payloadLength) bytes exceeds limit of \(maxFrameSize)")
        }
        let length = Int(payloadLength)

        var maskKey: UInt32?
        if masked {
            guard let key = buffer.getInteger(at: start + headerSize, as: UInt32.self) else { return nil }
            maskKey = key
            headerSize += 4
        }

        guard let rawPayload = buffer.getSlice(at: start + headerSize, length: length) else { return nil }

        let payload: ByteBuffer
        if let maskKey {
            var unmasked = ByteBuffer()
            unmasked.reserveCapacity(length)
            WebSocketFrameEncoder.writeMasked(rawPayload, maskKey: maskKey, into: &unmasked)
            payload = unmasked
        } else {
            payload = rawPayload
        }

        buffer.moveReaderIndex(forwardBy: headerSize + length)
        return WebSocketFrame(fin: fin, rsv: rsv, opcode: opcode, maskKey: maskKey, payload: payload)
    }
}
