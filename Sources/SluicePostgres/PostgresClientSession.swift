import Crypto
import Foundation
import NIOCore
import SluiceCore

/// A PostgreSQL client as a sans-I/O state machine, for replaying recorded statements (`DatabaseClientSession`).
///
/// It logs in with protocol 3.0 (trust, cleartext, MD5 or SCRAM-SHA-256; never channel binding, which cannot work
/// through a proxy that terminates TLS), then runs one statement at a time: the simple protocol when the statement
/// was recorded without parameters, else the extended protocol with every parameter in text form, as the recorder
/// shows them. The server's bytes are cut with `PostgresFramer`, so its limits (length below 4 or over 1 GiB,
/// unknown types) apply here too; large DataRows and CopyData are counted as they stream, never buffered whole.
public struct PostgresClientSession: DatabaseClientSession, Sendable {
    /// What the session waits for.
    private enum State: Sendable {
        /// Logging in: the server's next Authentication request.
        case authenticating(Authentication)
        /// AuthenticationOk came: ParameterStatus and BackendKeyData until ReadyForQuery.
        case authenticated
        /// Ready, no statement running.
        case idle
        /// A statement runs; its answers are collected until ReadyForQuery.
        case running(Answer)
        /// An error was thrown: the session cannot go on, and says so again if asked.
        case failed(DatabaseClientError)
    }

    /// How far the login has gone.
    private enum Authentication: Sendable {
        /// Nothing sent yet but the StartupMessage.
        case awaitingRequest
        /// A cleartext or MD5 password went: AuthenticationOk or an ErrorResponse follows.
        case passwordSent
        /// SCRAM's client-first-message went: the server-first-message follows.
        case scramFirstSent(clientFirstBare: String)
        /// SCRAM's client-final-message went: the server must prove it knows the verifier.
        case scramFinalSent(serverSignature: [UInt8])
        /// The server's SCRAM signature checked out: AuthenticationOk follows.
        case scramVerified
    }

    /// What the server has answered so far to the running statement.
    private struct Answer: Sendable {
        /// Sent with the extended protocol, so after an error the server skips to our Sync.
        var extended: Bool
        var tags: [String] = []
        var rows = 0
        var emptyQuery = false
        /// The first error: a simple query stops at it, an extended one skips to Sync.
        var error: String?
        /// CopyData bytes of a COPY TO STDOUT, read and dropped.
        var copyBytes = 0

        var outcome: ReplayOutcome {
            if let error {
                return ReplayOutcome(summary: "error", error: error)
            }
            if !tags.isEmpty {
                return ReplayOutcome(summary: tags.joined(separator: ", "))
            }
            if emptyQuery {
                return ReplayOutcome(summary: "empty query")
            }
            return ReplayOutcome(summary: rows == 1 ? "1 row" : "\(rows) rows")
        }
    }

    /// The reason sent in CopyFail: the server puts it in the error it answers with.
    static let copyFailReason = "sluice replay does not send COPY data"
    /// The most parameters a Bind can carry: its count is an unsigned 16-bit integer.
    static let maxParameters = 65_535

    private let login: DatabaseLogin
    private let applicationName: String
    /// SCRAM's client nonce: random per session; fixed only by tests, to check against RFC 7677's example.
    private let clientNonce: String
    private var framer = PostgresFramer(direction: .backend)
    private var input = ByteBuffer()
    private var state = State.authenticating(.awaitingRequest)

    public init(login: DatabaseLogin, applicationName: String = "sluice-replay") {
        self.init(login: login, applicationName: applicationName, clientNonce: PostgresSCRAM.randomNonce())
    }

    init(login: DatabaseLogin, applicationName: String, clientNonce: String) {
        self.login = login
        self.applicationName = applicationName
        self.clientNonce = clientNonce
    }

    // MARK: - DatabaseClientSession

