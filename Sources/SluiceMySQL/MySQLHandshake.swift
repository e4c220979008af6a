import NIOCore

/// The server's greeting, HandshakeV10: the first packet of a connection, sequence id 0 (PROTOCOLS.md §2; MariaDB
/// "Connecting").
///
/// `0x0A`, server version NUL, connection id u32, scramble part 1 (8), filler, capabilities low u16, character set,
/// status u16, capabilities high u16, scramble length u8, 6 reserved bytes, then 4 more that MariaDB uses for its
/// extended capabilities when CLIENT_MYSQL is clear, scramble part 2 (with CLIENT_SECURE_CONNECTION:
/// `max(13, length − 8)` bytes, the last a NUL), auth plugin name NUL (with CLIENT_PLUGIN_AUTH).
public struct MySQLHandshake: Equatable, Sendable {
    /// Always 10: anything else is refused by the decoder.
    public var protocolVersion: UInt8
    /// E.g. `5.5.5-10.11.6-MariaDB-0+deb12u1` (MariaDB 10.x prefixes `5.5.5-` for old clients; 11.0+ does not).
    public var serverVersion: String
    public var connectionID: UInt32
    /// The scramble's first 8 bytes.
    public var scramblePart1: ByteBuffer
    /// The scramble's rest as sent, usually 12 bytes and a NUL; empty without CLIENT_SECURE_CONNECTION.
    public var scramblePart2: ByteBuffer
    public var capabilities: MySQLCapabilities
    /// MariaDB's extended capabilities, present when `capabilities` lacks CLIENT_MYSQL.
    public var mariaDBCapabilities: MariaDBCapabilities?
    /// The server's default collation id (e.g. 45 utf8mb4_general_ci, 255 utf8mb4_0900_ai_ci).
    public var characterSet: UInt8
    public var status: MySQLServerStatus
    /// The scramble length byte (21 for the usual 20 bytes and the NUL), 0 without CLIENT_PLUGIN_AUTH.
    public var scrambleLength: UInt8
    /// E.g. `mysql_native_password`, `caching_sha2_password`; nil without CLIENT_PLUGIN_AUTH.
    public var authPluginName: String?

    public init(
        protocolVersion: UInt8 = 10, serverVersion: String, connectionID: UInt32, scramblePart1: ByteBuffer,
        scramblePart2: ByteBuffer, capabilities: MySQLCapabilities, mariaDBCapabilities: MariaDBCapabilities?,
        characterSet: UInt8, status: MySQLServerStatus, scrambleLength: UInt8, authPluginName: String?
    ) {
        self.protocolVersion = protocolVersion
        self.serverVersion = serverVersion
        self.connectionID = connectionID
        self.scramblePart1 = scramblePart1
        self.scramblePart2 = scramblePart2
        self.capabilities = capabilities
        self.mariaDBCapabilities = mariaDBCapabilities
        self.characterSet = characterSet
        self.status = status
        self.scrambleLength = scrambleLength
        self.authPluginName = authPluginName
    }

    /// The whole scramble the client's answer is computed from: both parts, without part 2's terminating NUL.
    public var scramble: [UInt8] {
        var bytes = Array(scramblePart1.readableBytesView) + Array(scramblePart2.readableBytesView)
        if scramblePart2.readableBytes > 0, bytes.last == 0 {
            bytes.removeLast()
        }
        return bytes
    }

    /// True when the server calls itself MariaDB (its version string says so).
    public var isMariaDB: Bool { serverVersion.contains("MariaDB") }

    /// What a server sends first: a greeting, or an ERR when it refuses the connection outright ("Host … is not
    /// allowed to connect", "Too many connections"). Such an ERR has no SQLSTATE marker, since the server does not yet
    /// know whether the client speaks 4.1.
    public enum Greeting: Equatable, Sendable {
        case handshake(MySQLHandshake)
        case error(MySQLErrorPacket)
    }

