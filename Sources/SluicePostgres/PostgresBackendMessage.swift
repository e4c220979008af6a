import NIOCore

/// A message from server to client, decoded from a `.message` frame with `init(type:body:)` (PostgreSQL docs §55.7
/// "Message Formats"). A streamed DataRow, CopyData or FunctionCallResponse is read with `PostgresStreamHead`.
public enum PostgresBackendMessage: Equatable, Sendable {
    /// Authentication `R`.
    case authentication(PostgresAuthenticationRequest)
    /// ParameterStatus `S`: sent after authentication and whenever a reported setting changes (`client_encoding`,
    /// `standard_conforming_strings`, `server_version` …).
    case parameterStatus(name: String, value: String)
    /// BackendKeyData `K`: what a CancelRequest must quote; the key is 4 bytes in 3.0, up to 256 in 3.2.
    case backendKeyData(processID: Int32, secretKey: [UInt8])
    /// ReadyForQuery `Z`.
    case readyForQuery(PostgresTransactionStatus)
    /// RowDescription `T`.
    case rowDescription([Field])
    /// DataRow `D`: one value per column, nil for SQL NULL.
    case dataRow(columns: [ByteBuffer?])
    /// CommandComplete `C`: the tag, e.g. `SELECT 1`, `INSERT 0 5`, `DELETE 3`.
    case commandComplete(tag: String)
    /// EmptyQueryResponse `I`: the query string was empty.
    case emptyQueryResponse
    /// ErrorResponse `E`.
    case errorResponse(PostgresErrorFields)
    /// NoticeResponse `N`: may arrive at any time, not an answer to anything in particular.
    case noticeResponse(PostgresErrorFields)
    /// ParseComplete `1`.
    case parseComplete
    /// BindComplete `2`.
    case bindComplete
    /// CloseComplete `3`.
    case closeComplete
    /// NoData `n`: the described statement or portal returns no rows.
    case noData
    /// PortalSuspended `s`: an Execute reached its row limit.
    case portalSuspended
    /// ParameterDescription `t`: the parameter type OIDs of a described statement.
    case parameterDescription(parameterTypes: [UInt32])
    /// CopyInResponse `G`: the client now streams CopyData.
    case copyInResponse(CopyResponse)
    /// CopyOutResponse `H`: the server now streams CopyData.
    case copyOutResponse(CopyResponse)
    /// CopyBothResponse `W`: streaming replication.
    case copyBothResponse(CopyResponse)
    /// CopyData `d`.
    case copyData(ByteBuffer)
    /// CopyDone `c`.
    case copyDone
    /// NotificationResponse `A`: a NOTIFY on a channel this session LISTENs to.
    case notificationResponse(processID: Int32, channel: String, payload: String)
    /// NegotiateProtocolVersion `v`: the newest minor version the server supports and the `_pq_.` options it did
    /// not recognise.
    case negotiateProtocolVersion(newestMinorVersion: Int32, unrecognizedOptions: [String])
    /// FunctionCallResponse `V`: the result of a fast-path FunctionCall, nil for NULL.
    case functionCallResponse(ByteBuffer?)

    /// One column of a RowDescription.
    public struct Field: Hashable, Sendable {
        public var name: String
        /// The table's OID, or 0 when the column is not a plain table column.
        public var tableOID: UInt32
        /// The column's attribute number in that table, or 0.
        public var columnAttributeNumber: Int16
        public var dataTypeOID: UInt32
        /// `pg_type.typlen`; negative for variable-width types.
        public var dataTypeSize: Int16
        public var typeModifier: Int32
        /// 0 text, 1 binary.
        public var formatCode: Int16

        public init(
            name: String, tableOID: UInt32, columnAttributeNumber: Int16, dataTypeOID: UInt32, dataTypeSize: Int16,
            typeModifier: Int32, formatCode: Int16
        ) {
            self.name = name
            self.tableOID = tableOID
            self.columnAttributeNumber = columnAttributeNumber
            self.dataTypeOID = dataTypeOID
            self.dataTypeSize = dataTypeSize
            self.typeModifier = typeModifier
            self.formatCode = formatCode
        }
    }