    /// StartupMessage 3.0 with no `_pq_.` options, so the server has nothing to negotiate. `client_encoding=UTF8`
    /// because the recorded statements and parameters are Swift strings.
    public mutating func start() -> ByteBuffer? {
        var parameters = [("user", login.user)]
        if let database = login.database {
            parameters.append(("database", database))
        }
        parameters += [("application_name", applicationName), ("client_encoding", "UTF8")]
        var buffer = ByteBuffer()
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(PostgresStartupCode.startupMessage(.v3_0))
        for (name, value) in parameters {
            buffer.writeCString(name)
            buffer.writeCString(value)
        }
        buffer.writeInteger(UInt8(0))
        buffer.setInteger(Int32(truncatingIfNeeded: buffer.writerIndex - lengthIndex), at: lengthIndex)
        return buffer
    }

    public mutating func receive(_ bytes: ByteBuffer) throws(DatabaseClientError) -> [DatabaseClientStep] {
        if case .failed(let error) = state {
            throw error
        }
        var bytes = bytes
        input.writeBuffer(&bytes)
        var steps: [DatabaseClientStep] = []
        do throws(DatabaseClientError) {
            while let frame = try nextFrame() {
                try handle(frame, steps: &steps)
            }
        } catch {
            state = .failed(error)
            throw error
        }
        // Keep the buffer from growing with what was already read.
        if input.readableBytes == 0 {
            input.clear()
        } else if input.readerIndex > 64 * 1024 {
            input.discardReadBytes()
        }
        return steps
    }

    public mutating func run(_ statement: ReplayStatement) throws(DatabaseClientError) -> ByteBuffer {
        guard case .idle = state else {
            throw DatabaseClientError("a statement can run only once the session is ready and the last one finished")
        }
        var buffer = ByteBuffer()
        if let parameters = statement.parameters {
            try Self.checkReplayable(parameters)
            try Self.checkMessageSize(statement.text.utf8.count + 4, what: "the statement")
            let valueBytes = parameters.reduce(0) { $0 + 4 + ($1?.utf8.count ?? 0) }
            try Self.checkMessageSize(valueBytes + 8, what: "the parameters")
            // The unnamed statement and portal: each replaced by the next Parse and Bind, nothing to close.
            PostgresMessageEncoder.writeParse(statement: "", query: statement.text, parameterTypes: [], into: &buffer)
            buffer.writeMessage("B") { body in
                body.writeCString("")  // portal
                body.writeCString("")  // statement
                body.writeInteger(Int16(0))  // no parameter format codes: all text
                body.writeInteger(UInt16(truncatingIfNeeded: parameters.count))
                for value in parameters {
                    if let value {
                        body.writeInteger(Int32(truncatingIfNeeded: value.utf8.count))
                        body.writeString(value)
                    } else {
                        body.writeInteger(Int32(-1))  // NULL
                    }
                }
                body.writeInteger(Int16(0))  // no result format codes: all text
            }
            buffer.writeMessage("D") { body in
                body.writeInteger(UInt8(ascii: "P"))
                body.writeCString("")
            }
            buffer.writeMessage("E") { body in
                body.writeCString("")
                body.writeInteger(Int32(0))  // no row limit
            }
            buffer.writeMessage("S") { _ in }
        } else {
            try Self.checkMessageSize(statement.text.utf8.count + 1, what: "the statement")
            PostgresMessageEncoder.writeQuery(statement.text, into: &buffer)
        }
        state = .running(Answer(extended: statement.parameters != nil))
        return buffer
    }

