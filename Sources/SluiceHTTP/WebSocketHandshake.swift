import SluiceModel

/// Pieces of the opening handshake (RFC 6455 §4) that the proxy computes itself.
public enum WebSocketHandshake {
    /// The fixed GUID appended to the client's key (RFC 6455 §1.3, §4.2.2).
    public static let keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
    ///
    /// The proxy needs this to answer the client itself and to check the upstream server's answer. Pass the header
    /// value exactly as received with surrounding whitespace removed; the RFC hashes the key as a string, without
    /// decoding it.
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(sha1(Array((key + keyGUID).utf8)))
    }
}

/// SHA-1 (RFC 3174). Only used for the handshake, where it is a fixed protocol transform, not a security
/// primitive, so a small local implementation beats pulling in a crypto library.
private func sha1(_ message: [UInt8]) -> [UInt8] {
    var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]

    // Padding: a single 1 bit, zeros to 56 mod 64 bytes, then the message length in bits as a big-endian UInt64.
    var data = message
    let bitLength = UInt64(message.count) &* 8
    data.append(0x80)
    while data.count % 64 != 56 {
        data.append(0)
    }
    for shift in stride(from: 56, through: 0, by: -8) {
        data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
    }

    var w = [UInt32](repeating: 0, count: 80)
    for chunkStart in stride(from: 0, to: data.count, by: 64) {
        for t in 0..<16 {
            let i = chunkStart + 4 * t
            w[t] = UInt32(data[i]) << 24 | UInt32(data[i + 1]) << 16 | UInt32(data[i + 2]) << 8 | UInt32(data[i + 3])
        }
        for t in 16..<80 {
            w[t] = rotateLeft(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], by: 1)
        }

        var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
        for t in 0..<80 {
            let f: UInt32
            let k: UInt32
            switch t {
            case 0..<20:
                f = (b & c) | (~b & d)
                k = 0x5A82_7999
            case 20..<40:
                f = b ^ c ^ d
                k = 0x6ED9_EBA1
            case 40..<60:
                f = (b & c) | (b & d) | (c & d)
                k = 0x8F1B_BCDC
            default:
                f = b ^ c ^ d
                k = 0xCA62_C1D6
            }
            let temp = rotateLeft(a, by: 5) &+ f &+ e &+ k &+ w[t]
            (e, d, c, b, a) = (d, c, rotateLeft(b, by: 30), a, temp)
        }
        h[0] &+= a
        h[1] &+= b
        h[2] &+= c
        h[3] &+= d
        h[4] &+= e
    }

    var digest: [UInt8] = []
    digest.reserveCapacity(20)
    for word in h {
        digest.append(contentsOf: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> $0) })
    }
    return digest
}

private func rotateLeft(_ value: UInt32, by amount: UInt32) -> UInt32 {
    (value << amount) | (value >> (32 - amount))
}
