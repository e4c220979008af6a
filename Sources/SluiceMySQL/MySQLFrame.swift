import NIOCore

/// One item cut from a MySQL byte stream by `MySQLPacketFramer`.
///
/// `raw` is always the exact bytes the item covers, packet headers included, as a slice of the caller's buffer: a
/// relay forwards `raw` unchanged, and the `raw` of every frame, concatenated in order, is exactly the input consumed.
/// `kind` tells what those bytes carry.
public struct MySQLFrame: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A whole logical payload: one packet's, or, when packets of 0xFFFFFF bytes continued it, all of them joined
        /// (then a copy; otherwise a slice of `raw`). Decode it with the decoder for whatever the inspector expects
        /// at this point (`MySQLCommand(payload:capabilities:)`, `MySQLResponseTracker.receive(_:)` …).
        case payload(ByteBuffer)
        /// The start of a logical payload too large to buffer (over `maxInspectedPayloadBytes`): a big INSERT, a
        /// LOAD DATA chunk, a large row or parameter. `head` is the payload's first `MySQLPacketFramer.streamHeadBytes`
        /// bytes, enough for a command byte and the start of its SQL, or a statement id; `raw` is the first packet's
        /// header plus `head`. One or more `streamPart`s follow, the last with `isLast`.
        case streamStart(head: ByteBuffer)
        /// The next bytes of the streamed payload, never crossing a packet boundary; `raw` is `bytes` preceded by the
        /// 4-byte header when the part opens a continuation packet. `bytes` is empty only for the empty packet that
        /// ends a payload whose last full packet had exactly 0xFFFFFF bytes. The framer emits whatever has arrived, so
        /// the split depends on how the input was read.
        case streamPart(bytes: ByteBuffer, isLast: Bool)
    }

    public var kind: Kind
    public var raw: ByteBuffer
    /// The sequence id of the first packet `raw` covers (for a `streamPart`, of the packet its bytes belong to).
    public var sequenceID: UInt8
    /// The sequence id of the last packet `raw` covers; the framer checks that continuation packets count up by one
    /// (modulo 256), so a frame's packets have exactly the ids `sequenceID`, `sequenceID &+ 1`, …, `lastSequenceID`.
    public var lastSequenceID: UInt8

    public init(kind: Kind, raw: ByteBuffer, sequenceID: UInt8, lastSequenceID: UInt8) {
        self.kind = kind
        self.raw = raw
        self.sequenceID = sequenceID
        self.lastSequenceID = lastSequenceID
    }

    /// The number of packet headers in `raw`: 1 or more for a payload or stream start, 0 or 1 for a stream part.
    public var packetCount: Int {
        switch kind {
        case .payload, .streamStart:
            Int(lastSequenceID &- sequenceID) + 1
        case .streamPart(let bytes, _):
            raw.readableBytes == bytes.readableBytes ? 0 : 1
        }
    }
}