    /// Decodes the server's first payload.
    public static func decodeGreeting(_ payload: ByteBuffer) throws(MySQLProtocolError) -> Greeting {
        if payload.getInteger(at: payload.readerIndex, as: UInt8.self) == 0xFF {
            return .error(try MySQLErrorPacket(payload: payload, capabilities: []))
        }
        return .handshake(try MySQLHandshake(payload: payload))
    }

    /// Decodes a HandshakeV10 payload. Bytes after the plugin name are ignored, as clients do.
    public init(payload: ByteBuffer) throws(MySQLProtocolError) {
        self = try Self.parse(payload).0
    }

    /// Where the two capability halves are, as offsets into the payload.
    private struct CapabilityOffsets {
        var low: Int
        var high: Int
    }

    private static func parse(_ payload: ByteBuffer) throws(MySQLProtocolError) -> (MySQLHandshake, CapabilityOffsets) {
        var reader = MySQLPayloadReader(payload, context: "greeting")
        let version = try reader.uint8("protocol version")
        guard version == 10 else {
            // Protocol 9 (HandshakeV9) ended with MySQL 3.21; 0xFF would be an ERR (see `decodeGreeting`).
            throw MySQLProtocolError(
                kind: .unsupportedProtocol,
                reason: "greeting has protocol version \(version); only HandshakeV10 (version 10) is supported")
        }
        let serverVersion = try reader.nulString("server version")
        let connectionID = try reader.uint32("connection id")
        let part1 = try reader.bytes(8, "scramble part 1")
        try reader.skip(1, "filler")
        let lowOffset = reader.offset
        let low = try reader.uint16("capability flags (low)")
        let characterSet = try reader.uint8("character set")
        let status = MySQLServerStatus(rawValue: try reader.uint16("status flags"))
        let highOffset = reader.offset
        let high = try reader.uint16("capability flags (high)")
        let capabilities = MySQLCapabilities(low: low, high: high)
        let scrambleLength = try reader.uint8("scramble length")
        try reader.skip(6, "reserved bytes")
        let extended = try reader.uint32("reserved bytes (MariaDB extended capabilities)")
        var part2 = ByteBuffer()
        if capabilities.contains(.secureConnection) {
            part2 = try reader.bytes(max(13, Int(scrambleLength) - 8), "scramble part 2")
        }
        var plugin: String?
        if capabilities.contains(.pluginAuth) {
            plugin = reader.nulStringOrRest("auth plugin name")
        }
        let handshake = MySQLHandshake(
            protocolVersion: version, serverVersion: serverVersion, connectionID: connectionID, scramblePart1: part1,
            scramblePart2: part2, capabilities: capabilities,
            mariaDBCapabilities: capabilities.hasMariaDBExtendedCapabilities
                ? MariaDBCapabilities(rawValue: extended) : nil,
            characterSet: characterSet, status: status, scrambleLength: scrambleLength, authPluginName: plugin)
        return (handshake, CapabilityOffsets(low: lowOffset, high: highOffset))
    }

    /// The greeting `payload` with the `clearing` capability bits cleared and every other byte unchanged, the
    /// scramble above all (the client's answer is computed from it; PROTOCOLS.md §2). The payload's length does not
    /// change, so the packet header stays valid. Sluice clears `MySQLCapabilities.clearedBySluice`: SSL and COMPRESS
    /// live in the low u16, ZSTD_COMPRESSION_ALGORITHM and QUERY_ATTRIBUTES in the high u16. The payload is decoded
    /// first, so a payload that is not a greeting throws.
    public static func rewritingCapabilities(
        of payload: ByteBuffer, clearing: MySQLCapabilities
    ) throws(MySQLProtocolError) -> ByteBuffer {
        let (handshake, offsets) = try parse(payload)
        let kept = handshake.capabilities.subtracting(clearing)
        var rewritten = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        rewritten.writeImmutableBuffer(payload)
        rewritten.setInteger(kept.low, at: rewritten.readerIndex + offsets.low, endianness: .little)
        rewritten.setInteger(kept.high, at: rewritten.readerIndex + offsets.high, endianness: .little)
        return rewritten
    }
}
