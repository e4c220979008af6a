import NIOCore

/// A message from client to server, decoded from a `PostgresFrame` (PostgreSQL docs §55.7 "Message Formats").
///
/// Decode a `.startupPacket` frame with `init(startupPacket:)` and a `.message` frame with `init(type:body:)`. A
/// streamed Bind or CopyData is read with `PostgresStreamHead` instead.
public enum PostgresFrontendMessage: Equatable, Sendable {
    /// StartupMessage: the protocol version and the `name`/`value` pairs in the order sent (`user`, `database`,
    /// `application_name`, `options`, `replication`, `_pq_.*` protocol options …).
    case startup(version: PostgresProtocolVersion, parameters: [StartupParameter])
    /// SSLRequest: answer one byte, `S` (TLS handshake follows) or `N` (carry on in clear).
    case sslRequest
    /// GSSENCRequest: Sluice always answers `N`, since it cannot intercept GSSAPI encryption.
    case gssEncRequest
    /// CancelRequest, sent on a new connection: the key is 4 bytes in protocol 3.0 and 4 to 256 in 3.2.
    case cancelRequest(processID: Int32, secretKey: [UInt8])
    /// Query `Q`: simple query protocol; the string may hold several statements.
    case query(String)
    /// Parse `P`: the statement name (`""` is the unnamed statement) and its SQL, with parameter type OIDs
    /// (0 = let the server infer).
    case parse(statement: String, query: String, parameterTypes: [UInt32])
    /// Bind `B`: parameter values are nil for SQL NULL. Format code lists may have 0 entries (all text), 1 (applies
    /// to all) or one per value; that is the server's to check.
    case bind(
        portal: String, statement: String, parameterFormats: [Int16], parameters: [ByteBuffer?],
        resultFormats: [Int16])
    /// Describe `D` of a portal or prepared statement.
    case describe(kind: TargetKind, name: String)
    /// Execute `E`: `maxRows` 0 means all rows; at the limit the server answers PortalSuspended.
    case execute(portal: String, maxRows: Int32)
    /// Sync `S`: ends an extended-query batch; the server answers ReadyForQuery.
    case sync
    /// Flush `H`: asks the server to send what it has buffered.
    case flush
    /// Close `C` of a portal or prepared statement.
    case close(kind: TargetKind, name: String)
    /// CopyData `d` during COPY FROM STDIN.
    case copyData(ByteBuffer)
    /// CopyDone `c`.
    case copyDone
    /// CopyFail `f`: the client aborts a COPY FROM STDIN with this message.
    case copyFail(message: String)
    /// Terminate `X`.
    case terminate
    /// FunctionCall `F`, the legacy fast path (libpq's large-object functions use it); the arguments are checked
    /// for shape but not kept.
    case functionCall(oid: UInt32)
    /// `p`: PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse, depending on the server's last
    /// Authentication request. Deliberately opaque: the proxy relays credentials and never reads them. See
    /// `saslMechanism(initialResponse:)` to record which SASL mechanism a client chose.
    case authenticationResponse

    /// One StartupMessage parameter.
    public struct StartupParameter: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// What a Describe or Close names: `S` a prepared statement, `P` a portal.
    public enum TargetKind: UInt8, Sendable, Hashable {
        case statement = 0x53  // "S"
        case portal = 0x50  // "P"
    }
}

extension PostgresFrontendMessage {
    /// Decodes the body of a `.startupPacket` frame (the code and what follows it).
    public init(startupPacket body: ByteBuffer) throws(PostgresProtocolError) {
        var reader = PostgresMessageReader(body, context: "startup packet")
        let code = try reader.uint32("code")
        switch code {
        case PostgresStartupCode.sslRequest:
            self = .sslRequest
        case PostgresStartupCode.gssEncRequest:
            self = .gssEncRequest
        case PostgresStartupCode.cancelRequest:
            reader = PostgresMessageReader(reader.rest(), context: "CancelRequest")
            let processID = try reader.int32("process ID")
            // 3.0 keys are 4 bytes; 3.2 allows up to 256 (protocol docs, BackendKeyData).
            guard (4...256).contains(reader.remaining) else {
                throw reader.error("secret key of \(reader.remaining) bytes is not 4 to 256 bytes")
            }
            self = .cancelRequest(processID: processID, secretKey: Array(reader.rest().readableBytesView))
            return
        case _ where code >> 16 == 3:
            self = .startup(
                version: PostgresProtocolVersion(major: UInt16(code >> 16), minor: UInt16(code & 0xFFFF)),
                parameters: try Self.startupParameters(&reader))
        default:
            throw reader.error("code \(code) is not a 3.x StartupMessage, SSLRequest, GSSENCRequest or CancelRequest")
        }
        // SSLRequest and GSSENCRequest are exactly 8 bytes; StartupMessage ends with its terminator.
        try reader.finish()
    }

