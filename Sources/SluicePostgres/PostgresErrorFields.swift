/// The fields of an ErrorResponse or NoticeResponse: `(code:u8, value:String)*` then a zero byte (PostgreSQL docs
/// §55.8 "Error and Notice Message Fields").
///
/// All pairs are kept, in order, including codes this type has no accessor for, so a rewritten error can carry
/// them on unchanged.
public struct PostgresErrorFields: Equatable, Sendable {
    public struct Field: Hashable, Sendable {
        public var code: UInt8
        public var value: String

        public init(code: UInt8, value: String) {
            self.code = code
            self.value = value
        }
    }

    public var fields: [Field]

    public init(_ fields: [Field] = []) {
        self.fields = fields
    }

    /// The value of the first field with this code letter.
    public subscript(code: Unicode.Scalar) -> String? {
        guard code.isASCII else { return nil }
        let byte = UInt8(ascii: code)
        return fields.first { $0.code == byte }?.value
    }

    /// `V`, the severity never localised (since 9.6), else `S`, which may be translated: ERROR, FATAL, PANIC,
    /// WARNING, NOTICE, DEBUG, INFO or LOG.
    public var severity: String? { self["V"] ?? self["S"] }
    /// `C`: the SQLSTATE code, e.g. `42501` insufficient_privilege.
    public var sqlState: String? { self["C"] }
    /// `M`: the primary message, which the server always sends.
    public var message: String? { self["M"] }
    /// `D`: detail.
    public var detail: String? { self["D"] }
    /// `H`: hint.
    public var hint: String? { self["H"] }
    /// `P`: the 1-based character position in the query string, when the error points into it.
    public var position: Int? { self["P"].flatMap { Int($0) } }
}
