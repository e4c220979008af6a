import NIOCore

/// A COM_STMT_EXECUTE with its parameter values, from `MySQLCommand.decodeExecute`.
public struct MySQLStatementExecute: Equatable, Sendable {
    public var statementID: UInt32
    /// The cursor type (0 none, 1 read only, 2 for update, 4 scrollable), and MySQL's 0x08 PARAMETER_COUNT_AVAILABLE.
    public var flags: UInt8
    /// Always 1 in practice.
    public var iterations: UInt32
    /// The types the values were read with, one per parameter: sent in this execution when `typesWereSent`, else the
    /// caller's. Keep them per statement: the next execution may omit them.
    public var parameterTypes: [MySQLParameterType]
    /// True when the execution sent the types (new-params-bound flag 1).
    public var typesWereSent: Bool
    /// One value per parameter, in order.
    public var parameters: [MySQLBinaryValue]
    /// With CLIENT_QUERY_ATTRIBUTES and PARAMETER_COUNT_AVAILABLE, the named values sent after the parameters.
    public var attributes: [MySQLQueryAttribute]

    public init(
        statementID: UInt32, flags: UInt8 = 0, iterations: UInt32 = 1, parameterTypes: [MySQLParameterType] = [],
        typesWereSent: Bool = false, parameters: [MySQLBinaryValue] = [], attributes: [MySQLQueryAttribute] = []
    ) {
        self.statementID = statementID
        self.flags = flags
        self.iterations = iterations
        self.parameterTypes = parameterTypes
        self.typesWereSent = typesWereSent
        self.parameters = parameters
        self.attributes = attributes
    }

    /// The parameters as text for the command log, nil for NULL (see `MySQLBinaryValue.text`).
    public var parameterTexts: [String?] { parameters.map(\.text) }

    /// MySQL's flag saying a parameter count precedes the parameters (with CLIENT_QUERY_ATTRIBUTES).
    public static let parameterCountAvailable: UInt8 = 0x08

    /// A parameter type as sent: the type byte, then a flag byte whose 0x80 bit means unsigned.
    static func parameterType(
        _ reader: inout MySQLPayloadReader, field: String
    ) throws(MySQLProtocolError) -> MySQLParameterType {
        let type = try reader.uint8(field)
        let flags = try reader.uint8("\(field) flags")
        return MySQLParameterType(type: MySQLColumnType(rawValue: type), isUnsigned: flags & 0x80 != 0)
    }

    /// Bit `index` of a NULL bitmap (parameters start at bit 0, unlike binary result rows).
    static func isNull(_ index: Int, in bitmap: ByteBuffer) -> Bool {
        guard let byte = bitmap.getInteger(at: bitmap.readerIndex + index / 8, as: UInt8.self) else { return false }
        return byte & (1 << UInt8(index % 8)) != 0
    }
}

