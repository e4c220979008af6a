/// Which side of a PostgreSQL connection a byte stream comes from.
///
/// Type letters are reused with different meanings per direction (PROTOCOLS.md §1: frontend `D` Describe /
/// backend `D` DataRow, `E` Execute / ErrorResponse, `C`, `H`, `S`), so every lookup takes the direction.
public enum PostgresDirection: Sendable, Hashable, CustomStringConvertible {
    /// Client to server ("frontend" in the protocol chapter).
    case frontend
    /// Server to client ("backend").
    case backend

    public var description: String {
        switch self {
        case .frontend: "frontend"
        case .backend: "backend"
        }
    }

    /// The protocol chapter's name for a type letter in this direction (PostgreSQL docs §55.7 "Message Formats"),
    /// or nil when the letter does not exist there.
    public func messageName(_ type: UInt8) -> String? {
        switch self {
        case .frontend: Self.frontendNames[type]
        case .backend: Self.backendNames[type]
        }
    }

    /// Messages that may exceed `maxInspectedMessageBytes` and are then streamed instead of buffered: row and COPY
    /// data, a Bind carrying large parameter values, and a fast-path function result. Everything else the proxy
    /// reads whole, so it must fit the cap. The server itself accepts any of these up to 1 GiB.
    func isStreamable(_ type: UInt8) -> Bool {
        switch self {
        case .frontend: type == UInt8(ascii: "d") || type == UInt8(ascii: "B")
        case .backend: type == UInt8(ascii: "d") || type == UInt8(ascii: "D") || type == UInt8(ascii: "V")
        }
    }

    /// "frontend 'Q' Query", for error messages.
    func describe(_ type: UInt8) -> String {
        let name = messageName(type).map { " \($0)" } ?? ""
        return "\(self) '\(Self.printable(type))'\(name)"
    }

    /// The letter itself when printable, otherwise its hex value, so a reason never contains control bytes.
    static func printable(_ type: UInt8) -> String {
        (0x21...0x7E).contains(type) ? String(UnicodeScalar(type)) : hex(type)
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return "0x" + (digits.count == 1 ? "0" + digits : digits)
    }

    private static let frontendNames: [UInt8: String] = names([
        ("B", "Bind"), ("C", "Close"), ("c", "CopyDone"), ("d", "CopyData"), ("D", "Describe"), ("E", "Execute"),
        ("f", "CopyFail"), ("F", "FunctionCall"), ("H", "Flush"), ("p", "PasswordMessage"), ("P", "Parse"),
        ("Q", "Query"), ("S", "Sync"), ("X", "Terminate"),
    ])

    private static let backendNames: [UInt8: String] = names([
        ("R", "Authentication"), ("K", "BackendKeyData"), ("2", "BindComplete"), ("3", "CloseComplete"),
        ("C", "CommandComplete"), ("d", "CopyData"), ("c", "CopyDone"), ("G", "CopyInResponse"),
        ("H", "CopyOutResponse"), ("W", "CopyBothResponse"), ("D", "DataRow"), ("I", "EmptyQueryResponse"),
        ("E", "ErrorResponse"), ("V", "FunctionCallResponse"), ("v", "NegotiateProtocolVersion"), ("n", "NoData"),
        ("N", "NoticeResponse"), ("A", "NotificationResponse"), ("t", "ParameterDescription"),
        ("S", "ParameterStatus"), ("1", "ParseComplete"), ("s", "PortalSuspended"), ("Z", "ReadyForQuery"),
        ("T", "RowDescription"),
    ])

    private static func names(_ pairs: [(Unicode.Scalar, String)]) -> [UInt8: String] {
        var table: [UInt8: String] = [:]
        for (letter, name) in pairs {
            table[UInt8(ascii: letter)] = name
        }
        return table
    }
}
