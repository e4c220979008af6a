import NIOCore

/// The few messages Sluice writes itself: refusals of SSL/GSS encryption, the error and ReadyForQuery that answer
/// a blocked statement, a Query, and AuthenticationSASL without channel binding (PROTOCOLS.md §1).
///
/// Strings go on the wire NUL-terminated, so a NUL inside one cannot be sent: it is dropped, which keeps the
/// message well-formed whatever a rule name or statement contains.
public enum PostgresMessageEncoder {
    /// The one-byte answer that refuses an SSLRequest or GSSENCRequest: the client goes on in clear (`sslmode=prefer`)
    /// or gives up (`require`). It is not a typed message: no length follows.
    public static let encryptionRefused = UInt8(ascii: "N")

    /// Writes the `N` byte that refuses an SSLRequest or GSSENCRequest.
    public static func writeEncryptionRefused(into buffer: inout ByteBuffer) {
        buffer.writeInteger(encryptionRefused)
    }

    /// An ErrorResponse with severity ERROR (`S` and the unlocalised `V`), SQLSTATE `C`, message `M` and optional
    /// detail `D` and hint `H`. `42501` insufficient_privilege suits a blocked statement, `57014` query_canceled an
    /// expired hold. Severity ERROR, not FATAL, so the session survives.
    public static func writeErrorResponse(
        sqlState: String, message: String, detail: String? = nil, hint: String? = nil, into buffer: inout ByteBuffer
    ) {
        var fields: [PostgresErrorFields.Field] = [
            .init(code: UInt8(ascii: "S"), value: "ERROR"), .init(code: UInt8(ascii: "V"), value: "ERROR"),
            .init(code: UInt8(ascii: "C"), value: sqlState), .init(code: UInt8(ascii: "M"), value: message),
        ]
        if let detail {
            fields.append(.init(code: UInt8(ascii: "D"), value: detail))
        }
        if let hint {
            fields.append(.init(code: UInt8(ascii: "H"), value: hint))
        }
        writeErrorResponse(PostgresErrorFields(fields), into: &buffer)
    }

    /// An ErrorResponse with exactly these fields, in order: for rewriting the server's own error (its `C`, `M`,
    /// `D`) on the way back. A field with code 0 would end the list early and is skipped.
    public static func writeErrorResponse(_ fields: PostgresErrorFields, into buffer: inout ByteBuffer) {
        writeMessage(type: UInt8(ascii: "E"), into: &buffer) { body in
            for field in fields.fields where field.code != 0 {
                body.writeInteger(field.code)
                writeCString(field.value, into: &body)
            }
            body.writeInteger(UInt8(0))
        }
    }

    /// ReadyForQuery `Z` with a status byte: repeat the last status the server reported.
    public static func writeReadyForQuery(_ status: PostgresTransactionStatus, into buffer: inout ByteBuffer) {
        writeMessage(type: UInt8(ascii: "Z"), into: &buffer) { body in
            body.writeInteger(status.rawValue)
        }
    }

    /// A simple-protocol Query `Q`.
    public static func writeQuery(_ sql: String, into buffer: inout ByteBuffer) {
        writeMessage(type: UInt8(ascii: "Q"), into: &buffer) { body in
            writeCString(sql, into: &body)
        }
    }

    /// An extended-protocol Parse `P`: the statement's name, its SQL and the parameter type OIDs the client gave.
    public static func writeParse(statement: String, query: String, parameterTypes: [UInt32], into buffer: inout ByteBuffer) {
        writeMessage(type: UInt8(ascii: "P"), into: &buffer) { body in
            writeCString(statement, into: &body)
            writeCString(query, into: &body)
            body.writeInteger(Int16(truncatingIfNeeded: parameterTypes.count))
            for type in parameterTypes { body.writeInteger(type) }
        }
    }

    /// AuthenticationSASL (`R`, code 10) offering these mechanisms.
    public static func writeAuthenticationSASL(mechanisms: [String], into buffer: inout ByteBuffer) {
        writeMessage(type: UInt8(ascii: "R"), into: &buffer) { body in
            body.writeInteger(Int32(10))
            // An empty name would end the list early.
            for mechanism in mechanisms where !mechanism.isEmpty {
                writeCString(mechanism, into: &body)
            }
            body.writeInteger(UInt8(0))
        }
    }

    /// Rewrites a whole AuthenticationSASL message (`raw`: type, length and body) without `SCRAM-SHA-256-PLUS`,
    /// with its length recomputed; nil when `raw` is another message or offers no `-PLUS`, so the caller forwards
    /// the original bytes. `raw` must be exactly one whole message, as a `PostgresFrame`'s `raw` is.
    ///
    /// Why: SCRAM channel binding covers the TLS certificate the client saw, which is Sluice's and not the server's,
    /// so it would fail; offering only `SCRAM-SHA-256` lets a plaintext client leg authenticate (PROTOCOLS.md §1).
    /// A server offering nothing but `-PLUS` gets an empty list, which the client refuses: correct, since that
    /// authentication cannot pass through a proxy.
    public static func removingChannelBinding(
        fromAuthenticationSASL raw: ByteBuffer
    ) throws(PostgresProtocolError) -> ByteBuffer? {
        var framer = PostgresFramer(direction: .backend)
        var input = raw
        guard let frame = try framer.next(&input) else {
            throw .malformed("\(raw.readableBytes) bytes are not a whole backend message")
        }
        guard case .message(let type, let body) = frame.kind, type == UInt8(ascii: "R") else {
            return nil
        }
        guard input.readableBytes == 0 else {
            throw .malformed("backend 'R' Authentication: \(input.readableBytes) bytes after the message")
        }
        guard case .authentication(.sasl(let mechanisms)) = try PostgresBackendMessage(type: type, body: body) else {
            return nil
        }
        let kept = mechanisms.filter { $0 != PostgresAuthenticationRequest.scramChannelBindingMechanism }
        guard kept.count != mechanisms.count else { return nil }
        var rewritten = ByteBuffer()
        writeAuthenticationSASL(mechanisms: kept, into: &rewritten)
        return rewritten
    }

    /// Type byte, a length placeholder, the body, then the length (which counts itself, not the type).
    private static func writeMessage(type: UInt8, into buffer: inout ByteBuffer, body: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(type)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(truncatingIfNeeded: buffer.writerIndex - lengthIndex), at: lengthIndex)
    }

    private static func writeCString(_ string: String, into buffer: inout ByteBuffer) {
        if string.utf8.contains(0) {
            buffer.writeBytes(string.utf8.filter { $0 != 0 })
        } else {
            buffer.writeString(string)
        }
        buffer.writeInteger(UInt8(0))
    }
}