    public func quit() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeMessage("X") { _ in }
        return buffer
    }

    // MARK: - Statements

    /// Refuses parameters the recorder cut for display (`PostgresParameterText`): sending the shortened text would
    /// run a different statement from the one recorded.
    static func checkReplayable(_ parameters: [String?]) throws(DatabaseClientError) {
        guard parameters.count <= maxParameters else {
            throw DatabaseClientError(
                "the statement has \(parameters.count) parameters; PostgreSQL takes at most \(maxParameters)")
        }
        for (index, value) in parameters.enumerated() {
            guard let value else { continue }
            if isCutList(value) {
                throw DatabaseClientError(
                    "parameters from \(index + 1) on were recorded cut short (\(value)); they cannot be replayed")
            }
            if isCutValue(value) {
                throw DatabaseClientError("parameter \(index + 1) was recorded cut short; it cannot be replayed")
            }
        }
    }

    /// `… 12 more`: the recorder kept only the first parameters.
    private static func isCutList(_ value: String) -> Bool {
        guard value.hasPrefix("… "), value.hasSuffix(" more") else { return false }
        let count = value.dropFirst(2).dropLast(5)
        return !count.isEmpty && count.allSatisfy(\.isASCIIDigit)
    }

    /// `abc… (300 bytes)` or `\x00ff… (300 bytes)`: the recorder kept only the value's start.
    private static func isCutValue(_ value: String) -> Bool {
        guard value.hasSuffix(" bytes)") else { return false }
        let head = value.dropLast(7)
        let digits = head.reversed().prefix(while: \.isASCIIDigit).count
        return digits > 0 && head.dropLast(digits).hasSuffix("… (")
    }

    /// The server refuses a message body over 1 GiB; better to say so than to send it.
    private static func checkMessageSize(_ bodyBytes: Int, what: String) throws(DatabaseClientError) {
        guard bodyBytes <= PostgresFramer.maxMessageBodyBytes else {
            throw DatabaseClientError("\(what) take \(bodyBytes) bytes, over PostgreSQL's 1 GiB message limit")
        }
    }

    // MARK: - Server messages

    private mutating func nextFrame() throws(DatabaseClientError) -> PostgresFrame? {
        do {
            return try framer.next(&input)
        } catch {
            throw DatabaseClientError("the server broke the protocol: \(error.reason)")
        }
    }

    private mutating func handle(
        _ frame: PostgresFrame, steps: inout [DatabaseClientStep]
    ) throws(DatabaseClientError) {
        switch frame.kind {
        case .message(let type, let body):
            try handleMessage(type: type, body: body, steps: &steps)
        case .streamStart(let type, let length, _):
            // Only DataRow, CopyData and FunctionCallResponse are streamed; the rest of their bytes are skipped.
            guard case .running(var answer) = state, type == UInt8(ascii: "D") || type == UInt8(ascii: "d") else {
                throw unexpected(type)
            }
            if type == UInt8(ascii: "D") {
                answer.rows += 1
            } else {
                answer.copyBytes += length - 4
            }
            state = .running(answer)
        case .streamPart:
            break
        case .startupPacket:
            // A backend framer never yields one.
            throw DatabaseClientError("the server broke the protocol: an untyped packet")
        }
    }

    private mutating func handleMessage(
        type: UInt8, body: ByteBuffer, steps: inout [DatabaseClientStep]
    ) throws(DatabaseClientError) {
        switch (state, type) {
        // Asynchronous messages, which may come at any time.
        case (_, UInt8(ascii: "N")), (_, UInt8(ascii: "S")), (_, UInt8(ascii: "A")):
            return
        case (.authenticating, UInt8(ascii: "v")), (.authenticated, UInt8(ascii: "v")):
            return  // NegotiateProtocolVersion: we ask 3.0 with no options, so there is nothing to adjust.
        case (.authenticating(let step), UInt8(ascii: "R")):
            if let answer = try authenticate(body: body, step: step) {
                steps.append(.send(answer))
            }
        case (.authenticating, UInt8(ascii: "E")), (.authenticated, UInt8(ascii: "E")), (.idle, UInt8(ascii: "E")):
            throw DatabaseClientError(try Self.errorText(body))
        case (.authenticated, UInt8(ascii: "K")):
            return
        case (.authenticated, UInt8(ascii: "Z")):
            state = .idle
            steps.append(.ready)
        case (.running(var answer), _):
            if let step = try collect(type: type, body: body, into: &answer) {
                steps.append(step)
            }
            // ReadyForQuery left the state idle; everything else updates the answer.
            if case .running = state {
                state = .running(answer)
            }
        default:
            throw unexpected(type)
        }
    }

    /// One message of a running statement's answer; returns the step it calls for.
    private mutating func collect(
        type: UInt8, body: ByteBuffer, into answer: inout Answer
    ) throws(DatabaseClientError) -> DatabaseClientStep? {
        switch type {
        case UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "n"), UInt8(ascii: "t"),
            UInt8(ascii: "T"), UInt8(ascii: "s"), UInt8(ascii: "c"):
            return nil  // Parse/Bind/CloseComplete, NoData, descriptions, PortalSuspended, CopyDone.
        case UInt8(ascii: "D"):
            answer.rows += 1
        case UInt8(ascii: "d"):
            answer.copyBytes += body.readableBytes
        case UInt8(ascii: "H"):
            return nil  // CopyOutResponse: CopyData follows, then CopyDone and the tag.
        case UInt8(ascii: "C"):
            guard case .commandComplete(let tag) = try Self.decode(type: type, body: body) else { return nil }
            answer.tags.append(tag)
        case UInt8(ascii: "I"):
            answer.emptyQuery = true
        case UInt8(ascii: "E"):
            guard case .errorResponse(let fields) = try Self.decode(type: type, body: body) else { return nil }
            // FATAL and PANIC end the session: no ReadyForQuery will come.
            if fields.severity == "FATAL" || fields.severity == "PANIC" {
                throw DatabaseClientError(Self.errorText(fields))
            }
            if answer.error == nil {
                answer.error = Self.errorText(fields)
            }
        case UInt8(ascii: "G"):
            // COPY FROM STDIN: the recording has no data to send, so refuse it; the server answers with an error.
            // The server ignores a Sync that arrives during COPY, and after the error it skips to the next Sync, so
            // an extended statement needs a second one.
            var buffer = ByteBuffer()
            buffer.writeMessage("f") { $0.writeCString(Self.copyFailReason) }
            if answer.extended {
                buffer.writeMessage("S") { _ in }
            }
            return .send(buffer)
        case UInt8(ascii: "W"):
            throw DatabaseClientError("the server started COPY BOTH (replication), which a replay cannot take part in")
        case UInt8(ascii: "Z"):
            state = .idle
            return .finished(answer.outcome)
        default:
            throw unexpected(type)
        }
        return nil
    }

    private func unexpected(_ type: UInt8) -> DatabaseClientError {
        let phase =
            switch state {
            case .authenticating: "while logging in"
            case .authenticated: "before ReadyForQuery, after logging in"
            case .idle: "while no statement runs"
            case .running: "while a statement runs"
            case .failed: "after an error"
            }
        return DatabaseClientError("the server sent an unexpected \(PostgresDirection.backend.describe(type)) \(phase)")
    }

    private static func decode(type: UInt8, body: ByteBuffer) throws(DatabaseClientError) -> PostgresBackendMessage {
        do {
            return try PostgresBackendMessage(type: type, body: body)
        } catch {
            throw DatabaseClientError("the server broke the protocol: \(error.reason)")
        }
    }

    private static func errorText(_ body: ByteBuffer) throws(DatabaseClientError) -> String {
        guard case .errorResponse(let fields) = try decode(type: UInt8(ascii: "E"), body: body) else {
            return "the server sent an error"
        }
        return errorText(fields)
    }

    /// `28P01: password authentication failed for user "x"`, on one line.
    static func errorText(_ fields: PostgresErrorFields) -> String {
        let message = oneLine(fields.message ?? "the server sent an error without a message")
        guard let sqlState = fields.sqlState else { return message }
        return "\(oneLine(sqlState)): \(message)"
    }

    /// Server text put in a one-line reason: control characters (a multi-line message) become spaces.
    private static func oneLine(_ text: String) -> String {
        String(
            String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    // MARK: - Authentication

    /// Answers one Authentication request; nil when nothing is to be sent (AuthenticationOk, SASLFinal).
    private mutating func authenticate(
        body: ByteBuffer, step: Authentication
    ) throws(DatabaseClientError) -> ByteBuffer? {
        guard let code = body.getInteger(at: body.readerIndex, as: Int32.self) else {
            throw DatabaseClientError("the server broke the protocol: an Authentication message without its code")
        }
        var data = body
        data.moveReaderIndex(forwardBy: 4)
        switch (step, code) {
        case (.scramFirstSent(let clientFirstBare), 11):
            let serverFirst = String(decoding: data.readableBytesView, as: UTF8.self)
            let final = try PostgresSCRAM.clientFinal(
                password: try password(), clientNonce: clientNonce, clientFirstBare: clientFirstBare,
                serverFirst: serverFirst)
            state = .authenticating(.scramFinalSent(serverSignature: final.serverSignature))
            return Self.passwordMessage { $0.writeString(final.message) }
        case (.scramFinalSent(let serverSignature), 12):
            try PostgresSCRAM.verify(
                serverFinal: String(decoding: data.readableBytesView, as: UTF8.self), expected: serverSignature)
            state = .authenticating(.scramVerified)
            return nil
        case (_, 11), (_, 12):
            throw DatabaseClientError("the server sent a SASL message (code \(code)) out of turn")
        default:
            break
        }
        guard case .authentication(let request) = try Self.decode(type: UInt8(ascii: "R"), body: body) else {
            throw DatabaseClientError("the server broke the protocol: an Authentication message that is not one")
        }
        switch (step, request) {
        case (.awaitingRequest, .ok), (.passwordSent, .ok), (.scramVerified, .ok):
            state = .authenticated
            return nil
        case (.scramFirstSent, .ok), (.scramFinalSent, .ok):
            // Mutual authentication: a server that skips SCRAM's last step has not shown it knows the password.
            throw DatabaseClientError("the server ended SCRAM authentication without proving it knows the password")
        case (.awaitingRequest, .cleartextPassword):
            let password = try password()
            state = .authenticating(.passwordSent)
            return Self.passwordMessage { $0.writeCString(password) }
        case (.awaitingRequest, .md5Password(let salt)):
            let hashed = Self.md5Password(password: try password(), user: login.user, salt: salt)
            state = .authenticating(.passwordSent)
            return Self.passwordMessage { $0.writeCString(hashed) }
        case (.awaitingRequest, .sasl(let mechanisms)):
            // Never SCRAM-SHA-256-PLUS: channel binding covers a TLS certificate that a proxy in between replaces.
            guard mechanisms.contains(PostgresSCRAM.mechanism) else {
                throw DatabaseClientError(
                    "the server offers SASL \(mechanisms.map(Self.oneLine).joined(separator: ", ")), but a replay "
                        + "speaks only \(PostgresSCRAM.mechanism) (without channel binding)")
            }
            _ = try password()
            let clientFirstBare = PostgresSCRAM.clientFirstBare(nonce: clientNonce)
            let clientFirst = PostgresSCRAM.gs2Header + clientFirstBare
            state = .authenticating(.scramFirstSent(clientFirstBare: clientFirstBare))
            return Self.passwordMessage { body in
                body.writeCString(PostgresSCRAM.mechanism)
                body.writeInteger(Int32(clientFirst.utf8.count))
                body.writeString(clientFirst)
            }
        case (.awaitingRequest, .kerberosV5):
            throw DatabaseClientError("the server asks for Kerberos V5 authentication, which a replay does not support")
        case (.awaitingRequest, .gss):
            throw DatabaseClientError("the server asks for GSSAPI authentication, which a replay does not support")
        case (.awaitingRequest, .sspi):
            throw DatabaseClientError("the server asks for SSPI authentication, which a replay does not support")
        case (.awaitingRequest, .other(let code)):
            throw DatabaseClientError(
                "the server asks for an unknown authentication method (code \(code)), which a replay does not support")
        default:
            throw DatabaseClientError("the server sent Authentication code \(code) out of turn")
        }
    }

    private func password() throws(DatabaseClientError) -> String {
        guard let password = login.password else {
            throw DatabaseClientError("the server asks for a password for user \(login.user); none was given")
        }
        return password
    }

    /// `p` carries every answer to Authentication: PasswordMessage, SASLInitialResponse and SASLResponse.
    private static func passwordMessage(_ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeMessage("p", body)
        return buffer
    }

    /// `"md5" + md5hex(md5hex(password + user) + salt)` (PostgreSQL docs §55.3, AuthenticationMD5Password).
    static func md5Password(password: String, user: String, salt: [UInt8]) -> String {
        let inner = hex(Insecure.MD5.hash(data: Array(password.utf8) + Array(user.utf8)))
        return "md5" + hex(Insecure.MD5.hash(data: Array(inner.utf8) + salt))
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// SCRAM-SHA-256 as PostgreSQL speaks it (RFC 5802, RFC 7677; PostgreSQL docs §55.3.1): no channel binding, and an
/// empty user name in the client-first-message, since the server takes the user from the StartupMessage.
enum PostgresSCRAM {
    static let mechanism = "SCRAM-SHA-256"
    /// `n`: the client does not bind to the channel. Not `y` ("I could, but you can't"): a server whose leg is TLS
    /// offers -PLUS and would take `y` for a downgrade.
    static let gs2Header = "n,,"
    /// base64 of the GS2 header, sent back as the `c=` attribute.
    static let channelBinding = "biws"
    /// The session runs on an event loop that serves other connections too, so a server may not make it hash for
    /// long: 100,000 rounds take about a tenth of a second. PostgreSQL's default is 4,096 (`scram_iterations`).
    static let maxIterations = 100_000

    /// 18 random bytes in base64, as libpq does: printable and free of commas, as RFC 5802 requires.
    static func randomNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<18).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    static func clientFirstBare(nonce: String) -> String {
        "n=,r=\(nonce)"
    }

    /// The client-final-message for the server-first-message, and the signature the server must answer with.
    static func clientFinal(
        password: String, clientNonce: String, clientFirstBare: String, serverFirst: String
    ) throws(DatabaseClientError) -> (message: String, serverSignature: [UInt8]) {
        // r=nonce,s=salt,i=count[,extensions]; a leading m= is a mandatory extension nobody defines.
        let attributes = serverFirst.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 3, attributes[0].hasPrefix("r="), attributes[1].hasPrefix("s="),
            attributes[2].hasPrefix("i=")
        else {
            throw DatabaseClientError("the server's SCRAM server-first-message is not r=…,s=…,i=…")
        }
        let serverNonce = String(attributes[0].dropFirst(2))
        guard serverNonce.utf8.starts(with: clientNonce.utf8) else {
            throw DatabaseClientError("the server's SCRAM nonce does not start with the client's")
        }
        guard let salt = Data(base64Encoded: String(attributes[1].dropFirst(2))), !salt.isEmpty else {
            throw DatabaseClientError("the server's SCRAM salt is not base64")
        }
        guard let iterations = Int(attributes[2].dropFirst(2)), (1...maxIterations).contains(iterations) else {
            throw DatabaseClientError("the server's SCRAM iteration count is not a number from 1 to \(maxIterations)")
        }

        let saltedPassword = hi(password: saslPrep(password), salt: Array(salt), iterations: iterations)
        let clientKey = hmac(saltedPassword, "Client Key")
        let storedKey = Array(SHA256.hash(data: clientKey))
        let withoutProof = "c=\(channelBinding),r=\(serverNonce)"
        let authMessage = "\(clientFirstBare),\(serverFirst),\(withoutProof)"
        let clientSignature = hmac(storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverSignature = hmac(hmac(saltedPassword, "Server Key"), authMessage)
        return ("\(withoutProof),p=\(Data(proof).base64EncodedString())", serverSignature)
    }

    /// Checks the server-final-message `v=signature`: the server proves it holds the verifier, so a server that
    /// merely accepts any proof is caught.
    static func verify(serverFinal: String, expected: [UInt8]) throws(DatabaseClientError) {
        let first = serverFinal.split(separator: ",", omittingEmptySubsequences: false).first ?? ""
        if first.hasPrefix("e=") {
            throw DatabaseClientError("SCRAM authentication failed: \(first.dropFirst(2))")
        }
        guard first.hasPrefix("v="), let signature = Data(base64Encoded: String(first.dropFirst(2))) else {
            throw DatabaseClientError("the server's SCRAM server-final-message is not v=…")
        }
        guard Array(signature) == expected else {
            throw DatabaseClientError("the server's SCRAM signature is wrong: it does not know this password")
        }
    }

    /// `Hi(str, salt, i)` of RFC 5802 §2.2: PBKDF2 with HMAC-SHA-256 and one block of output.
    static func hi(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        // The keyed state is copied for each round, so the key's pads are hashed once.
        let keyed = HMAC<SHA256>(key: SymmetricKey(data: password))
        var round = keyed
        round.update(data: salt + [0, 0, 0, 1])
        var u = Array(round.finalize())
        var result = u
        for _ in 1..<max(iterations, 1) {
            round = keyed
            round.update(data: u)
            u = Array(round.finalize())
            for index in result.indices {
                result[index] ^= u[index]
            }
        }
        return result
    }

    private static func hmac(_ key: [UInt8], _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }

    /// SASLprep (RFC 4013) as the server applies it when it stores the verifier: non-ASCII spaces become spaces,
    /// "mapped to nothing" characters go, NFKC; a result holding a prohibited character falls back to the raw
    /// password, as the server does. Approximate where Swift has no table: prohibited characters are judged by
    /// general category and Unicode age (unassigned in 3.2), and the bidirectional rule is not checked. ASCII
    /// passwords, by far the most common, are exact: they come back unchanged.
    static func saslPrep(_ password: String) -> [UInt8] {
        let raw = Array(password.utf8)
        guard raw.contains(where: { $0 >= 0x80 }) else { return raw }
        var mapped = String.UnicodeScalarView()
        for scalar in password.unicodeScalars {
            switch scalar.value {
            case 0x00A0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000:
                mapped.append(" ")
            case 0x00AD, 0x034F, 0x1806, 0x180B...0x180D, 0x200C, 0x200D, 0x2060, 0xFE00...0xFE0F, 0xFEFF:
                continue
            default:
                mapped.append(scalar)
            }
        }
        let normalized = String(mapped).precomposedStringWithCompatibilityMapping
        let prohibited = normalized.unicodeScalars.contains { scalar in
            let properties = scalar.properties
            guard let age = properties.age, age.major < 3 || (age.major == 3 && age.minor <= 2) else { return true }
            switch properties.generalCategory {
            case .control, .format, .privateUse, .surrogate, .lineSeparator, .paragraphSeparator, .unassigned:
                return true
            default:
                return properties.isNoncharacterCodePoint || (0xFFF9...0xFFFD).contains(scalar.value)
                    || (0x2FF0...0x2FFB).contains(scalar.value) || scalar.value == 0x0340 || scalar.value == 0x0341
            }
        }
        return normalized.isEmpty || prohibited ? raw : Array(normalized.utf8)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension ByteBuffer {
    /// Type byte, a length placeholder, the body, then the length (which counts itself, not the type).
    fileprivate mutating func writeMessage(_ type: Unicode.Scalar, _ body: (inout ByteBuffer) -> Void) {
        writeInteger(UInt8(ascii: type))
        let lengthIndex = writerIndex
        writeInteger(Int32(0))
        body(&self)
        setInteger(Int32(truncatingIfNeeded: writerIndex - lengthIndex), at: lengthIndex)
    }

    /// A NUL-terminated string; a NUL inside it cannot be sent and is dropped, as `PostgresMessageEncoder` does.
    fileprivate mutating func writeCString(_ string: String) {
        if string.utf8.contains(0) {
            writeBytes(string.utf8.filter { $0 != 0 })
        } else {
            writeString(string)
        }
        writeInteger(UInt8(0))
    }
}