    /// The body of CopyIn/CopyOut/CopyBothResponse.
    public struct CopyResponse: Hashable, Sendable {
        /// 0 text (rows are lines), 1 binary.
        public var format: Int8
        /// One format code per column (all 0 when `format` is 0).
        public var columnFormats: [Int16]

        public init(format: Int8, columnFormats: [Int16]) {
            self.format = format
            self.columnFormats = columnFormats
        }
    }
}

extension PostgresBackendMessage {
    /// Decodes the body of a typed backend `.message` frame.
    public init(type: UInt8, body: ByteBuffer) throws(PostgresProtocolError) {
        var reader = PostgresMessageReader(body, direction: .backend, type: type)
        switch type {
        case UInt8(ascii: "R"):
            self = .authentication(try Self.authentication(&reader))
        case UInt8(ascii: "S"):
            let name = try reader.cString("parameter name")
            self = .parameterStatus(name: name, value: try reader.cString("parameter value"))
        case UInt8(ascii: "K"):
            let processID = try reader.int32("process ID")
            guard (4...256).contains(reader.remaining) else {
                throw reader.error("secret key of \(reader.remaining) bytes is not 4 to 256 bytes")
            }
            self = .backendKeyData(processID: processID, secretKey: Array(reader.rest().readableBytesView))
        case UInt8(ascii: "Z"):
            let byte = try reader.uint8("transaction status")
            guard let status = PostgresTransactionStatus(rawValue: byte) else {
                throw reader.error("transaction status \(PostgresDirection.printable(byte)) is not I, T or E")
            }
            self = .readyForQuery(status)
        case UInt8(ascii: "T"):
            // Name (at least its NUL) plus 18 bytes of fixed fields.
            let count = try reader.count("field", minimumElementSize: 19)
            var fields: [Field] = []
            fields.reserveCapacity(count)
            for _ in 0..<count {
                fields.append(
                    Field(
                        name: try reader.cString("field name"), tableOID: try reader.uint32("table OID"),
                        columnAttributeNumber: try reader.int16("column attribute number"),
                        dataTypeOID: try reader.uint32("data type OID"), dataTypeSize: try reader.int16("type size"),
                        typeModifier: try reader.int32("type modifier"), formatCode: try reader.int16("format code")))
            }
            self = .rowDescription(fields)
        case UInt8(ascii: "D"):
            let count = try reader.count("column", minimumElementSize: 4)
            var columns: [ByteBuffer?] = []
            columns.reserveCapacity(count)
            for index in 0..<count {
                columns.append(try reader.nullableValue("column \(index + 1)"))
            }
            self = .dataRow(columns: columns)
        case UInt8(ascii: "C"):
            self = .commandComplete(tag: try reader.cString("command tag"))
        case UInt8(ascii: "I"):
            self = .emptyQueryResponse
        case UInt8(ascii: "E"):
            self = .errorResponse(try Self.errorFields(&reader))
        case UInt8(ascii: "N"):
            self = .noticeResponse(try Self.errorFields(&reader))
        case UInt8(ascii: "1"):
            self = .parseComplete
        case UInt8(ascii: "2"):
            self = .bindComplete
        case UInt8(ascii: "3"):
            self = .closeComplete
        case UInt8(ascii: "n"):
            self = .noData
        case UInt8(ascii: "s"):
            self = .portalSuspended
        case UInt8(ascii: "t"):
            let count = try reader.count("parameter type", minimumElementSize: 4)
            var types: [UInt32] = []
            types.reserveCapacity(count)
            for _ in 0..<count {
                types.append(try reader.uint32("parameter type"))
            }
            self = .parameterDescription(parameterTypes: types)
        case UInt8(ascii: "G"):
            self = .copyInResponse(try Self.copyResponse(&reader))
        case UInt8(ascii: "H"):
            self = .copyOutResponse(try Self.copyResponse(&reader))
        case UInt8(ascii: "W"):
            self = .copyBothResponse(try Self.copyResponse(&reader))
        case UInt8(ascii: "d"):
            self = .copyData(reader.rest())
        case UInt8(ascii: "c"):
            self = .copyDone
        case UInt8(ascii: "A"):
            let processID = try reader.int32("process ID")
            let channel = try reader.cString("channel name")
            self = .notificationResponse(processID: processID, channel: channel, payload: try reader.cString("payload"))
        case UInt8(ascii: "v"):
            let newest = try reader.int32("newest minor version")
            // An Int32 count, unlike the Int16 counts elsewhere; each option is at least its NUL.
            let count = Int(try reader.int32("option count"))
            try reader.checkCount(count, "unrecognized option", minimumElementSize: 1)
            var options: [String] = []
            options.reserveCapacity(count)
            for _ in 0..<count {
                options.append(try reader.cString("option name"))
            }
            self = .negotiateProtocolVersion(newestMinorVersion: newest, unrecognizedOptions: options)
        case UInt8(ascii: "V"):
            self = .functionCallResponse(try reader.nullableValue("result"))
        default:
            throw PostgresProtocolError(
                kind: .unknownMessageType, reason: "unknown backend message type \(PostgresDirection.hex(type))")
        }
        try reader.finish()
    }

