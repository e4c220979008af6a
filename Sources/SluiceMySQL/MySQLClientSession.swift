import Crypto
import NIOCore
import SluiceCore
import _CryptoExtras

/// A MySQL/MariaDB client as a sans-I/O state machine, for replaying recorded statements (`DatabaseClientSession`):
/// it answers the server's greeting, authenticates, then runs one statement at a time and says when its whole
/// response has arrived.
///
/// Its bytes reach the server through Sluice's own `MySQLInspector`, which clears CLIENT_SSL, compression and query
/// attributes both ways; the session asks for none of them. So the connection is always clear: caching_sha2_password's
/// full authentication goes through the server's RSA public key, never a plaintext password.
///
/// Framing and responses reuse what the inspector uses: `MySQLPacketFramer` joins continued packets and streams rows
/// too large to buffer, and `MySQLResponseTracker` knows when a command's response is complete (result sets, the
/// more-results flag, COM_STMT_PREPARE_OK with its definitions).
public struct MySQLClientSession: DatabaseClientSession {
    /// What the session asks for; the handshake response sends this ∩ the server's capabilities. LONG_PASSWORD is
    /// MariaDB's CLIENT_MYSQL bit: a MariaDB server clears it in its greeting, so the intersection tells it this client
    /// sends no extended capabilities.
    static let wantedCapabilities: MySQLCapabilities = [
        .protocol41, .secureConnection, .pluginAuth, .pluginAuthLengthEncodedClientData, .clientMySQL, .longFlag,
        .transactions, .multiStatements, .multiResults, .psMultiResults, .deprecateEOF,
    ]
    /// The max packet size announced: 16 MiB, the largest single packet.
    static let maxPacketSize: UInt32 = 16 << 20
    /// utf8mb4_general_ci: every recorded statement is UTF-8.
    static let characterSet: UInt8 = 45
    /// The largest packet accepted while logging in. Greetings, auth switches and RSA public keys are well under
    /// this; a larger length means the peer is not a MySQL server (an HTTP reply's "HTT" reads as 5.5 MB).
    static let maxLoginPayloadBytes = 64 << 10
    /// What Sluice's display shows instead of a parameter it did not record whole.
    static let cutParameterMarks: Set<String> = ["(too large to show)", "<long data>"]

    private enum AuthPlugin: Equatable {
        case nativePassword
        case cachingSHA2Password

        var name: String {
            switch self {
            case .nativePassword: "mysql_native_password"
            case .cachingSHA2Password: "caching_sha2_password"
            }
        }
    }

    /// Where caching_sha2_password's exchange is.
    private enum CachingSHA2Step: Equatable {
        /// The scramble was sent: the server answers fast-auth success (0x03), full authentication (0x04), OK or ERR.
        case scrambleSent
        /// The client asked for the server's RSA public key (0x02).
        case publicKeyRequested
        /// The encrypted password was sent: OK or ERR is due.
        case passwordSent
    }

    private struct Authentication {
        var plugin: AuthPlugin
        /// The 20-byte nonce the answer is computed from.
        var scramble: [UInt8]
        var cachingSHA2: CachingSHA2Step = .scrambleSent
    }

    private enum Phase {
        case awaitingGreeting
        case authenticating(Authentication)
        /// Logged in, no statement running.
        case idle
        /// A COM_QUERY's response.
        case query(MySQLResponseTracker)
        /// A COM_STMT_PREPARE's response; the recorded parameters wait for the execution.
        case preparing(MySQLResponseTracker, parameters: [String?])
        /// A COM_STMT_EXECUTE's response; the statement is closed when it is complete.
        case executing(MySQLResponseTracker, statementID: UInt32)
        /// The server broke the protocol or refused the login; nothing more is read.
        case failed
    }

    private let login: DatabaseLogin
    private var phase: Phase = .awaitingGreeting
    private var framer = MySQLPacketFramer()
    private var input = ByteBuffer()
    /// The negotiated capabilities: what the session asked for ∩ what the server offered.
    private var capabilities: MySQLCapabilities = []
    /// The sequence id the next packet must carry, whichever side sends it: the server's next packet must have it
    /// (libmysql's "Packets out of order" check), and the client's next answer within the same exchange uses it.
    private var sequenceID: UInt8 = 0

    public init(login: DatabaseLogin) {
        self.login = login
    }

    public mutating func start() -> ByteBuffer? {
        nil
    }

