import NIOCore

/// What a client's first TLS flight says about where it is going, read before deciding whether to intercept.
public struct ClientHelloInfo: Equatable, Sendable {
    /// The SNI host_name, if the client sent one (IP-literal connections and old clients do not).
    public var serverName: String?
    /// ALPN protocols in the client's order of preference; empty when the extension is absent.
    public var alpn: [String]
    /// ClientHello.legacy_version: 0x0303 for TLS 1.2 and 1.3 alike (1.3 is signalled in an extension).
    public var legacyVersion: UInt16

    public init(serverName: String?, alpn: [String], legacyVersion: UInt16) {
        self.serverName = serverName
        self.alpn = alpn
        self.legacyVersion = legacyVersion
    }
}

/// The verdict on the bytes buffered so far.
public enum ClientHelloPeek: Equatable, Sendable {
    /// Looks like TLS but the ClientHello is not complete yet: read more and peek again.
    case needMoreData
    /// Not TLS at all (plain HTTP, SSH, ...): relay or handle it as such.
    case notTLS
    /// Claims to be TLS but is broken or hostile; the reason is one line for the log.
    case malformed(String)
    case clientHello(ClientHelloInfo)
}

/// Peeks at a connection's first bytes to find the ClientHello's SNI and ALPN without consuming them, so the same
/// bytes can then go to NIOSSL (interception) or to the upstream untouched (passthrough).
///
/// Sans-I/O: a pure function of the bytes. Every length is bounds-checked, since these bytes come straight from an
/// untrusted client.
public enum ClientHelloParser {
    /// Largest ClientHello accepted (handshake header included). Post-quantum key shares make real hellos ~1.8 KB;
    /// 64 KiB is generous and bounds what a client can make the proxy buffer.
    public static let maxHandshakeLength = 64 * 1024
    /// More records than a maximal hello needs (4) plus room for deliberate fragmentation (some DPI-evasion tools
    /// split the hello), but few enough that tiny records cannot multiply the bytes scanned.
    public static let maxRecords = 64
    static let maxRecordPayload = 16 * 1024
    static let recordHeaderLength = 5
    /// No valid hello needs more input bytes than this, so larger inputs are never copied in full.
    static let maxScanLength = maxHandshakeLength + maxRecords * recordHeaderLength

    public static func peek(_ buffer: ByteBuffer) -> ClientHelloPeek {
        peek(buffer.readableBytesView)
    }

    public static func peek<Bytes: Collection>(_ bytes: Bytes) -> ClientHelloPeek where Bytes.Element == UInt8 {
        let data = Array(bytes.prefix(maxScanLength))
        do throws(Failure) {
            guard let handshake = try reassemble(data) else { return .needMoreData }
            return .clientHello(try parseClientHello(handshake))
        } catch {
            switch error {
            case .notTLS: return .notTLS
            case .malformed(let reason): return .malformed(reason)
            }
        }
    }

    enum Failure: Error {
        case notTLS
        case malformed(String)
    }

    /// Collects the handshake message from consecutive handshake records. Returns nil when more bytes are needed,
    /// otherwise the ClientHello body (after the 4-byte handshake header).
    static func reassemble(_ data: [UInt8]) throws(Failure) -> ArraySlice<UInt8>? {
        guard let first = data.first else { return nil }
        guard first == 0x16 else { throw .notTLS }
        guard data.count >= 2 else { return nil }
        // 0x16 alone is just a byte (ASCII SYN); only "16 03" is the start of a TLS handshake record.
        guard data[1] == 0x03 else { throw .notTLS }

        var handshake: [UInt8] = []
        var expectedLength: Int?  // Handshake header plus body, known once 4 bytes have arrived.
        var offset = 0
        var records = 0
        while true {
            let available = data.count - offset
            // Check each header byte as soon as it is there, so garbage is rejected without waiting for more.
            if available >= 1 && data[offset] != 0x16 {
                throw .malformed("record \(records + 1) has content type \(data[offset]), expected handshake (22)")
            }
            if available >= 3 && (data[offset + 1] != 0x03 || data[offset + 2] > 0x04) {
                throw .malformed(
                    "record \(records + 1) has version \(hex(data[offset + 1]))\(hex(data[offset + 2])), not 03xx")
            }
            guard available >= recordHeaderLength else { return nil }
            let length = Int(data[offset + 3]) << 8 | Int(data[offset + 4])
            guard length > 0 else { throw .malformed("record \(records + 1) is an empty handshake fragment") }
            guard length <= maxRecordPayload else {
                throw .malformed("record \(records + 1) is \(length) bytes, over the 16384-byte limit")
            }
            records += 1
            guard records <= maxRecords else {
                throw .malformed("ClientHello spread over more than \(maxRecords) records")
            }
            let payloadStart = offset + recordHeaderLength
            let present = min(length, data.count - payloadStart)
            handshake.append(contentsOf: data[payloadStart..<(payloadStart + present)])

            if expectedLength == nil, let type = handshake.first, type != 0x01 {
                throw .malformed("handshake message type \(type) is not ClientHello (1)")
            }
            if expectedLength == nil && handshake.count >= 4 {
                let bodyLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
                guard bodyLength + 4 <= maxHandshakeLength else {
                    throw .malformed(
                        "ClientHello of \(bodyLength + 4) bytes exceeds the \(maxHandshakeLength)-byte cap")
                }
                expectedLength = bodyLength + 4
            }
            if let expected = expectedLength, handshake.count >= expected {
                // Anything after the hello in the last record is not ours to judge.
                return handshake[4..<expected]
            }
            guard present == length else { return nil }  // Mid-record: wait for the rest.
            offset = payloadStart + length
        }
    }

