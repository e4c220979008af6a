import NIOCore

/// A complete data message, reassembled from one or more frames (RFC 6455 §5.4).
public struct WebSocketMessage: Sendable, Equatable {
    /// `.text` or `.binary`: the opcode of the message's first frame.
    public var opcode: WebSocketOpcode
    /// The whole unmasked message body.
    public var payload: ByteBuffer
    /// How many frames carried the message (1 when unfragmented); useful for logs and for re-fragmenting.
    public var frameCount: Int

    public init(opcode: WebSocketOpcode, payload: ByteBuffer, frameCount: Int) {
        self.opcode = opcode
        self.payload = payload
        self.frameCount = frameCount
    }
}

/// What the assembler produced for one pushed frame.
public enum WebSocketAssemblyResult: Sendable, Equatable {
    /// A finished text or binary message.
    case message(WebSocketMessage)
    /// A ping, pong or close frame, passed through at once even if it arrived between fragments (§5.4).
    case control(WebSocketFrame)
}

/// Reassembles fragmented messages for one direction of one connection (RFC 6455 §5.4).
///
/// Sans-I/O: feed it the frames `WebSocketFrameParser` returns, in order. It enforces the fragmentation rules,
/// the message size limit and UTF-8 validity of text messages, which the per-frame parser cannot see.
/// After an error the connection must be failed; the assembler resets to idle so it never holds stale data.
public struct WebSocketMessageAssembler {
    /// Largest total message payload accepted; larger messages fail with 1009 (RFC 6455 §10.4).
    public let maxMessageSize: Int

    private var openOpcode: WebSocketOpcode?
    private var buffered = ByteBuffer()
    private var frameCount = 0

    public init(maxMessageSize: Int) {
        self.maxMessageSize = max(0, maxMessageSize)
    }

    /// Bytes of the unfinished message held right now.
    public var bufferedBytes: Int { buffered.readableBytes }

    /// Whether a fragmented message has started and not yet finished.
    public var isMessageInProgress: Bool {
        openOpcode != nil
    }

    /// Accepts the next frame; returns a finished message, a control frame, or `nil` when a fragment was stored.
    public mutating func push(_ frame: WebSocketFrame) throws(WebSocketProtocolError) -> WebSocketAssemblyResult? {
        do {
            return try handle(frame)
        } catch {
            reset()
            throw error
        }
    }

    private mutating func handle(_ frame: WebSocketFrame) throws(WebSocketProtocolError) -> WebSocketAssemblyResult? {
        switch frame.opcode {
        case .close, .ping, .pong:
            // Re-checked here because frames may come from somewhere other than the parser (§5.5).
            guard frame.fin else {
                throw .protocolError("control frame is fragmented")
            }
            guard frame.payload.readableBytes <= WebSocketFrame.maxControlPayloadSize else {
                throw .protocolError("control frame payload exceeds 125 bytes")
            }
            if frame.opcode == .close {
                // §7.4: a code not allowed on the wire, a 1-byte body or a reason that is not UTF-8 fails the
                // connection; such a Close is not passed on.
                _ = try WebSocketClose(payload: frame.payload)
            }
            return .control(frame)

        case .text, .binary:
            // §5.4: fragments of different messages must not interleave.
            guard openOpcode == nil else {
                throw .protocolError("new \(frame.opcode) message started inside a fragmented message")
            }
            try checkSize(frame.payload.readableBytes)
            if frame.fin {
                return .message(try finish(opcode: frame.opcode, payload: frame.payload, frameCount: 1))
            }
            openOpcode = frame.opcode
            buffered = frame.payload
            frameCount = 1
            return nil

        case .continuation:
            guard let opcode = openOpcode else {
                throw .protocolError("continuation frame without a message to continue")
            }
            try checkSize(buffered.readableBytes + frame.payload.readableBytes)
            var incoming = frame.payload
            buffered.writeBuffer(&incoming)
            frameCount += 1
            guard frame.fin else { return nil }
            let message = try finish(opcode: opcode, payload: buffered, frameCount: frameCount)
            reset()
            return .message(message)
        }
    }

    private func checkSize(_ total: Int) throws(WebSocketProtocolError) {
        guard total <= maxMessageSize else {
            throw .messageTooBig("message of at least \(total) bytes exceeds limit of \(maxMessageSize)")
        }
    }

    /// Text is validated only once the message is whole, because a fragment boundary may legally fall inside a
    /// multi-byte character (§5.6 requires the message, not each frame, to be valid UTF-8).
    private func finish(
        opcode: WebSocketOpcode,
        payload: ByteBuffer,
        frameCount: Int
    ) throws(WebSocketProtocolError) -> WebSocketMessage {
        if opcode == .text, !UTF8Validator.isValid(payload) {
            throw .invalidPayloadData("text message is not valid UTF-8")
        }
        return WebSocketMessage(opcode: opcode, payload: payload, frameCount: frameCount)
    }

    /// Forgets the unfinished message, letting go of its bytes.
    public mutating func reset() {
        openOpcode = nil
        buffered = ByteBuffer()
        frameCount = 0
    }
}
