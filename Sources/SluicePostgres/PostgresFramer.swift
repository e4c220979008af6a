import NIOCore

/// Cuts one direction of a PostgreSQL connection into messages, without I/O.
///
/// Sans-I/O, like `WebSocketFrameParser`: the caller appends what it read to a buffer and calls `next` until it
/// returns nil. Nothing of a partial message is consumed, except for streamed messages (below), whose body is
/// handed out as it arrives. Every limit is checked as soon as the header bytes that decide it are present, so a
/// hostile length is refused before anything is buffered for it.
///
/// **Framing** (PROTOCOLS.md §1; PostgreSQL docs §55.7). Typed messages are `type:u8, len:i32, body`, where `len`
/// counts itself but not the type byte. The frontend begins in the *startup phase* instead: untyped packets
/// `len:i32, code:i32, …` of 8 to 10,000 bytes (the server's `MAX_STARTUP_PACKET_LENGTH`).
///
/// **Phase switch: the framer follows the startup packets itself**, since it is the one that reads their codes:
/// - StartupMessage (any 3.x): typed messages follow.
/// - SSLRequest, GSSENCRequest: the phase stays `.startup`. The inspector answers them itself (`N`, or `S` and a TLS
///   handshake), and in both cases the client's next packet is again a startup packet (in clear after `N`, inside
///   TLS after `S`; a framer for the decrypted stream starts in `.startup` too). Bytes already buffered after the
///   request were sent before the client saw the answer, so the caller must not frame them: drop them
///   (PROTOCOLS.md §1; CVE-2021-23214), or fail the connection as the server does ("received unencrypted data after
///   SSL request").
/// - CancelRequest: the phase becomes `.cancelled`; the server closes such a connection without answering, and
///   any further byte is an error.
/// `expectTypedMessages()` exists for a caller that takes over a connection whose startup it did not see.
///
/// The backend is always typed. The one untyped backend byte, the `S`/`N` answer to an SSLRequest or GSSENCRequest,
/// never reaches this framer: Sluice answers the client's request itself, and when it sends its own SSLRequest
/// upstream it reads that single byte before creating the backend framer.
///
/// **Limits and streaming.** A message whose length field is at most `maxInspectedMessageBytes` is framed whole
/// (`.message`). Larger ones are refused with `.messageTooLarge`, except the types a proxy need not read whole,
/// which the server accepts up to 1 GiB: backend DataRow `D` and FunctionCallResponse `V`, CopyData `d` both ways,
/// and frontend Bind `B` (large parameter values). Those are streamed: `.streamStart` with the header and the first
/// `streamHeadBytes` of the body, then `.streamPart`s of whatever has arrived, the last with `isLast`. So the caller
/// never needs to buffer more than the cap plus one read.
public struct PostgresFramer: Sendable {
    public enum Phase: Sendable, Hashable {
        /// Untyped startup packets (frontend only).
        case startup
        /// `type, len, body` messages.
        case typed
        /// A CancelRequest was framed: nothing may follow.
        case cancelled
    }

    /// 16 MiB: far above any statement a person or ORM writes, small enough to buffer per connection.
    public static let defaultMaxInspectedMessageBytes = 16 << 20
    /// The cap is raised to at least this, so that a streamed message always has body bytes after its head.
    public static let minimumInspectedMessageBytes = 4096
    /// The server's `MAX_STARTUP_PACKET_LENGTH`: it refuses larger startup packets (backend_startup.c).
    public static let maxStartupPacketLength = 10_000
    /// The server's limit for a message body, `PQ_LARGE_MESSAGE_LIMIT` (about `MaxAllocSize`, 1 GiB).
    public static let maxMessageBodyBytes = 1 << 30
    /// How much of a streamed message's body `.streamStart` carries: two names of `NAMEDATALEN` (64) fit many times,
    /// so a Bind's portal and statement names are readable from it.
    public static let streamHeadBytes = 1024

    public let direction: PostgresDirection
    /// Largest length field of a message framed whole; see the type's documentation.
    public let maxInspectedMessageBytes: Int
    public private(set) var phase: Phase
    /// Body bytes of the streamed message still to come; 0 when no message is being streamed.
    public private(set) var streamRemaining: Int = 0

    /// A frontend framer starts in `.startup`, a backend framer in `.typed`.
    public init(direction: PostgresDirection, maxInspectedMessageBytes: Int = defaultMaxInspectedMessageBytes) {
        self.direction = direction
        self.maxInspectedMessageBytes = max(maxInspectedMessageBytes, Self.minimumInspectedMessageBytes)
        self.phase = direction == .frontend ? .startup : .typed
    }

    /// Treats what follows as typed messages, for a caller that did not see (or did not frame) the startup packet.
    public mutating func expectTypedMessages() {
        phase = .typed
    }

