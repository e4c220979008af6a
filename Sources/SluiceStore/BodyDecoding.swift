import CZlib
import Foundation
import SluiceModel

/// Undoes `Content-Encoding: gzip` and `deflate` for display and export. Sluice relays and stores bodies exactly as
/// they travelled; only a reader (a person, a HAR viewer) wants them decoded.
///
/// Bodies come from the network: a corrupt stream gives nil, never a crash, and the output is capped because a few
/// kilobytes of gzip can expand to gigabytes.
public enum BodyDecoding {
    /// Far beyond any body worth reading in a viewer; a decompression bomb stops here.
    public static let defaultLimit = 64 << 20

    /// The content codings of a `Content-Encoding` value in the order they were applied (RFC 9110 §8.4), without
    /// `identity`, lowercased. Empty when the body is not encoded.
    public static func codings(_ contentEncoding: String?) -> [String] {
        guard let contentEncoding else { return [] }
        return contentEncoding.split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty && $0 != "identity" }
    }

    /// The body with every coding of `contentEncoding` undone, last applied first.
    ///
    /// - Parameters:
    ///   - truncated: the stored body is known to be cut short (recording limits), so a stream that simply stops
    ///     yields what decoded so far instead of nil. Corrupt data is nil either way.
    /// - Returns: nil when a coding is not gzip or deflate (`br`, `zstd`), the data is corrupt, or the decoded size
    ///   passes `limit`. An empty body stays empty: HEAD, 204 and 304 answers carry the header without a body.
    public static func decode(
        _ body: Data, contentEncoding: String?, limit: Int = defaultLimit, truncated: Bool = false
    ) -> Data? {
        var data = body
        for coding in codings(contentEncoding).reversed() {
            guard !data.isEmpty else { return data }
            switch coding {
            case "gzip", "x-gzip":
                guard let decoded = gunzip(data, limit: limit, truncated: truncated) else { return nil }
                data = decoded
            case "deflate":
                guard let decoded = inflate(data, limit: limit, truncated: truncated) else { return nil }
                data = decoded
            default:
                return nil
            }
        }
        return data
    }

    /// RFC 1952 gzip, including several members in a row (§2.2), as `gzip -c a b` writes.
    public static func gunzip(_ data: Data, limit: Int = defaultLimit, truncated: Bool = false) -> Data? {
        // 16 + 15: a gzip header and trailer around a 32 KiB window.
        run(data, windowBits: 16 + MAX_WBITS, limit: limit, truncated: truncated, gzipMembers: true)
    }

    /// `deflate` as RFC 9110 §8.4.1.2 defines it: a zlib stream (RFC 1950). Some servers send raw deflate
    /// (RFC 1951) under that name, as browsers tolerate; it is recognised by the missing zlib header.
    public static func inflate(_ data: Data, limit: Int = defaultLimit, truncated: Bool = false) -> Data? {
        let bytes = [UInt8](data.prefix(2))
        let isZlib = bytes.count == 2 && bytes[0] & 0x0f == 8 && (Int(bytes[0]) << 8 | Int(bytes[1])) % 31 == 0
        return run(
            data, windowBits: isZlib ? MAX_WBITS : -MAX_WBITS, limit: limit, truncated: truncated, gzipMembers: false
        )
    }

    private static func run(_ data: Data, windowBits: Int32, limit: Int, truncated: Bool, gzipMembers: Bool) -> Data? {
        guard !data.isEmpty else { return Data() }
        // zlib counts input in 32-bit units; nothing Sluice stores comes near that.
        guard limit >= 0, data.count <= Int(UInt32.max) else { return nil }
        var stream = z_stream()
        guard sluice_inflate_init2(&stream, windowBits) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        return data.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> Data? in
            guard let base = input.bindMemory(to: Bytef.self).baseAddress else { return Data() }
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = uInt(input.count)
            while true {
                let status = buffer.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    output.append(contentsOf: out[..<(out.count - Int(stream.avail_out))])
                    return status
                }
                guard output.count <= limit else { return nil }
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    // Another member only when the rest starts with gzip's magic; other trailing bytes are ignored,
                    // as browsers ignore them.
                    guard gzipMembers, stream.avail_in >= 2, let next = stream.next_in, next[0] == 0x1f, next[1] == 0x8b
                    else {
                        return output
                    }
                    guard inflateReset(&stream) == Z_OK else { return nil }
                case Z_BUF_ERROR:
                    // No progress possible: the input ended before the stream did.
                    return truncated ? output : nil
                default:
                    // Z_DATA_ERROR (corrupt), Z_NEED_DICT (a preset dictionary we cannot have), Z_MEM_ERROR.
                    return nil
                }
            }
        }
    }
}

/// One direction's body of an HTTP exchange: the flow's `body` messages that way, in order.
public struct StoredBody: Sendable, Equatable {
    /// The bytes kept, as they travelled (still content-encoded).
    public var stored: Data
    /// The bytes that travelled; more than `stored.count` when recording limits cut the body.
    public var travelled: Int64

    public init(stored: Data, travelled: Int64) {
        self.stored = stored
        self.travelled = max(travelled, Int64(stored.count))
    }

    public var isTruncated: Bool { Int64(stored.count) < travelled }

    /// "120 of 5000 bytes stored", for the comments that say a body is incomplete.
    public var truncationNote: String { "\(stored.count) of \(travelled) bytes stored (recording limits)" }
}

extension StoredFlow {
    /// The request (`up`) or response (`down`) body. For an HTTP flow the flow's byte counts less its heads' are
    /// exactly the body sizes, which also covers messages the per-flow limit left out entirely; a WebSocket flow's
    /// counts are its frames', so only the handshake's own body messages count there.
    public func body(_ direction: Direction, in messages: [StoredMessage]) -> StoredBody {
        var stored = Data()
        var sizes: Int64 = 0
        for message in messages where message.direction == direction && message.kind == .body {
            stored.append(message.payload)
            sizes += Int64(message.size)
        }
        let counted = kind == FlowKind.http.rawValue ? (direction == .up ? bytesUp - headBytesUp : bytesDown - headBytesDown) : 0
        return StoredBody(stored: stored, travelled: max(sizes, counted))
    }
}