    private static func authentication(
        _ reader: inout PostgresMessageReader
    ) throws(PostgresProtocolError) -> PostgresAuthenticationRequest {
        let code = try reader.int32("authentication code")
        switch code {
        case 0: return .ok
        case 2: return .kerberosV5
        case 3: return .cleartextPassword
        case 5:
            return .md5Password(salt: Array(try reader.bytes(4, "MD5 salt").readableBytesView))
        case 7: return .gss
        case 8:
            _ = reader.rest()  // A GSS/SSPI token: relayed, not kept.
            return .gssContinue
        case 9: return .sspi
        case 10:
            return .sasl(mechanisms: try saslMechanisms(&reader))
        case 11:
            _ = reader.rest()  // The server-first-message: relayed, not kept.
            return .saslContinue
        case 12:
            _ = reader.rest()  // The server-final-message: relayed, not kept.
            return .saslFinal
        default:
            _ = reader.rest()  // Unknown layout: relay it unread.
            return .other(code: code)
        }
    }

    /// AuthenticationSASL's list: mechanism names, each NUL-terminated, ended by an empty name.
    static func saslMechanisms(_ reader: inout PostgresMessageReader) throws(PostgresProtocolError) -> [String] {
        var mechanisms: [String] = []
        while true {
            guard reader.remaining > 0 else { throw reader.error("SASL mechanism list has no terminating NUL") }
            let name = try reader.cString("SASL mechanism name")
            if name.isEmpty {
                return mechanisms
            }
            mechanisms.append(name)
        }
    }

    private static func errorFields(
        _ reader: inout PostgresMessageReader
    ) throws(PostgresProtocolError) -> PostgresErrorFields {
        var fields: [PostgresErrorFields.Field] = []
        while true {
            let code = try reader.uint8("field code (or the terminating NUL)")
            if code == 0 {
                return PostgresErrorFields(fields)
            }
            let value = try reader.cString("value of field \(PostgresDirection.printable(code))")
            fields.append(PostgresErrorFields.Field(code: code, value: value))
        }
    }

    private static func copyResponse(
        _ reader: inout PostgresMessageReader
    ) throws(PostgresProtocolError) -> CopyResponse {
        let format = Int8(truncatingIfNeeded: try reader.uint8("overall format"))
        return CopyResponse(format: format, columnFormats: try reader.int16Array("column format"))
    }
}