    public mutating func receive(_ bytes: ByteBuffer) throws(DatabaseClientError) -> [DatabaseClientStep] {
        if case .failed = phase {
            throw DatabaseClientError("the MySQL session already failed; it reads nothing more")
        }
        var bytes = bytes
        input.writeBuffer(&bytes)
        var steps: [DatabaseClientStep] = []
        do throws(DatabaseClientError) {
            while let frame = try nextFrame() {
                try checkSequenceID(of: frame)
                steps += try handle(frame)
            }
        } catch {
            phase = .failed
            throw error
        }
        if input.readerIndex > 64 << 10 {
            input.discardReadBytes()
        }
        return steps
    }

    public mutating func run(_ statement: ReplayStatement) throws(DatabaseClientError) -> ByteBuffer {
        guard case .idle = phase else {
            throw DatabaseClientError(
                "a MySQL statement can run only once logged in and after the previous one finished")
        }
        var payload = ByteBuffer()
        guard let parameters = statement.parameters else {
            payload.writeInteger(MySQLCommandCode.query)
            payload.writeString(statement.text)
            phase = .query(tracker(.resultSets))
            return command(payload)
        }
        for (index, parameter) in parameters.enumerated() {
            if let parameter, Self.cutParameterMarks.contains(parameter) {
                throw DatabaseClientError("parameter \(index + 1) was not recorded whole; it cannot be replayed")
            }
        }
        payload.writeInteger(MySQLCommandCode.statementPrepare)
        payload.writeString(statement.text)
        phase = .preparing(tracker(.preparedStatement), parameters: parameters)
        return command(payload)
    }

