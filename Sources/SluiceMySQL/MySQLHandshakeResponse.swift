import NIOCore

/// The client's HandshakeResponse41 (PROTOCOLS.md §2; MariaDB "Connecting"): caps u32, max packet u32, character
/// set, 23 reserved bytes (MariaDB: the last 4 are its extended capabilities when CLIENT_MYSQL is clear), user NUL,
/// auth data, [database NUL], [plugin NUL], [attributes], [zstd level].
///
/// The authentication data is a password hash, a signature, or with some plugins the password itself: it is skipped,
/// never kept or shown; only its length is reported.
public struct MySQLHandshakeResponse: Equatable, Sendable {
    public var capabilities: MySQLCapabilities
    public var maxPacketSize: UInt32
    /// The client's collation id.
    public var characterSet: UInt8
    /// MariaDB's extended capabilities, present when `capabilities` lacks CLIENT_MYSQL.
    public var mariaDBCapabilities: MariaDBCapabilities?
    public var user: String
    /// How many bytes of authentication data the client sent (0 for an empty password).
    public var authResponseLength: Int
    /// The default database, with CLIENT_CONNECT_WITH_DB.
    public var database: String?
    /// With CLIENT_PLUGIN_AUTH: the plugin the auth data was computed with.
    public var authPluginName: String?
    /// With CLIENT_CONNECT_ATTRS, in the order sent: `_client_name`, `_client_version`, `_os`, `_pid`,
    /// `program_name` …
    public var attributes: [Attribute]
    /// With CLIENT_ZSTD_COMPRESSION_ALGORITHM (MySQL 8.0.18+): the requested level.
    public var zstdCompressionLevel: UInt8?

    public struct Attribute: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }
}

/// The 32-byte packet a client sends instead of its handshake response when it wants TLS (CLIENT_SSL set and
/// nothing after the reserved bytes): it starts TLS right after, and sends the full response inside it.
public struct MySQLSSLRequest: Equatable, Sendable {
    public var capabilities: MySQLCapabilities
    public var maxPacketSize: UInt32
    public var characterSet: UInt8
    public var mariaDBCapabilities: MariaDBCapabilities?

    public init(
        capabilities: MySQLCapabilities, maxPacketSize: UInt32, characterSet: UInt8,
        mariaDBCapabilities: MariaDBCapabilities?
    ) {
        self.capabilities = capabilities
        self.maxPacketSize = maxPacketSize
        self.characterSet = characterSet
        self.mariaDBCapabilities = mariaDBCapabilities
    }
}

/// What a client answers the greeting with.
public enum MySQLClientHandshake: Equatable, Sendable {
    case sslRequest(MySQLSSLRequest)
    case response(MySQLHandshakeResponse)

    /// Where the parts a rewrite may touch are, as offsets into the payload.
    fileprivate struct Layout {
        /// The offset of the zstd level byte, when there is one.
        var zstdLevel: Int?
    }

    /// Decodes the client's first payload (sequence id 1, or 2 after an SSLRequest and TLS). Bytes after the last
    /// field are ignored, as the server does.
    public init(payload: ByteBuffer) throws(MySQLProtocolError) {
        self = try Self.parse(payload).0
    }