    /// Consumes and returns the next frame from the front of `buffer`, or returns nil and consumes nothing when the
    /// buffer does not hold one yet. After an error the connection must be failed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(PostgresProtocolError) -> PostgresFrame? {
        if streamRemaining > 0 {
            return nextStreamPart(&buffer)
        }
        switch phase {
        case .startup:
            return try nextStartup(&buffer)
        case .typed:
            return try nextTypedMessage(&buffer)
        case .cancelled:
            guard buffer.readableBytes == 0 else {
                // No byte count in the reason: it would depend on how the input was split into reads.
                throw PostgresProtocolError(
                    kind: .unexpectedData, reason: "data after a CancelRequest, which ends the connection")
            }
            return nil
        }
    }

    private mutating func nextStreamPart(_ buffer: inout ByteBuffer) -> PostgresFrame? {
        let count = min(streamRemaining, buffer.readableBytes)
        guard count > 0, let bytes = buffer.readSlice(length: count) else { return nil }
        streamRemaining -= count
        return PostgresFrame(kind: .streamPart(bytes: bytes, isLast: streamRemaining == 0), raw: bytes)
    }

    private mutating func nextStartup(_ buffer: inout ByteBuffer) throws(PostgresProtocolError) -> PostgresFrame? {
        let start = buffer.readerIndex
        guard let length = buffer.getInteger(at: start, as: Int32.self) else { return nil }
        // ProcessStartupPacket: "invalid length of startup packet" below the code's 8 bytes or over 10,000.
        guard length >= 8 else {
            throw PostgresProtocolError(kind: .invalidLength, reason: "startup packet length \(length) is below 8")
        }
        guard length <= Self.maxStartupPacketLength else {
            throw PostgresProtocolError(
                kind: .messageTooLarge,
                reason: "startup packet length \(length) exceeds the limit of \(Self.maxStartupPacketLength) bytes")
        }
        guard let code = buffer.getInteger(at: start + 4, as: UInt32.self) else { return nil }
        let nextPhase: Phase
        switch code {
        case PostgresStartupCode.sslRequest, PostgresStartupCode.gssEncRequest:
            nextPhase = .startup
        case PostgresStartupCode.cancelRequest:
            nextPhase = .cancelled
        case _ where code >> 16 == 3:
            nextPhase = .typed
        default:
            // Protocol 2.0 was removed in PostgreSQL 14; anything else is not PostgreSQL at all.
            throw PostgresProtocolError(
                kind: .unsupportedStartupCode,
                reason: "startup packet code \(code) (\(code >> 16).\(code & 0xFFFF)) is not a 3.x StartupMessage, "
                    + "SSLRequest, GSSENCRequest or CancelRequest")
        }
        guard var body = buffer.readSlice(length: Int(length)) else { return nil }
        let raw = body
        body.moveReaderIndex(forwardBy: 4)
        phase = nextPhase
        return PostgresFrame(kind: .startupPacket(body: body), raw: raw)
    }

    private mutating func nextTypedMessage(_ buffer: inout ByteBuffer) throws(PostgresProtocolError) -> PostgresFrame? {
        let start = buffer.readerIndex
        guard let type = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        // Refused on the type byte alone: an unknown letter means we lost the framing or this is not PostgreSQL.
        guard direction.messageName(type) != nil else {
            throw PostgresProtocolError(
                kind: .unknownMessageType,
                reason: "unknown \(direction) message type \(PostgresDirection.hex(type))")
        }
        guard let length32 = buffer.getInteger(at: start + 1, as: Int32.self) else { return nil }
        let length = Int(length32)
        guard length >= 4 else {
            throw PostgresProtocolError(
                kind: .invalidLength, reason: "\(direction.describe(type)) has length \(length), below 4")
        }
        let bodyLength = length - 4
        guard bodyLength <= Self.maxMessageBodyBytes else {
            throw PostgresProtocolError(
                kind: .invalidLength,
                reason: "\(direction.describe(type)) has length \(length), over the server's 1 GiB limit")
        }
        if length > maxInspectedMessageBytes {
            guard direction.isStreamable(type) else {
                throw PostgresProtocolError(
                    kind: .messageTooLarge,
                    reason: "\(direction.describe(type)) has length \(length), over the inspection cap of "
                        + "\(maxInspectedMessageBytes) bytes")
            }
            // bodyLength > cap - 4 >= 4092 > streamHeadBytes, so at least one streamPart always follows.
            let headLength = min(bodyLength, Self.streamHeadBytes)
            guard var head = buffer.readSlice(length: 5 + headLength) else { return nil }
            let raw = head
            head.moveReaderIndex(forwardBy: 5)
            streamRemaining = bodyLength - headLength
            return PostgresFrame(kind: .streamStart(type: type, length: length, head: head), raw: raw)
        }
        guard var body = buffer.readSlice(length: 1 + length) else { return nil }
        let raw = body
        body.moveReaderIndex(forwardBy: 5)
        return PostgresFrame(kind: .message(type: type, body: body), raw: raw)
    }
}