    public func quit() -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(MySQLCommandCode.quit)
        var packet = ByteBuffer()
        MySQLPacketEncoder.writePacket(payload: payload, sequenceID: 0, into: &packet)
        return packet
    }

    // MARK: Frames

    private mutating func handle(_ frame: MySQLFrame) throws(DatabaseClientError) -> [DatabaseClientStep] {
        switch phase {
        case .awaitingGreeting:
            return try greeting(Self.payload(of: frame, "the greeting"))
        case .authenticating(let authentication):
            return try authenticate(Self.payload(of: frame, "an authentication packet"), authentication)
        case .idle:
            if case .payload(let payload) = frame.kind,
                payload.getInteger(at: payload.readerIndex, as: UInt8.self) == 0xFF,
                let error = try? MySQLErrorPacket(payload: payload, capabilities: capabilities)
            {
                // E.g. MySQL 8's 4031 "disconnected by the server because of inactivity" before it closes.
                throw DatabaseClientError("the server ended the session: \(Self.describe(error))")
            }
            throw DatabaseClientError("the server sent a packet while no statement was running")
        case .query(var tracker):
            let steps = try followResults(frame, &tracker, closing: nil)
            phase = tracker.isComplete ? .idle : .query(tracker)
            return steps
        case .preparing(var tracker, let parameters):
            try Self.track(frame, &tracker)
            guard tracker.isComplete else {
                phase = .preparing(tracker, parameters: parameters)
                return []
            }
            return prepared(tracker.summary, parameters: parameters)
        case .executing(var tracker, let statementID):
            let steps = try followResults(frame, &tracker, closing: statementID)
            phase = tracker.isComplete ? .idle : .executing(tracker, statementID: statementID)
            return steps
        case .failed:
            throw DatabaseClientError("the MySQL session already failed; it reads nothing more")
        }
    }

    /// Feeds a COM_QUERY's or COM_STMT_EXECUTE's response to its tracker: a local file request is refused with an
    /// empty packet, and a complete response finishes the statement, closing the prepared one first (COM_STMT_CLOSE
    /// has no response, so nothing waits behind it).
    private mutating func followResults(
        _ frame: MySQLFrame, _ tracker: inout MySQLResponseTracker, closing statementID: UInt32?
    ) throws(DatabaseClientError) -> [DatabaseClientStep] {
        switch try Self.track(frame, &tracker) {
        case .inProgress:
            return []
        case .localInfileRequested:
            // Replay never sends a file: the empty packet says "no data", and the server answers OK or ERR.
            let first = sequenceID
            let empty = packet(ByteBuffer())
            let sent = MySQLFrame(kind: .payload(ByteBuffer()), raw: empty, sequenceID: first, lastSequenceID: first)
            do throws(MySQLProtocolError) {
                _ = try tracker.clientSent(sent)
            } catch {
                throw Self.broken(error)
            }
            return [.send(empty)]
        case .complete:
            var steps: [DatabaseClientStep] = []
            if let statementID {
                steps.append(.send(Self.closeStatement(statementID)))
            }
            steps.append(.finished(Self.outcome(tracker.summary)))
            return steps
        }
    }

    @discardableResult
    private static func track(
        _ frame: MySQLFrame, _ tracker: inout MySQLResponseTracker
    ) throws(DatabaseClientError) -> MySQLResponseTracker.Step {
        do throws(MySQLProtocolError) {
            return try tracker.receive(frame)
        } catch {
            throw broken(error)
        }
    }

    /// COM_STMT_PREPARE answered: execute the statement with the recorded parameters, or finish with why not.
    private mutating func prepared(_ summary: MySQLResponseSummary, parameters: [String?]) -> [DatabaseClientStep] {
        var prepareOK: MySQLPrepareOK?
        for case .prepared(let ok) in summary.results {
            prepareOK = ok
        }
        guard let prepareOK else {
            phase = .idle
            return [.finished(Self.outcome(summary))]
        }
        guard prepareOK.parameterCount == parameters.count else {
            phase = .idle
            let count = prepareOK.parameterCount
            let error =
                "the statement takes \(count) parameter\(count == 1 ? "" : "s"); \(parameters.count) "
                + "\(parameters.count == 1 ? "was" : "were") recorded"
            return [
                .send(Self.closeStatement(prepareOK.statementID)),
                .finished(ReplayOutcome(summary: "error", error: error)),
            ]
        }
        phase = .executing(tracker(.resultSets), statementID: prepareOK.statementID)
        return [.send(command(Self.executePayload(statementID: prepareOK.statementID, parameters: parameters)))]
    }

    // MARK: Login

    private mutating func greeting(_ payload: ByteBuffer) throws(DatabaseClientError) -> [DatabaseClientStep] {
        let greeting: MySQLHandshake.Greeting
        do throws(MySQLProtocolError) {
            greeting = try MySQLHandshake.decodeGreeting(payload)
        } catch {
            throw Self.broken(error)
        }
        let handshake: MySQLHandshake
        switch greeting {
        case .error(let error):
            throw DatabaseClientError(Self.describe(error))
        case .handshake(let decoded):
            handshake = decoded
        }
        guard handshake.capabilities.contains(.protocol41) else {
            throw DatabaseClientError("the server does not speak the MySQL 4.1 protocol (CLIENT_PROTOCOL_41)")
        }
        var wanted = Self.wantedCapabilities
        if let database = login.database, !database.isEmpty {
            wanted.insert(.connectWithDB)
        }
        capabilities = wanted.intersection(handshake.capabilities)
        guard !capabilities.isDisjoint(with: [.secureConnection, .pluginAuthLengthEncodedClientData]) else {
            throw DatabaseClientError("the server offers only pre-4.1 authentication (no CLIENT_SECURE_CONNECTION)")
        }
        // The greeting's plugin is the server's default, not necessarily the account's: answer with it when it is one
        // replay knows, else with mysql_native_password, and the server asks for another if it must.
        let plugin: AuthPlugin =
            switch handshake.authPluginName {
            case AuthPlugin.cachingSHA2Password.name?: .cachingSHA2Password
            default: .nativePassword
            }
        let authentication = Authentication(plugin: plugin, scramble: handshake.scramble)
        let answer = try Self.authResponse(authentication, password: login.password)
        phase = .authenticating(authentication)
        return [.send(packet(handshakeResponse(answer, plugin: plugin)))]
    }

    /// HandshakeResponse41: capabilities, max packet size, character set, 23 reserved bytes (MariaDB's extended
    /// capabilities among them, none asked for), user, auth response, database, plugin name.
    private func handshakeResponse(_ answer: [UInt8], plugin: AuthPlugin) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(capabilities.rawValue, endianness: .little)
        payload.writeInteger(Self.maxPacketSize, endianness: .little)
        payload.writeInteger(Self.characterSet)
        payload.writeRepeatingByte(0, count: 23)
        payload.writeString(login.user)
        payload.writeInteger(UInt8(0))
        if capabilities.contains(.pluginAuthLengthEncodedClientData) {
            MySQLLengthEncoded.writeBytes(answer, into: &payload)
        } else {
            // At most 32 bytes (a SHA-256), so the one-byte length of CLIENT_SECURE_CONNECTION holds it.
            payload.writeInteger(UInt8(truncatingIfNeeded: answer.count))
            payload.writeBytes(answer)
        }
        if capabilities.contains(.connectWithDB), let database = login.database {
            payload.writeString(database)
            payload.writeInteger(UInt8(0))
        }
        if capabilities.contains(.pluginAuth) {
            payload.writeString(plugin.name)
            payload.writeInteger(UInt8(0))
        }
        return payload
    }

    private mutating func authenticate(
        _ payload: ByteBuffer, _ authentication: Authentication
    ) throws(DatabaseClientError) -> [DatabaseClientStep] {
        let packet: MySQLAuthenticationPacket
        do throws(MySQLProtocolError) {
            packet = try MySQLAuthenticationPacket(payload: payload, capabilities: capabilities)
        } catch {
            throw Self.broken(error)
        }
        switch packet {
        case .ok:
            phase = .idle
            return [.ready]
        case .error(let error):
            throw DatabaseClientError(Self.describe(error))
        case .authSwitchRequest(let name, let data):
            let plugin = try Self.plugin(named: name)
            var scramble = Array(data.readableBytesView)
            if scramble.last == 0 {
                scramble.removeLast()
            }
            let switched = Authentication(plugin: plugin, scramble: scramble)
            let answer = try Self.authResponse(switched, password: login.password)
            phase = .authenticating(switched)
            return [.send(self.packet(ByteBuffer(bytes: answer)))]
        case .oldAuthSwitchRequest:
            throw DatabaseClientError(
                "the server asks for mysql_old_password (pre-4.1 hashing), which replay does not support; use an "
                    + "account with mysql_native_password")
        case .authMoreData(let data):
            return try moreData(Array(data.readableBytesView), authentication)
        }
    }

    /// caching_sha2_password's exchange after the scramble (MySQL `caching_sha2_password_auth_client`).
    private mutating func moreData(
        _ data: [UInt8], _ authentication: Authentication
    ) throws(DatabaseClientError) -> [DatabaseClientStep] {
        guard authentication.plugin == .cachingSHA2Password else {
            throw DatabaseClientError("the server sent more authentication data to \(authentication.plugin.name)")
        }
        var next = authentication
        switch (authentication.cachingSHA2, data) {
        case (.scrambleSent, [0x03]):
            // Fast authentication succeeded: the server's cache knew the account; OK follows.
            return []
        case (.scrambleSent, [0x04]):
            // Full authentication over a clear connection: the password goes encrypted with the server's RSA key.
            next.cachingSHA2 = .publicKeyRequested
            phase = .authenticating(next)
            return [.send(packet(ByteBuffer(bytes: [0x02])))]
        case (.publicKeyRequested, _):
            let pem = String(decoding: data.filter { $0 != 0 }, as: UTF8.self)
            let encrypted = try Self.encryptPassword(
                Array((login.password ?? "").utf8), scramble: authentication.scramble, publicKeyPEM: pem)
            next.cachingSHA2 = .passwordSent
            phase = .authenticating(next)
            return [.send(packet(ByteBuffer(bytes: encrypted)))]
        default:
            throw DatabaseClientError(
                "caching_sha2_password: unexpected data from the server (\(data.count) bytes, first "
                    + "\(data.first.map(MySQLPacketName.hex) ?? "none"))")
        }
    }

    private static func plugin(named name: String) throws(DatabaseClientError) -> AuthPlugin {
        switch name {
        case AuthPlugin.nativePassword.name:
            return .nativePassword
        case AuthPlugin.cachingSHA2Password.name:
            return .cachingSHA2Password
        case "client_ed25519":
            throw DatabaseClientError(
                "the server asks for MariaDB's client_ed25519 authentication: the client_ed25519 plugin is not "
                    + "supported by replay; use an account with mysql_native_password")
        default:
            throw DatabaseClientError(
                "the server asks for the \(name) authentication plugin, which replay does not support; use an account "
                    + "with mysql_native_password")
        }
    }

    /// The plugin's first answer: empty for an empty or absent password (the server decides whether that will do).
    private static func authResponse(
        _ authentication: Authentication, password: String?
    ) throws(DatabaseClientError) -> [UInt8] {
        let password = Array((password ?? "").utf8)
        guard !password.isEmpty else { return [] }
        guard authentication.scramble.count >= 20 else {
            let count = authentication.scramble.count
            throw DatabaseClientError(
                "the server's scramble has \(count) bytes; \(authentication.plugin.name) needs 20")
        }
        let scramble = Array(authentication.scramble.prefix(20))
        switch authentication.plugin {
        case .nativePassword:
            return nativePasswordScramble(password: password, scramble: scramble)
        case .cachingSHA2Password:
            return cachingSHA2Scramble(password: password, scramble: scramble)
        }
    }

    /// mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
    static func nativePasswordScramble(password: [UInt8], scramble: [UInt8]) -> [UInt8] {
        let stage1 = Array(Insecure.SHA1.hash(data: password))
        let stage2 = Array(Insecure.SHA1.hash(data: stage1))
        let mask = Array(Insecure.SHA1.hash(data: scramble + stage2))
        return zip(stage1, mask).map { $0 ^ $1 }
    }

    /// caching_sha2_password's fast path: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
    static func cachingSHA2Scramble(password: [UInt8], scramble: [UInt8]) -> [UInt8] {
        let stage1 = Array(SHA256.hash(data: password))
        let stage2 = Array(SHA256.hash(data: stage1))
        let mask = Array(SHA256.hash(data: stage2 + scramble))
        return zip(stage1, mask).map { $0 ^ $1 }
    }

    /// caching_sha2_password's full authentication on a clear connection: (password + NUL) XOR the scramble,
    /// repeated, encrypted with RSA-OAEP (SHA-1), as MySQL 8.0.5+ servers decrypt it.
    static func encryptPassword(
        _ password: [UInt8], scramble: [UInt8], publicKeyPEM: String
    ) throws(DatabaseClientError) -> [UInt8] {
        guard !scramble.isEmpty else {
            throw DatabaseClientError("caching_sha2_password: the server sent no scramble to encrypt the password with")
        }
        var plain = password + [0]
        for index in plain.indices {
            plain[index] ^= scramble[index % scramble.count]
        }
        do {
            let key = try _RSA.Encryption.PublicKey(pemRepresentation: publicKeyPEM)
            return Array(try key.encrypt(plain, padding: .PKCS1_OAEP))
        } catch {
            throw DatabaseClientError(
                "caching_sha2_password: the server's RSA public key cannot encrypt the password (\(error)); it must be "
                    + "a PEM key of 2048 bits or more")
        }
    }

    // MARK: Statements

    /// COM_STMT_EXECUTE: statement id, no cursor, one iteration, then (with parameters) the NULL bitmap,
    /// new-params-bound 1, every type VAR_STRING (0xFD, signed), and the non-NULL values as length-encoded UTF-8. The
    /// server converts each string to the column's type, as it does for a text query.
    static func executePayload(statementID: UInt32, parameters: [String?]) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(MySQLCommandCode.statementExecute)
        payload.writeInteger(statementID, endianness: .little)
        payload.writeInteger(UInt8(0))
        payload.writeInteger(UInt32(1), endianness: .little)
        guard !parameters.isEmpty else { return payload }
        var bitmap = [UInt8](repeating: 0, count: (parameters.count + 7) / 8)
        for (index, parameter) in parameters.enumerated() where parameter == nil {
            bitmap[index / 8] |= 1 << UInt8(index % 8)
        }
        payload.writeBytes(bitmap)
        payload.writeInteger(UInt8(1))
        for _ in parameters {
            payload.writeBytes([0xFD, 0x00])
        }
        for case let parameter? in parameters {
            MySQLLengthEncoded.writeBytes(Array(parameter.utf8), into: &payload)
        }
        return payload
    }

    /// COM_STMT_CLOSE, which the server never answers.
    static func closeStatement(_ statementID: UInt32) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(MySQLCommandCode.statementClose)
        payload.writeInteger(statementID, endianness: .little)
        var packet = ByteBuffer()
        MySQLPacketEncoder.writePacket(payload: payload, sequenceID: 0, into: &packet)
        return packet
    }

    /// The statement's outcome: each result's summary joined with ", ", the ERR that ended it as the error.
    static func outcome(_ summary: MySQLResponseSummary) -> ReplayOutcome {
        var parts: [String] = []
        var error: String?
        for result in summary.results {
            switch result {
            case .ok(let ok):
                parts.append("OK, \(rows(ok.affectedRows)) affected")
            case .resultSet(let set):
                parts.append(rows(UInt64(set.rowCount)))
            case .eof:
                parts.append("OK")
            case .localInfile(let filename, _):
                parts.append("local file \(filename) not sent")
            case .error(let packet):
                error = describe(packet)
                parts.append("error")
            case .prepared, .fieldList, .statistics, .authenticationSwitch, .binlogEvents, .other:
                break
            }
        }
        return ReplayOutcome(summary: parts.isEmpty ? "OK" : parts.joined(separator: ", "), error: error)
    }

    private static func rows(_ count: UInt64) -> String {
        count == 1 ? "1 row" : "\(count) rows"
    }

    /// `1146 (42S02): Table 'x.y' doesn't exist`; without the SQLSTATE (a greeting's ERR) `1130: Host …`.
    static func describe(_ error: MySQLErrorPacket) -> String {
        guard let state = error.sqlState else { return "\(error.code): \(error.message)" }
        return "\(error.code) (\(state)): \(error.message)"
    }

    // MARK: Packets

    private func tracker(_ expectation: MySQLResponseTracker.Expectation) -> MySQLResponseTracker {
        MySQLResponseTracker(expecting: expectation, capabilities: capabilities)
    }

    /// A command's packets, starting the sequence at 0.
    private mutating func command(_ payload: ByteBuffer) -> ByteBuffer {
        sequenceID = 0
        return packet(payload)
    }

    /// The client's next packet(s) in the current exchange.
    private mutating func packet(_ payload: ByteBuffer) -> ByteBuffer {
        var packet = ByteBuffer()
        sequenceID = MySQLPacketEncoder.writePacket(payload: payload, sequenceID: sequenceID, into: &packet)
        return packet
    }

    private mutating func checkSequenceID(of frame: MySQLFrame) throws(DatabaseClientError) {
        if case .idle = phase {
            // Nothing is due; `handle` says what came.
            return
        }
        if case .streamPart = frame.kind {
            // The framer checked that a continuation packet follows its predecessor.
            sequenceID = frame.lastSequenceID &+ 1
            return
        }
        guard frame.sequenceID == sequenceID else {
            throw DatabaseClientError(
                "the server's packet has sequence id \(frame.sequenceID) where \(sequenceID) was due (packets out of "
                    + "order)")
        }
        sequenceID = frame.lastSequenceID &+ 1
    }

    /// The next frame from the input, or nil until one has arrived whole.
    private mutating func nextFrame() throws(DatabaseClientError) -> MySQLFrame? {
        try checkLoginPacketLength()
        do throws(MySQLProtocolError) {
            return try framer.next(&input)
        } catch {
            throw Self.broken(error)
        }
    }

    /// While logging in only small packets come: refuse a larger length at once, rather than wait for megabytes.
    private func checkLoginPacketLength() throws(DatabaseClientError) {
        switch phase {
        case .awaitingGreeting, .authenticating:
            break
        case .idle, .query, .preparing, .executing, .failed:
            return
        }
        guard let low = input.getInteger(at: input.readerIndex, endianness: .little, as: UInt16.self),
            let high = input.getInteger(at: input.readerIndex + 2, as: UInt8.self)
        else { return }
        let length = Int(low) | Int(high) << 16
        guard length <= Self.maxLoginPayloadBytes else {
            let what = if case .awaitingGreeting = phase { "greeting" } else { "authentication packet" }
            throw DatabaseClientError(
                "the server's \(what) announces \(length) bytes, far more than a MySQL login packet; is this a MySQL "
                    + "server?")
        }
    }

    private static func payload(of frame: MySQLFrame, _ what: String) throws(DatabaseClientError) -> ByteBuffer {
        guard case .payload(let payload) = frame.kind else {
            throw DatabaseClientError("\(what) is too large to be one")
        }
        return payload
    }

    /// The session's one line for a framing or decoding error.
    private static func broken(_ error: MySQLProtocolError) -> DatabaseClientError {
        DatabaseClientError("the server broke the MySQL protocol: \(error.reason)")
    }
}

/// The command bytes the session sends.
private enum MySQLCommandCode {
    static let quit: UInt8 = 0x01
    static let query: UInt8 = 0x03
    static let statementPrepare: UInt8 = 0x16
    static let statementExecute: UInt8 = 0x17
    static let statementClose: UInt8 = 0x19
}
