/// A violation of RFC 6455 by the peer, carrying the close code to send before failing the connection.
///
/// RFC 6455 §7.1.7 says an endpoint that sees bad framing must "fail the WebSocket connection"; §7.4.1 defines
/// which status code tells the peer why. Every error this module throws maps to exactly one of those codes.
public struct WebSocketProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Close code 1002: the peer broke the framing or messaging rules (RFC 6455 §7.4.1).
    public static let protocolErrorCode: UInt16 = 1002
    /// Close code 1007: a text message or close reason was not valid UTF-8 (RFC 6455 §7.4.1, §8.1).
    public static let invalidPayloadDataCode: UInt16 = 1007
    /// Close code 1009: a frame or message exceeded our configured limit (RFC 6455 §7.4.1, §10.4).
    public static let messageTooBigCode: UInt16 = 1009

    /// The status code to put in the Close frame we send back.
    public var closeCode: UInt16
    /// A short human-readable explanation, for logs (and optionally the close reason).
    public var reason: String

    public init(closeCode: UInt16, reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }

    /// 1002: malformed framing or an illegal frame sequence.
    public static func protocolError(_ reason: String) -> WebSocketProtocolError {
        WebSocketProtocolError(closeCode: protocolErrorCode, reason: reason)
    }

    /// 1007: data inconsistent with the message type, in practice invalid UTF-8.
    public static func invalidPayloadData(_ reason: String) -> WebSocketProtocolError {
        WebSocketProtocolError(closeCode: invalidPayloadDataCode, reason: reason)
    }

    /// 1009: larger than we are willing to buffer.
    public static func messageTooBig(_ reason: String) -> WebSocketProtocolError {
        WebSocketProtocolError(closeCode: messageTooBigCode, reason: reason)
    }

    public var description: String {
        "websocket protocol error \(closeCode): \(reason)"
    }
}
