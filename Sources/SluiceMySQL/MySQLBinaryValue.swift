import NIOCore

/// A column or parameter type byte (`enum_field_types`; MariaDB "Field types").
public struct MySQLColumnType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let decimal = MySQLColumnType(rawValue: 0x00)
    public static let tiny = MySQLColumnType(rawValue: 0x01)
    public static let short = MySQLColumnType(rawValue: 0x02)
    public static let long = MySQLColumnType(rawValue: 0x03)
    public static let float = MySQLColumnType(rawValue: 0x04)
    public static let double = MySQLColumnType(rawValue: 0x05)
    public static let null = MySQLColumnType(rawValue: 0x06)
    public static let timestamp = MySQLColumnType(rawValue: 0x07)
    public static let longLong = MySQLColumnType(rawValue: 0x08)
    public static let int24 = MySQLColumnType(rawValue: 0x09)
    public static let date = MySQLColumnType(rawValue: 0x0A)
    public static let time = MySQLColumnType(rawValue: 0x0B)
    public static let dateTime = MySQLColumnType(rawValue: 0x0C)
    public static let year = MySQLColumnType(rawValue: 0x0D)
    public static let newDate = MySQLColumnType(rawValue: 0x0E)
    public static let varchar = MySQLColumnType(rawValue: 0x0F)
    public static let bit = MySQLColumnType(rawValue: 0x10)
    public static let timestamp2 = MySQLColumnType(rawValue: 0x11)
    public static let dateTime2 = MySQLColumnType(rawValue: 0x12)
    public static let time2 = MySQLColumnType(rawValue: 0x13)
    public static let json = MySQLColumnType(rawValue: 0xF5)
    public static let newDecimal = MySQLColumnType(rawValue: 0xF6)
    public static let enumeration = MySQLColumnType(rawValue: 0xF7)
    public static let set = MySQLColumnType(rawValue: 0xF8)
    public static let tinyBlob = MySQLColumnType(rawValue: 0xF9)
    public static let mediumBlob = MySQLColumnType(rawValue: 0xFA)
    public static let longBlob = MySQLColumnType(rawValue: 0xFB)
    public static let blob = MySQLColumnType(rawValue: 0xFC)
    public static let varString = MySQLColumnType(rawValue: 0xFD)
    public static let string = MySQLColumnType(rawValue: 0xFE)
    public static let geometry = MySQLColumnType(rawValue: 0xFF)

    public var description: String {
        switch rawValue {
        case 0x00: "DECIMAL"
        case 0x01: "TINY"
        case 0x02: "SHORT"
        case 0x03: "LONG"
        case 0x04: "FLOAT"
        case 0x05: "DOUBLE"
        case 0x06: "NULL"
        case 0x07: "TIMESTAMP"
        case 0x08: "LONGLONG"
        case 0x09: "INT24"
        case 0x0A: "DATE"
        case 0x0B: "TIME"
        case 0x0C: "DATETIME"
        case 0x0D: "YEAR"
        case 0x0E: "NEWDATE"
        case 0x0F: "VARCHAR"
        case 0x10: "BIT"
        case 0x11: "TIMESTAMP2"
        case 0x12: "DATETIME2"
        case 0x13: "TIME2"
        case 0xF5: "JSON"
        case 0xF6: "NEWDECIMAL"
        case 0xF7: "ENUM"
        case 0xF8: "SET"
        case 0xF9: "TINY_BLOB"
        case 0xFA: "MEDIUM_BLOB"
        case 0xFB: "LONG_BLOB"
        case 0xFC: "BLOB"
        case 0xFD: "VAR_STRING"
        case 0xFE: "STRING"
        case 0xFF: "GEOMETRY"
        default: MySQLPacketName.hex(rawValue)
        }
    }
}

/// A parameter's type as COM_STMT_EXECUTE sends it with new-params-bound: the type byte and a flag byte whose 0x80
/// bit means unsigned.
public struct MySQLParameterType: Hashable, Sendable, CustomStringConvertible {
    public var type: MySQLColumnType
    public var isUnsigned: Bool

