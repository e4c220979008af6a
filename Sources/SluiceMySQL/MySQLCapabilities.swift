/// The 32 capability flags of the greeting and the client's handshake response (MySQL `CLIENT_*`; MariaDB
/// "Capabilities"). The greeting sends them as two u16 halves (`low`, `high`); the client as one u32.
///
/// Parse everything after the handshake with the *effective* capabilities: the client's response intersected with
/// what the server (or Sluice, which rewrites the greeting) advertised (PROTOCOLS.md §2).
public struct MySQLCapabilities: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Bit 0. MySQL's CLIENT_LONG_PASSWORD; MariaDB calls it CLIENT_MYSQL and leaves it *clear* (since 10.2) to say
    /// that the last 4 reserved bytes of the greeting and of the client's response hold `MariaDBCapabilities`.
    public static let clientMySQL = MySQLCapabilities(rawValue: 1 << 0)
    public static let foundRows = MySQLCapabilities(rawValue: 1 << 1)
    public static let longFlag = MySQLCapabilities(rawValue: 1 << 2)
    /// The handshake response names a default database.
    public static let connectWithDB = MySQLCapabilities(rawValue: 1 << 3)
    public static let noSchema = MySQLCapabilities(rawValue: 1 << 4)
    /// Compressed framing (zlib): hides packets from the framer, so Sluice clears it. Low half.
    public static let compress = MySQLCapabilities(rawValue: 1 << 5)
    public static let odbc = MySQLCapabilities(rawValue: 1 << 6)
    /// LOAD DATA LOCAL: the server may ask the client for a file (`0xFB` + file name).
    public static let localFiles = MySQLCapabilities(rawValue: 1 << 7)
    public static let ignoreSpace = MySQLCapabilities(rawValue: 1 << 8)
    /// The 4.1 protocol: required by Sluice (SQLSTATE in ERR, status and warnings in OK and EOF).
    public static let protocol41 = MySQLCapabilities(rawValue: 1 << 9)
    public static let interactive = MySQLCapabilities(rawValue: 1 << 10)
    /// TLS: the client sends an SSLRequest and starts TLS. Sluice clears it to keep the client leg plaintext. Low
    /// half.
    public static let ssl = MySQLCapabilities(rawValue: 1 << 11)
    public static let ignoreSigpipe = MySQLCapabilities(rawValue: 1 << 12)
    public static let transactions = MySQLCapabilities(rawValue: 1 << 13)
    public static let reserved = MySQLCapabilities(rawValue: 1 << 14)
    /// 4.1 authentication: the greeting carries the scramble's second part, the response a length-prefixed answer.
    public static let secureConnection = MySQLCapabilities(rawValue: 1 << 15)
    public static let multiStatements = MySQLCapabilities(rawValue: 1 << 16)
    public static let multiResults = MySQLCapabilities(rawValue: 1 << 17)
    public static let psMultiResults = MySQLCapabilities(rawValue: 1 << 18)
    /// The greeting and response name an authentication plugin.
    public static let pluginAuth = MySQLCapabilities(rawValue: 1 << 19)
    /// The response carries connection attributes.
    public static let connectAttributes = MySQLCapabilities(rawValue: 1 << 20)
    /// The response's authentication data is a length-encoded string (so it may exceed 255 bytes).
    public static let pluginAuthLengthEncodedClientData = MySQLCapabilities(rawValue: 1 << 21)
    public static let canHandleExpiredPasswords = MySQLCapabilities(rawValue: 1 << 22)
    /// OK packets carry their info as a length-encoded string and, with SERVER_SESSION_STATE_CHANGED, session-state
    /// changes.
    public static let sessionTrack = MySQLCapabilities(rawValue: 1 << 23)
    /// Result sets end with an OK packet with a 0xFE header, and no EOF follows the column definitions.
    public static let deprecateEOF = MySQLCapabilities(rawValue: 1 << 24)
    /// MySQL 8: a column-count packet is followed by a byte saying whether column definitions follow. Not MariaDB.
    public static let optionalResultsetMetadata = MySQLCapabilities(rawValue: 1 << 25)
    /// zstd-compressed framing (MySQL 8.0.18+); the response then ends with a compression-level byte. Sluice clears
    /// it. High half (bit 10 of the greeting's upper u16).
    public static let zstdCompressionAlgorithm = MySQLCapabilities(rawValue: 1 << 26)
    /// MySQL 8.0.23+: COM_QUERY and COM_STMT_EXECUTE carry query attributes. Sluice clears it. High half (bit 11).
    public static let queryAttributes = MySQLCapabilities(rawValue: 1 << 27)
    public static let multiFactorAuthentication = MySQLCapabilities(rawValue: 1 << 28)
    public static let capabilityExtension = MySQLCapabilities(rawValue: 1 << 29)
    public static let sslVerifyServerCertificate = MySQLCapabilities(rawValue: 1 << 30)
    public static let rememberOptions = MySQLCapabilities(rawValue: 1 << 31)

    /// What Sluice clears in the greeting and the client's response: compression (either algorithm) would hide the
    /// packets, TLS would hide everything on the client leg, and query attributes are simplest not to have
    /// (PROTOCOLS.md §2). SSL and COMPRESS are in the greeting's low u16, ZSTD and QUERY_ATTRIBUTES in its high u16.
    public static let clearedBySluice: MySQLCapabilities = [
        .ssl, .compress, .zstdCompressionAlgorithm, .queryAttributes,
    ]

    /// The greeting's first u16.
    public var low: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    /// The greeting's second u16.
    public var high: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 16) }

    public init(low: UInt16, high: UInt16) {
        self.init(rawValue: UInt32(low) | UInt32(high) << 16)
    }

    /// MariaDB's convention: bit 0 clear means the extended capabilities are present.
    public var hasMariaDBExtendedCapabilities: Bool { !contains(.clientMySQL) }

    private static let names: [(MySQLCapabilities, String)] = [
        (.clientMySQL, "CLIENT_MYSQL"), (.foundRows, "FOUND_ROWS"), (.longFlag, "LONG_FLAG"),
        (.connectWithDB, "CONNECT_WITH_DB"), (.noSchema, "NO_SCHEMA"), (.compress, "COMPRESS"), (.odbc, "ODBC"),
        (.localFiles, "LOCAL_FILES"), (.ignoreSpace, "IGNORE_SPACE"), (.protocol41, "PROTOCOL_41"),
        (.interactive, "INTERACTIVE"), (.ssl, "SSL"), (.ignoreSigpipe, "IGNORE_SIGPIPE"),
        (.transactions, "TRANSACTIONS"), (.reserved, "RESERVED"), (.secureConnection, "SECURE_CONNECTION"),
        (.multiStatements, "MULTI_STATEMENTS"), (.multiResults, "MULTI_RESULTS"),
        (.psMultiResults, "PS_MULTI_RESULTS"), (.pluginAuth, "PLUGIN_AUTH"), (.connectAttributes, "CONNECT_ATTRS"),
        (.pluginAuthLengthEncodedClientData, "PLUGIN_AUTH_LENENC_CLIENT_DATA"),
        (.canHandleExpiredPasswords, "CAN_HANDLE_EXPIRED_PASSWORDS"), (.sessionTrack, "SESSION_TRACK"),
        (.deprecateEOF, "DEPRECATE_EOF"), (.optionalResultsetMetadata, "OPTIONAL_RESULTSET_METADATA"),
        (.zstdCompressionAlgorithm, "ZSTD_COMPRESSION_ALGORITHM"), (.queryAttributes, "QUERY_ATTRIBUTES"),
        (.multiFactorAuthentication, "MULTI_FACTOR_AUTHENTICATION"), (.capabilityExtension, "CAPABILITY_EXTENSION"),
        (.sslVerifyServerCertificate, "SSL_VERIFY_SERVER_CERT"), (.rememberOptions, "REMEMBER_OPTIONS"),
    ]

    /// The set flags' names, e.g. `PROTOCOL_41|SECURE_CONNECTION`, for logs and the flow view.
    public var description: String {
        Self.names.filter { contains($0.0) }.map(\.1).joined(separator: "|")
    }
}