    static func parseClientHello(_ body: ArraySlice<UInt8>) throws(Failure) -> ClientHelloInfo {
        var reader = Reader(body)
        let legacyVersion = try reader.u16("legacy_version")
        _ = try reader.bytes(32, "random")
        let sessionIDLength = Int(try reader.u8("session_id length"))
        guard sessionIDLength <= 32 else { throw .malformed("session_id length \(sessionIDLength) exceeds 32") }
        _ = try reader.bytes(sessionIDLength, "session_id")
        let cipherSuitesLength = Int(try reader.u16("cipher_suites length"))
        guard cipherSuitesLength >= 2, cipherSuitesLength % 2 == 0 else {
            throw .malformed("cipher_suites length \(cipherSuitesLength) is not a positive even number")
        }
        _ = try reader.bytes(cipherSuitesLength, "cipher_suites")
        let compressionLength = Int(try reader.u8("compression_methods length"))
        guard compressionLength >= 1 else { throw .malformed("compression_methods is empty") }
        _ = try reader.bytes(compressionLength, "compression_methods")

        var info = ClientHelloInfo(serverName: nil, alpn: [], legacyVersion: legacyVersion)
        if reader.isAtEnd {
            return info  // Extensions are optional before TLS 1.3.
        }
        let extensionsLength = Int(try reader.u16("extensions length"))
        guard extensionsLength == reader.remaining else {
            throw .malformed("extensions length \(extensionsLength) but \(reader.remaining) bytes follow")
        }
        var seen = Set<UInt16>()
        while !reader.isAtEnd {
            let type = try reader.u16("extension type")
            let length = Int(try reader.u16("extension length"))
            let payload = try reader.bytes(length, "extension \(type)")
            guard seen.insert(type).inserted else {
                throw .malformed("extension \(type) appears twice")
            }
            switch type {
            case 0x0000:
                info.serverName = try parseServerName(payload)
            case 0x0010:
                info.alpn = try parseALPN(payload)
            default:
                break
            }
        }
        return info
    }

    /// RFC 6066 section 3: a list of (name_type, name); only host_name (0) exists in practice.
    static func parseServerName(_ payload: ArraySlice<UInt8>) throws(Failure) -> String? {
        var reader = Reader(payload)
        let listLength = Int(try reader.u16("server_name list length"))
        guard listLength == reader.remaining else {
            throw .malformed("server_name list length \(listLength) but \(reader.remaining) bytes follow")
        }
        var hostName: String?
        while !reader.isAtEnd {
            let nameType = try reader.u8("server_name type")
            let nameLength = Int(try reader.u16("server_name length"))
            let name = try reader.bytes(nameLength, "server_name")
            guard nameType == 0, hostName == nil else { continue }
            guard !name.isEmpty else { throw .malformed("server_name host_name is empty") }
            // Host names are ASCII (IDNs travel as punycode); control bytes here can only be an attack on logs.
            guard name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw .malformed("server_name host_name is not printable ASCII")
            }
            hostName = String(decoding: name, as: UTF8.self)
        }
        return hostName
    }

    /// RFC 7301 section 3.1: a list of non-empty, u8-length protocol names.
    static func parseALPN(_ payload: ArraySlice<UInt8>) throws(Failure) -> [String] {
        var reader = Reader(payload)
        let listLength = Int(try reader.u16("ALPN list length"))
        guard listLength == reader.remaining else {
            throw .malformed("ALPN list length \(listLength) but \(reader.remaining) bytes follow")
        }
        var protocols: [String] = []
        while !reader.isAtEnd {
            let length = Int(try reader.u8("ALPN protocol length"))
            guard length > 0 else { throw .malformed("ALPN protocol name is empty") }
            protocols.append(String(decoding: try reader.bytes(length, "ALPN protocol"), as: UTF8.self))
        }
        return protocols
    }

    private static func hex(_ byte: UInt8) -> String {
        SecureFile.hex(byte)
    }

    /// A cursor that refuses to read past its end, naming the field that was cut short.
    struct Reader {
        private let bytes: ArraySlice<UInt8>
        private var index: Int

        init(_ bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            self.index = bytes.startIndex
        }

        var remaining: Int { bytes.endIndex - index }
        var isAtEnd: Bool { index >= bytes.endIndex }

        mutating func u8(_ field: String) throws(Failure) -> UInt8 {
            try bytes(1, field).first ?? 0
        }

        mutating func u16(_ field: String) throws(Failure) -> UInt16 {
            let pair = try bytes(2, field)
            return UInt16(pair[pair.startIndex]) << 8 | UInt16(pair[pair.startIndex + 1])
        }

        mutating func bytes(_ count: Int, _ field: String) throws(Failure) -> ArraySlice<UInt8> {
            guard count >= 0, count <= remaining else {
                throw .malformed("\(field) needs \(count) bytes but only \(remaining) remain")
            }
            defer { index += count }
            return bytes[index..<(index + count)]
        }
    }
}