    public init(type: MySQLColumnType, isUnsigned: Bool = false) {
        self.type = type
        self.isUnsigned = isUnsigned
    }

    public var description: String { isUnsigned ? "\(type) UNSIGNED" : "\(type)" }
}

/// A `DATE`, `DATETIME` or `TIMESTAMP` in the binary protocol: a length byte (0, 4, 7 or 11), then year u16, month,
/// day, hour, minute, second, microseconds u32 as far as the length goes.
public struct MySQLDateTime: Hashable, Sendable {
    public var year: UInt16
    public var month: UInt8
    public var day: UInt8
    public var hour: UInt8
    public var minute: UInt8
    public var second: UInt8
    public var microsecond: UInt32

    public init(
        year: UInt16, month: UInt8, day: UInt8, hour: UInt8 = 0, minute: UInt8 = 0, second: UInt8 = 0,
        microsecond: UInt32 = 0
    ) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.microsecond = microsecond
    }
}

/// A `TIME` in the binary protocol: a length byte (0, 8 or 12), then sign, days u32, hour, minute, second,
/// microseconds u32.
public struct MySQLTime: Hashable, Sendable {
    public var isNegative: Bool
    public var days: UInt32
    public var hour: UInt8
    public var minute: UInt8
    public var second: UInt8
    public var microsecond: UInt32

    public init(
        isNegative: Bool = false, days: UInt32 = 0, hour: UInt8 = 0, minute: UInt8 = 0, second: UInt8 = 0,
        microsecond: UInt32 = 0
    ) {
        self.isNegative = isNegative
        self.days = days
        self.hour = hour
        self.minute = minute
        self.second = second
        self.microsecond = microsecond
    }
}

/// One value in the binary protocol, as a prepared statement's parameter or a query attribute carries it.
public enum MySQLBinaryValue: Equatable, Sendable {
    /// Its bit in the NULL bitmap was set, or its type is MYSQL_TYPE_NULL.
    case null
    /// Sent before the execution with COM_STMT_SEND_LONG_DATA, so absent from it.
    case longData
    case integer(Int64)
    case unsignedInteger(UInt64)
    case float(Float)
    case double(Double)
    /// Strings, BLOBs, DECIMAL, JSON, ENUM, SET, BIT, GEOMETRY: the length-encoded bytes as sent.
    case bytes(ByteBuffer)
    case date(MySQLDateTime)
    case dateTime(MySQLDateTime)
    case time(MySQLTime)

    /// The value as text for the command log: integers and floating-point numbers in decimal, strings as UTF-8 (bytes
    /// that are not UTF-8 as `0x` and hex digits, the way MySQL writes a binary literal), dates `YYYY-MM-DD`, date
    /// and time `YYYY-MM-DD hh:mm:ss[.ffffff]`, times `[-]hhh:mm:ss[.ffffff]`; nil for NULL.
    public var text: String? {
        switch self {
        case .null:
            return nil
        case .longData:
            return "<long data>"
        case .integer(let value):
            return String(value)
        case .unsignedInteger(let value):
            return String(value)
        case .float(let value):
            return "\(value)"
        case .double(let value):
            return "\(value)"
        case .bytes(let bytes):
            let view = bytes.readableBytesView
            if let text = MySQLPayloadReader.strictString(view) {
                return text
            }
            return "0x" + view.map { Self.twoDigits($0, radix: 16) }.joined()
        case .date(let date):
            return Self.dateText(date)
        case .dateTime(let date):
            return "\(Self.dateText(date)) \(Self.clockText(date.hour, date.minute, date.second, date.microsecond))"
        case .time(let time):
            let hours = UInt64(time.days) * 24 + UInt64(time.hour)
            let hourText = hours < 10 ? "0\(hours)" : "\(hours)"
            let clock = Self.clockText(0, time.minute, time.second, time.microsecond).dropFirst(2)
            return (time.isNegative ? "-" : "") + hourText + clock
        }
    }