/// MariaDB's extended capabilities, bits 32 to 63 of its 64-bit flags, sent in the last 4 reserved bytes of the
/// greeting and of the client's response when `MySQLCapabilities.clientMySQL` is clear (MariaDB 10.2+).
public struct MariaDBCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// MARIADB_CLIENT_PROGRESS: the server may send progress reports (ERR packets with code 0xFFFF) during a command.
    public static let progress = MariaDBCapabilities(rawValue: 1 << 0)
    /// MARIADB_CLIENT_COM_MULTI (removed in 10.6).
    public static let comMulti = MariaDBCapabilities(rawValue: 1 << 1)
    /// MARIADB_CLIENT_STMT_BULK_OPERATIONS: COM_STMT_BULK_EXECUTE (0xFA).
    public static let stmtBulkOperations = MariaDBCapabilities(rawValue: 1 << 2)
    /// MARIADB_CLIENT_EXTENDED_METADATA: column definitions carry extended type information.
    public static let extendedMetadata = MariaDBCapabilities(rawValue: 1 << 3)
    /// MARIADB_CLIENT_CACHE_METADATA: a column-count packet is followed by a byte saying whether column definitions
    /// follow (a prepared statement's execution may skip them).
    public static let cacheMetadata = MariaDBCapabilities(rawValue: 1 << 4)
    /// MARIADB_CLIENT_BULK_UNIT_RESULTS (11.5+).
    public static let bulkUnitResults = MariaDBCapabilities(rawValue: 1 << 5)
}

/// The server status flags of OK and EOF packets and the greeting.
public struct MySQLServerStatus: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let inTransaction = MySQLServerStatus(rawValue: 0x0001)
    public static let autocommit = MySQLServerStatus(rawValue: 0x0002)
    /// Another result of the same command follows: the command's response ends only at an OK, EOF or ERR without
    /// it.
    public static let moreResultsExist = MySQLServerStatus(rawValue: 0x0008)
    public static let noGoodIndexUsed = MySQLServerStatus(rawValue: 0x0010)
    public static let noIndexUsed = MySQLServerStatus(rawValue: 0x0020)
    /// A COM_STMT_EXECUTE opened a cursor: its rows come with COM_STMT_FETCH.
    public static let cursorExists = MySQLServerStatus(rawValue: 0x0040)
    /// A COM_STMT_FETCH reached the cursor's end.
    public static let lastRowSent = MySQLServerStatus(rawValue: 0x0080)
    public static let databaseDropped = MySQLServerStatus(rawValue: 0x0100)
    public static let noBackslashEscapes = MySQLServerStatus(rawValue: 0x0200)
    public static let metadataChanged = MySQLServerStatus(rawValue: 0x0400)
    public static let queryWasSlow = MySQLServerStatus(rawValue: 0x0800)
    /// The result set holds a stored procedure's OUT parameters.
    public static let psOutParameters = MySQLServerStatus(rawValue: 0x1000)
    public static let inReadOnlyTransaction = MySQLServerStatus(rawValue: 0x2000)
    /// With CLIENT_SESSION_TRACK, the OK packet carries session-state changes.
    public static let sessionStateChanged = MySQLServerStatus(rawValue: 0x4000)
}