    fileprivate static func parse(_ payload: ByteBuffer) throws(MySQLProtocolError) -> (MySQLClientHandshake, Layout) {
        var reader = MySQLPayloadReader(payload, context: "handshake response")
        let capabilities = MySQLCapabilities(rawValue: try reader.uint32("capability flags"))
        guard capabilities.contains(.protocol41) else {
            throw MySQLProtocolError(
                kind: .unsupportedProtocol,
                reason: "handshake response without CLIENT_PROTOCOL_41 (HandshakeResponse320) is not supported")
        }
        let maxPacketSize = try reader.uint32("max packet size")
        let characterSet = try reader.uint8("character set")
        try reader.skip(19, "reserved bytes")
        let extended = try reader.uint32("reserved bytes (MariaDB extended capabilities)")
        let mariaDB = capabilities.hasMariaDBExtendedCapabilities ? MariaDBCapabilities(rawValue: extended) : nil
        if reader.remaining == 0 {
            guard capabilities.contains(.ssl) else {
                throw reader.error("ends after the reserved bytes without CLIENT_SSL, so it is not an SSLRequest")
            }
            let request = MySQLSSLRequest(
                capabilities: capabilities, maxPacketSize: maxPacketSize, characterSet: characterSet,
                mariaDBCapabilities: mariaDB)
            return (.sslRequest(request), Layout())
        }
        let user = try reader.nulString("user name")
        let authLength: Int
        if capabilities.contains(.pluginAuthLengthEncodedClientData) {
            authLength = try reader.lengthEncodedBytes("auth response").readableBytes
        } else if capabilities.contains(.secureConnection) {
            let length = Int(try reader.uint8("auth response length"))
            try reader.skip(length, "auth response")
            authLength = length
        } else {
            // The pre-4.1 scrambled password, NUL-terminated.
            authLength = try reader.nulString("auth response").utf8.count
        }
        var database: String?
        if capabilities.contains(.connectWithDB), reader.remaining > 0 {
            database = reader.nulStringOrRest("database")
        }
        var plugin: String?
        if capabilities.contains(.pluginAuth), reader.remaining > 0 {
            plugin = reader.nulStringOrRest("auth plugin name")
        }
        var attributes: [MySQLHandshakeResponse.Attribute] = []
        if capabilities.contains(.connectAttributes), reader.remaining > 0 {
            attributes = try connectionAttributes(&reader)
        }
        var layout = Layout()
        var zstdLevel: UInt8?
        if capabilities.contains(.zstdCompressionAlgorithm), reader.remaining > 0 {
            layout.zstdLevel = reader.offset
            zstdLevel = try reader.uint8("zstd compression level")
        }
        let response = MySQLHandshakeResponse(
            capabilities: capabilities, maxPacketSize: maxPacketSize, characterSet: characterSet,
            mariaDBCapabilities: mariaDB, user: user, authResponseLength: authLength, database: database,
            authPluginName: plugin, attributes: attributes, zstdCompressionLevel: zstdLevel)
        return (.response(response), layout)
    }

    /// `int<lenenc>` total length, then `string<lenenc>` name and value pairs filling exactly that length.
    static func connectionAttributes(
        _ reader: inout MySQLPayloadReader
    ) throws(MySQLProtocolError) -> [MySQLHandshakeResponse.Attribute] {
        let total = try reader.lengthEncodedCount("connection attribute byte", minimumElementSize: 1)
        var pairs = MySQLPayloadReader(try reader.bytes(total, "connection attributes"), context: reader.context)
        var attributes: [MySQLHandshakeResponse.Attribute] = []
        while pairs.remaining > 0 {
            let name = try pairs.lengthEncodedString("connection attribute name")
            let value = try pairs.lengthEncodedString("value of connection attribute \"\(name)\"")
            attributes.append(MySQLHandshakeResponse.Attribute(name: name, value: value))
        }
        return attributes
    }
}

extension MySQLHandshakeResponse {
    /// The client's handshake response (or SSLRequest) `payload` with the `clearing` capability bits cleared and
    /// every other byte unchanged (the auth data above all), so the server parses the rest as the client meant it.
    /// One exception: clearing CLIENT_ZSTD_COMPRESSION_ALGORITHM also drops the zstd level byte that only exists with
    /// that bit, so the payload is one byte shorter; re-frame it with `MySQLPacketEncoder.writePacket`. Sluice
    /// advertises none of `MySQLCapabilities.clearedBySluice`, so a client sets them only if it ignores the greeting.
    public static func rewritingCapabilities(
        of payload: ByteBuffer, clearing: MySQLCapabilities
    ) throws(MySQLProtocolError) -> ByteBuffer {
        let (_, layout) = try MySQLClientHandshake.parse(payload)
        guard let raw = payload.getInteger(at: payload.readerIndex, endianness: .little, as: UInt32.self) else {
            throw .malformed("handshake response: capability flags are missing")
        }
        let capabilities = MySQLCapabilities(rawValue: raw)
        let kept = capabilities.subtracting(clearing)
        var rewritten = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        rewritten.writeImmutableBuffer(payload)
        rewritten.setInteger(kept.rawValue, at: rewritten.readerIndex, endianness: .little)
        if let zstdLevel = layout.zstdLevel, !kept.contains(.zstdCompressionAlgorithm),
            let before = rewritten.getSlice(at: rewritten.readerIndex, length: zstdLevel),
            let after = rewritten.getSlice(
                at: rewritten.readerIndex + zstdLevel + 1, length: rewritten.readableBytes - zstdLevel - 1)
        {
            var shortened = ByteBufferAllocator().buffer(capacity: rewritten.readableBytes - 1)
            shortened.writeImmutableBuffer(before)
            shortened.writeImmutableBuffer(after)
            return shortened
        }
        return rewritten
    }
}
