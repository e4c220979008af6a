import Foundation
import NIOCore

/// Bind parameters as a command shows them: text-format values as text; binary ones decoded by their type where
/// it is a common one (integers, floats, bool, text, uuid), else as `\x` hex (PostgreSQL's bytea notation); NULL as
/// `NULL`. Long values are cut, saying how long they were: a command row is for reading, and the whole message is
/// in the flow's recorded bytes.
enum PostgresParameterText {
    /// The longest value shown whole, in bytes.
    static let maxShownBytes = 256

    /// - Parameters:
    ///   - formats: Bind's format codes: none means all text, one applies to all, else one per value.
    ///   - types: the parameter type OIDs the statement's Parse gave (0 or missing: the server inferred it).
    static func describe(_ parameters: [ByteBuffer?], formats: [Int16], types: [UInt32]) -> [String] {
        var shown = parameters.prefix(maxShownParameters).enumerated().map { index, value in
            describe(value, format: formats.isEmpty ? 0 : formats.count == 1 ? formats[0] : index < formats.count ? formats[index] : 0,
                     type: index < types.count ? types[index] : 0)
        }
        if parameters.count > maxShownParameters { shown.append("… \(parameters.count - maxShownParameters) more") }
        return shown
    }

    /// Parameters shown of one execution at most (a Bind may carry 65,535).
    static let maxShownParameters = 100

    private static func describe(_ value: ByteBuffer?, format: Int16, type: UInt32) -> String {
        guard let value else { return "NULL" }
        let bytes = Array(value.readableBytesView)
        return format == 1 ? binary(bytes, type: type) : text(bytes)
    }

    private static func text(_ bytes: [UInt8]) -> String {
        let shown = bytes.prefix(maxShownBytes)
        let text = String(decoding: shown, as: UTF8.self)
        return shown.count < bytes.count ? text + "… (\(bytes.count) bytes)" : text
    }

    /// A binary value of type `oid` (pg_type.dat) as text.
    private static func binary(_ bytes: [UInt8], type oid: UInt32) -> String {
        /// The big-endian two's complement integer the bytes hold (1 to 8 of them).
        func integer() -> Int64 {
            var value: Int64 = 0
            for byte in bytes { value = (value << 8) | Int64(byte) }
            let unused = Int64(64 - 8 * bytes.count)
            return (value << unused) >> unused
        }
        switch (oid, bytes.count) {
        case (16, 1):  // bool
            return bytes[0] == 0 ? "false" : "true"
        case (21, 2), (23, 4), (20, 8), (26, 4):  // int2, int4, int8, oid
            return String(integer())
        case (700, 4):  // float4
            return String(Float(bitPattern: UInt32(truncatingIfNeeded: integer())))
        case (701, 8):  // float8
            return String(Double(bitPattern: UInt64(bitPattern: integer())))
        case (25, _), (1043, _), (19, _), (1042, _), (114, _):  // text, varchar, name, bpchar, json: UTF-8 as in text form
            return text(bytes)
        case (2950, 16):  // uuid
            let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            var parts: [Substring] = []
            var rest = Substring(hex)
            for length in [8, 4, 4, 4, 12] {
                parts.append(rest.prefix(length))
                rest = rest.dropFirst(length)
            }
            return parts.joined(separator: "-")
        default:
            let shown = bytes.prefix(maxShownBytes / 2)
            let hex = "\\x" + shown.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            return shown.count < bytes.count ? hex + "… (\(bytes.count) bytes)" : hex
        }
    }
}