    /// `name\0value\0 … \0`: ProcessStartupPacket requires the terminator to be the packet's last byte.
    private static func startupParameters(
        _ reader: inout PostgresMessageReader
    ) throws(PostgresProtocolError) -> [StartupParameter] {
        var parameters: [StartupParameter] = []
        while true {
            guard reader.remaining > 0 else { throw reader.error("parameter list has no terminating NUL") }
            let name = try reader.cString("parameter name")
            if name.isEmpty {
                return parameters
            }
            let value = try reader.cString("value of parameter \"\(name)\"")
            parameters.append(StartupParameter(name: name, value: value))
        }
    }

    /// Decodes the body of a typed frontend `.message` frame.
    public init(type: UInt8, body: ByteBuffer) throws(PostgresProtocolError) {
        var reader = PostgresMessageReader(body, direction: .frontend, type: type)
        switch type {
        case UInt8(ascii: "Q"):
            self = .query(try reader.cString("query string"))
        case UInt8(ascii: "P"):
            let statement = try reader.cString("statement name")
            let query = try reader.cString("query string")
            let count = try reader.count("parameter type", minimumElementSize: 4)
            var types: [UInt32] = []
            types.reserveCapacity(count)
            for _ in 0..<count {
                types.append(try reader.uint32("parameter type"))
            }
            self = .parse(statement: statement, query: query, parameterTypes: types)
        case UInt8(ascii: "B"):
            let portal = try reader.cString("portal name")
            let statement = try reader.cString("statement name")
            let parameterFormats = try reader.int16Array("parameter format")
            let count = try reader.count("parameter value", minimumElementSize: 4)
            var parameters: [ByteBuffer?] = []
            parameters.reserveCapacity(count)
            for index in 0..<count {
                parameters.append(try reader.nullableValue("parameter \(index + 1)"))
            }
            let resultFormats = try reader.int16Array("result format")
            self = .bind(
                portal: portal, statement: statement, parameterFormats: parameterFormats, parameters: parameters,
                resultFormats: resultFormats)
        case UInt8(ascii: "D"):
            let kind = try Self.targetKind(&reader)
            self = .describe(kind: kind, name: try reader.cString("name"))
        case UInt8(ascii: "C"):
            let kind = try Self.targetKind(&reader)
            self = .close(kind: kind, name: try reader.cString("name"))
        case UInt8(ascii: "E"):
            let portal = try reader.cString("portal name")
            self = .execute(portal: portal, maxRows: try reader.int32("maximum row count"))
        case UInt8(ascii: "S"):
            self = .sync
        case UInt8(ascii: "H"):
            self = .flush
        case UInt8(ascii: "X"):
            self = .terminate
        case UInt8(ascii: "c"):
            self = .copyDone
        case UInt8(ascii: "d"):
            self = .copyData(reader.rest())
        case UInt8(ascii: "f"):
            self = .copyFail(message: try reader.cString("error message"))
        case UInt8(ascii: "F"):
            let oid = try reader.uint32("function OID")
            _ = try reader.int16Array("argument format")
            let count = try reader.count("argument", minimumElementSize: 4)
            for index in 0..<count {
                _ = try reader.nullableValue("argument \(index + 1)")
            }
            _ = try reader.int16("result format")
            self = .functionCall(oid: oid)
        case UInt8(ascii: "p"):
            _ = reader.rest()
            self = .authenticationResponse
        default:
            throw PostgresProtocolError(
                kind: .unknownMessageType, reason: "unknown frontend message type \(PostgresDirection.hex(type))")
        }
        try reader.finish()
    }

    private static func targetKind(_ reader: inout PostgresMessageReader) throws(PostgresProtocolError) -> TargetKind {
        let byte = try reader.uint8("target kind")
        guard let kind = TargetKind(rawValue: byte) else {
            throw reader.error("target kind \(PostgresDirection.printable(byte)) is neither 'S' nor 'P'")
        }
        return kind
    }

    /// The mechanism a SASLInitialResponse (`p` right after AuthenticationSASL) names, e.g. `SCRAM-SHA-256`; the
    /// client's first message after it is not read. Only the inspector knows which `p` this is, from the last `R`.
    public static func saslMechanism(initialResponse body: ByteBuffer) throws(PostgresProtocolError) -> String {
        var reader = PostgresMessageReader(body, context: "frontend 'p' SASLInitialResponse")
        return try reader.cString("mechanism name")
    }
}
