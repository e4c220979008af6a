import NIOCore

/// Frame opcodes defined by RFC 6455 §5.2; all others (3-7, 0xB-0xF) are reserved and rejected by the parser.
public enum WebSocketOpcode: UInt8, Sendable, Equatable, CustomStringConvertible {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Control frames have the high opcode bit set (RFC 6455 §5.5): they may not be fragmented, must carry at most
    /// 125 bytes and may be interleaved with the fragments of a data message.
    public var isControl: Bool {
        rawValue & 0x8 != 0
    }

    public var description: String {
        switch self {
        case .continuation: "continuation"
        case .text: "text"
        case .binary: "binary"
        case .close: "close"
        case .ping: "ping"
        case .pong: "pong"
        }
    }
}

/// One RFC 6455 frame (§5.2) as seen on the wire, except that `payload` is always the unmasked application data.
///
/// Keeping the mask key separate from the payload lets the proxy re-encode a frame for the other side with a
/// different key (or none), since client-to-server frames must be masked and server-to-client frames must not
/// (RFC 6455 §5.1).
public struct WebSocketFrame: Sendable, Equatable {
    /// The FIN bit: this is the final fragment of a message.
    public var fin: Bool
    /// RSV1, RSV2 and RSV3 as a 3-bit value (RSV1 = 4). Must be 0 since no extension is negotiated (§5.2).
    public var rsv: UInt8
    public var opcode: WebSocketOpcode
    /// The masking key as a big-endian integer: its most significant byte is the first key byte on the wire.
    /// `nil` means the frame is not masked.
    public var maskKey: UInt32?
    /// Unmasked application data.
    public var payload: ByteBuffer

    public init(
        fin: Bool = true,
        rsv: UInt8 = 0,
        opcode: WebSocketOpcode,
        maskKey: UInt32? = nil,
        payload: ByteBuffer
    ) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.maskKey = maskKey
        self.payload = payload
    }

    /// Largest payload a control frame may carry (RFC 6455 §5.5).
    public static let maxControlPayloadSize = 125

    /// Builds a Close frame body: a 2-byte big-endian status code followed by a UTF-8 reason (RFC 6455 §5.5.1).
    ///
    /// The reason is cut at a character boundary so the whole payload stays within the 125-byte control frame
    /// limit; otherwise the peer would have to reject our Close with 1002.
    public static func closePayload(code: UInt16, reason: String) -> ByteBuffer {
        let maxReasonBytes = maxControlPayloadSize - 2
        var reasonBytes = Array(reason.utf8)
        if reasonBytes.count > maxReasonBytes {
            var cut = maxReasonBytes
            // Step back over continuation bytes (10xxxxxx) so we never split a multi-byte character.
            while cut > 0, reasonBytes[cut] & 0xC0 == 0x80 {
                cut -= 1
            }
            reasonBytes.removeSubrange(cut...)
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(2 + reasonBytes.count)
        buffer.writeInteger(code)
        buffer.writeBytes(reasonBytes)
        return buffer
    }
}

/// The parsed body of a Close frame (RFC 6455 §5.5.1, §7.4).
public struct WebSocketClose: Equatable, Sendable {
    /// The status code, or `nil` when the Close frame had an empty body (reported locally as 1005, §7.1.5).
    public var code: UInt16?
    public var reason: String

    public init(code: UInt16?, reason: String = "") {
        self.code = code
        self.reason = reason
    }

    /// Parses a received Close payload, rejecting what RFC 6455 forbids a peer to send.
    ///
    /// - Throws: 1002 for a 1-byte body or a status code not allowed on the wire; 1007 for a non-UTF-8 reason.
    public init(payload: ByteBuffer) throws(WebSocketProtocolError) {
        var payload = payload
        if payload.readableBytes == 0 {
            self.init(code: nil, reason: "")
            return
        }
        guard let code = payload.readInteger(as: UInt16.self) else {
            throw .protocolError("close frame body is 1 byte long")
        }
        guard Self.isValidOnWire(code) else {
            throw .protocolError("close code \(code) is not allowed on the wire")
        }
        guard UTF8Validator.isValid(payload) else {
            throw .invalidPayloadData("close reason is not valid UTF-8")
        }
        self.init(code: code, reason: String(decoding: payload.readableBytesView, as: UTF8.self))
    }

    /// Whether a peer may send this status code in a Close frame (RFC 6455 §7.4.1, §7.4.2, IANA registry).
    ///
    /// 1005, 1006 and 1015 are reserved for local reporting only; below 1000, 1004 and the unassigned 1016-2999
    /// are invalid; 3000-4999 are for libraries and applications; 5000 and above are undefined by the RFC.
    public static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999:
            true
        default:
            false
        }
    }
}