    private static func dateText(_ date: MySQLDateTime) -> String {
        let year = String(date.year)
        return String(repeating: "0", count: max(0, 4 - year.count)) + year + "-" + twoDigits(date.month) + "-"
            + twoDigits(date.day)
    }

    private static func clockText(_ hour: UInt8, _ minute: UInt8, _ second: UInt8, _ microsecond: UInt32) -> String {
        var text = twoDigits(hour) + ":" + twoDigits(minute) + ":" + twoDigits(second)
        if microsecond > 0 {
            let digits = String(microsecond)
            text += "." + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
        }
        return text
    }

    private static func twoDigits(_ value: UInt8, radix: Int = 10) -> String {
        let digits = String(value, radix: radix)
        return digits.count == 1 ? "0" + digits : digits
    }

    /// Reads one non-NULL value of `type` (MariaDB "Binary protocol"; MySQL `ProtocolBinary::*`).
    static func read(
        _ type: MySQLParameterType, from reader: inout MySQLPayloadReader, field: String
    ) throws(MySQLProtocolError) -> MySQLBinaryValue {
        switch type.type {
        case .null:
            return .null
        case .tiny:
            let value = try reader.uint8(field)
            return type.isUnsigned ? .unsignedInteger(UInt64(value)) : .integer(Int64(Int8(bitPattern: value)))
        case .short, .year:
            let value = try reader.uint16(field)
            return type.isUnsigned ? .unsignedInteger(UInt64(value)) : .integer(Int64(Int16(bitPattern: value)))
        case .long, .int24:
            let value = try reader.uint32(field)
            return type.isUnsigned ? .unsignedInteger(UInt64(value)) : .integer(Int64(Int32(bitPattern: value)))
        case .longLong:
            let value = try reader.uint64(field)
            return type.isUnsigned ? .unsignedInteger(value) : .integer(Int64(bitPattern: value))
        case .float:
            return .float(Float(bitPattern: try reader.uint32(field)))
        case .double:
            return .double(Double(bitPattern: try reader.uint64(field)))
        case .date, .dateTime, .timestamp, .newDate:
            let length = try reader.uint8("\(field) length")
            guard [0, 4, 7, 11].contains(length) else {
                throw reader.error("\(field): a \(type.type) of \(length) bytes is not 0, 4, 7 or 11")
            }
            var date = MySQLDateTime(year: 0, month: 0, day: 0)
            if length >= 4 {
                date.year = try reader.uint16(field)
                date.month = try reader.uint8(field)
                date.day = try reader.uint8(field)
            }
            if length >= 7 {
                date.hour = try reader.uint8(field)
                date.minute = try reader.uint8(field)
                date.second = try reader.uint8(field)
            }
            if length == 11 {
                date.microsecond = try reader.uint32(field)
            }
            return type.type == .date || type.type == .newDate ? .date(date) : .dateTime(date)
        case .time:
            let length = try reader.uint8("\(field) length")
            guard [0, 8, 12].contains(length) else {
                throw reader.error("\(field): a TIME of \(length) bytes is not 0, 8 or 12")
            }
            var time = MySQLTime()
            if length >= 8 {
                time.isNegative = try reader.uint8(field) != 0
                time.days = try reader.uint32(field)
                time.hour = try reader.uint8(field)
                time.minute = try reader.uint8(field)
                time.second = try reader.uint8(field)
            }
            if length == 12 {
                time.microsecond = try reader.uint32(field)
            }
            return .time(time)
        case .decimal, .newDecimal, .varchar, .bit, .json, .enumeration, .set, .tinyBlob, .mediumBlob, .longBlob,
            .blob, .varString, .string, .geometry:
            return .bytes(try reader.lengthEncodedBytes(field))
        default:
            // TIMESTAMP2, DATETIME2, TIME2 exist only in the binary log; anything else has no known length.
            throw MySQLProtocolError(
                kind: .missingContext,
                reason: "\(reader.context): \(field) has type \(type.type), whose binary encoding is unknown")
        }
    }
}