extension MySQLCommand {
    /// Decodes a COM_STMT_EXECUTE payload with its parameter values (PROTOCOLS.md §2): `0x17`, statement id u32,
    /// flags u8, iterations u32, then when there are parameters a NULL bitmap of `(n + 7) / 8` bytes, the
    /// new-params-bound flag, with it `n` types (u16 each), and the values of the parameters that are neither NULL nor
    /// sent earlier.
    ///
    /// - Parameters:
    ///   - parameterCount: the statement's parameter count, from its COM_STMT_PREPARE_OK.
    ///   - boundTypes: the types the previous execution of the statement sent, needed when this one sends none
    ///     (new-params-bound 0); without them such an execution throws `missingContext`.
    ///   - longDataParameters: the parameters that received COM_STMT_SEND_LONG_DATA since the last execution or
    ///     reset: their values are not in the execution, and become `.longData`.
    ///   - capabilities: the effective capabilities; with CLIENT_QUERY_ATTRIBUTES each type is followed by a name,
    ///     and flag 0x08 announces a count that includes the attributes.
    public static func decodeExecute(
        _ payload: ByteBuffer, parameterCount: Int, boundTypes: [MySQLParameterType]? = nil,
        longDataParameters: Set<Int> = [], capabilities: MySQLCapabilities = []
    ) throws(MySQLProtocolError) -> MySQLStatementExecute {
        var reader = MySQLPayloadReader(payload, context: "COM_STMT_EXECUTE")
        let code = try reader.uint8("command byte")
        guard code == 0x17 else {
            throw reader.error("command byte \(MySQLPacketName.hex(code)) is not 0x17")
        }
        guard parameterCount >= 0 else { throw reader.error("parameter count \(parameterCount) is negative") }
        var execute = MySQLStatementExecute(
            statementID: try reader.uint32("statement id"), flags: try reader.uint8("flags"),
            iterations: try reader.uint32("iteration count"))
        let withAttributes = capabilities.contains(.queryAttributes)
        var count = parameterCount
        if withAttributes, execute.flags & MySQLStatementExecute.parameterCountAvailable != 0 {
            // Each value needs at least its type (2 bytes) and name length (1).
            count = try reader.lengthEncodedCount("parameter", minimumElementSize: 3)
            guard count >= parameterCount else {
                throw reader.error("parameter count \(count) is below the statement's \(parameterCount) parameters")
            }
        }
        guard count > 0 else { return execute }
        // At least a bit and the flag byte per 8 parameters: refuse a count the payload cannot hold before allocating.
        guard (count + 7) / 8 < reader.remaining else {
            throw reader.error(
                "\(count) parameters need a NULL bitmap of \((count + 7) / 8) bytes and a flag byte, "
                    + "but \(reader.remaining) bytes remain")
        }
        let nullBitmap = try reader.bytes((count + 7) / 8, "NULL bitmap")
        let bound = try reader.uint8("new params bound flag")
        var names: [String] = []
        if bound == 1 {
            let typeSize = withAttributes ? 3 : 2
            guard count * typeSize <= reader.remaining else {
                throw reader.error(
                    "\(count) parameter types need at least \(count * typeSize) bytes but \(reader.remaining) remain")
            }
            execute.typesWereSent = true
            execute.parameterTypes.reserveCapacity(count)
            for index in 0..<count {
                execute.parameterTypes.append(
                    try MySQLStatementExecute.parameterType(&reader, field: "type of parameter \(index + 1)"))
                if withAttributes {
                    names.append(try reader.lengthEncodedString("name of parameter \(index + 1)"))
                }
            }
        } else {
            guard let boundTypes else {
                throw MySQLProtocolError(
                    kind: .missingContext,
                    reason: "COM_STMT_EXECUTE of statement \(execute.statementID) sends no parameter types and none "
                        + "are known from an earlier execution")
            }
            guard boundTypes.count == count else {
                throw MySQLProtocolError(
                    kind: .missingContext,
                    reason: "COM_STMT_EXECUTE of statement \(execute.statementID) has \(count) parameters but "
                        + "\(boundTypes.count) known types")
            }
            execute.parameterTypes = boundTypes
        }
        var values: [MySQLBinaryValue] = []
        values.reserveCapacity(count)
        for (index, type) in execute.parameterTypes.enumerated() {
            if MySQLStatementExecute.isNull(index, in: nullBitmap) {
                values.append(.null)
            } else if index < parameterCount, longDataParameters.contains(index) {
                values.append(.longData)
            } else {
                values.append(try MySQLBinaryValue.read(type, from: &reader, field: "parameter \(index + 1)"))
            }
        }
        execute.parameters = Array(values.prefix(parameterCount))
        if count > parameterCount {
            execute.attributes = (parameterCount..<count).map { index in
                MySQLQueryAttribute(
                    name: index < names.count ? names[index] : "", type: execute.parameterTypes[index],
                    value: values[index])
            }
            execute.parameterTypes = Array(execute.parameterTypes.prefix(parameterCount))
        }
        return execute
    }
}
