import NIOCore

/// One item cut from a PostgreSQL byte stream by `PostgresFramer`.
///
/// `raw` is always the exact bytes the item covers, as a slice of the caller's buffer: a relay forwards `raw`
/// unchanged, and the `raw` of every frame, concatenated in order, is exactly the input consumed. `kind` tells what
/// those bytes are.
public struct PostgresFrame: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A whole untyped startup-phase packet (frontend only). `body` follows the length: the 4-byte code and the
        /// rest. Decode it with `PostgresFrontendMessage(startupPacket:)`.
        case startupPacket(body: ByteBuffer)
        /// A whole typed message. `body` follows the 5-byte header (type letter and length). Decode it with
        /// `PostgresFrontendMessage(type:body:)` or `PostgresBackendMessage(type:body:)`.
        case message(type: UInt8, body: ByteBuffer)
        /// The start of a message too large to buffer (only DataRow, CopyData, Bind, FunctionCallResponse; see
        /// `PostgresFramer`). `length` is the message's length field (header's 4 bytes plus body, type byte not
        /// included). `head` is the body's first `min(bodyLength, PostgresFramer.streamHeadBytes)` bytes, enough to
        /// read a DataRow's column count or a Bind's portal and statement names (`PostgresStreamHead`). `raw` is
        /// the header plus `head`. One or more `streamPart`s follow, the last with `isLast`.
        case streamStart(type: UInt8, length: Int, head: ByteBuffer)
        /// The next bytes of the streamed message's body (never empty; `bytes == raw`). The framer emits whatever
        /// has arrived, so the split depends on how the input was read.
        case streamPart(bytes: ByteBuffer, isLast: Bool)
    }

    public var kind: Kind
    public var raw: ByteBuffer

    public init(kind: Kind, raw: ByteBuffer) {
        self.kind = kind
        self.raw = raw
    }
}
