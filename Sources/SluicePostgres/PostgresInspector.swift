import Foundation
import NIOCore
import SluiceCore
import SluiceModel
import SluicePolicy

/// Reads a PostgreSQL session on the relay: every statement (a simple Query, an extended-protocol Parse and each
/// Execute of it) becomes a `Command` judged by the policy before the server sees it, with its bind parameters
/// and, from the replies, its command tag or error.
///
/// **Startup.** SSLRequest and GSSENCRequest are answered `N` by Sluice itself (never relayed: the legs would
/// desynchronise), so clients with `sslmode=prefer` go on in clear; bytes sent behind the request before the answer
/// end the connection (CVE-2021-23214). A CancelRequest is passed on only when its key belongs to a session relayed
/// to this same server. Authentication is relayed untouched; the client's password messages are not recorded.
///
/// **Holding and blocking.** A statement the policy holds (or the intercept filter matches) waits for a verdict,
/// and reading from the client stops. A blocked statement is not answered by Sluice: its text is replaced by a
/// stand-in that fails to parse, the rest of the client's messages pass unchanged, and the server's error for the
/// stand-in is rewritten on the way back into `42501 blocked by Sluice policy: …` (`57014` for a hold that timed
/// out). So the order of replies, the skipping of an extended batch up to its Sync, the rollback of an implicit
/// transaction and the status in ReadyForQuery all come from the server (PROTOCOLS.md §1, the "robust fix"), and
/// the session goes on: its next statement runs.
///
/// Malformed input from either side ends the connection with a clear error flow; the client gets a FATAL
/// ErrorResponse (08P01) saying why.
final class PostgresInspector: RelayInspector {
    /// What a held statement was, to send it (or its stand-in) once decided.
    private struct Held {
        var message: StatementMessage
        var original: ByteBuffer
        var text: String
        var judgement: Judgement
    }

    /// The two messages that carry SQL to judge.
    private enum StatementMessage {
        case query
        case parse(name: String, parameterTypes: [UInt32])
    }

    /// The error a blocked statement's stand-in is answered with.
    private struct Refusal {
        var sqlState: String
        var message: String
    }

    private let recorder: FlowRecorder
    private let gate: InterceptGate
    private let commands: CommandLog
    private let cancelKeys: PostgresCancelKeys
    private let server: Endpoint
    /// The stand-in's name, `sluice_blocked_<random>_`, numbered per blocked statement: random per session, so a
    /// client cannot make Sluice rewrite errors of its own.
    private let standInPrefix: String

    private var frontend: PostgresFramer
    private var backend: PostgresFramer
    private var clientCutter = StreamCutter()
    private var serverCutter = StreamCutter()
    private var tracker = PostgresStatementTracker()
    private var authenticated = false
    private var backendKey: (processID: Int32, secret: [UInt8])?
    private var failed = false
    private var refusals: [Int: Refusal] = [:]
    private var nextRefusal = 0
    private var held: [Int: Held] = [:]
    private var nextHold = 0
    /// With `tls=intercept`: makes the TLS handler that terminates the client's TLS after Sluice's `S`.
    private let clientTLS: (() throws -> ChannelHandler)?
    /// The server's leg is TLS (Sluice's own): channel binding cannot pass through, so it is not offered.
    private let serverLegIsTLS: Bool

    init(
        recorder: FlowRecorder, gate: InterceptGate, commands: CommandLog, cancelKeys: PostgresCancelKeys, server: Endpoint,
        clientTLS: (() throws -> ChannelHandler)? = nil, serverLegIsTLS: Bool = false,
        maxInspectedMessageBytes: Int = PostgresFramer.defaultMaxInspectedMessageBytes
    ) {
        self.clientTLS = clientTLS
        self.serverLegIsTLS = serverLegIsTLS
        self.recorder = recorder
        self.gate = gate
        self.commands = commands
        self.cancelKeys = cancelKeys
        self.server = server
        self.frontend = PostgresFramer(direction: .frontend, maxInspectedMessageBytes: maxInspectedMessageBytes)
        self.backend = PostgresFramer(direction: .backend, maxInspectedMessageBytes: maxInspectedMessageBytes)
        self.standInPrefix = "sluice_blocked_\(String(UInt64.random(in: 0...UInt64.max), radix: 36))_"
    }

    // MARK: RelayInspector

    func read(_ buffer: ByteBuffer, direction: Direction, into actions: inout [RelayAction]) {
        guard !failed else { return }
        switch direction {
        case .up:
            // Until the login is done the client may send passwords: those reads are recorded message by message.
            let sequence = authenticated ? recorder.chunk(buffer, direction: .up) : nil
            cut(buffer, from: .frontend, sequence: sequence, into: &actions)
        case .down:
            recorder.chunk(buffer, direction: .down)
            cut(buffer, from: .backend, sequence: nil, into: &actions)
        }
    }

    func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider, into actions: inout [RelayAction]) {
        guard let statement = held.removeValue(forKey: hold.id) else { return }
        switch verdict {
        case .forward(edited: nil):
            settle(statement.message, statement, .allowed, decidedBy)
            actions.append(.pass(statement.original))
        case .forward(edited: let edited?):
            settle(statement.message, statement, .allowed, decidedBy)
            recorder.edited(edited, from: hold.sequence, direction: .up)
            actions.append(.pass(encode(statement.message, sql: String(decoding: edited, as: UTF8.self))))
        case .drop, .block:
            settle(statement.message, statement, .blocked, decidedBy)
            var reason = "refused by the Sluice operator"
            if case .block(let message) = verdict, !message.isEmpty { reason = message }
            let refusal =
                decidedBy == .timeout
                ? Refusal(sqlState: "57014", message: "held by Sluice and not approved in time")
                : Refusal(sqlState: "42501", message: "blocked by Sluice: \(reason)")
            actions.append(.pass(standIn(for: statement.message, refusal)))
        case .kill:
            actions.append(.end(RelayEnding(failure: .proxy, "killed by the operator")))
        }
    }

    var bufferedBytes: Int { clientCutter.bufferedBytes + serverCutter.bufferedBytes }

    func relayEnded() {
        if let backendKey { cancelKeys.remove(processID: backendKey.processID, secret: backendKey.secret) }
        backendKey = nil
        clientCutter.reset()
        serverCutter.reset()
        held = [:]
    }

    // MARK: Framing

    /// Cuts what one side sent into messages; those that pass unchanged go on as runs of the input.
    private func cut(_ buffer: ByteBuffer, from side: PostgresDirection, sequence: Int64?, into actions: inout [RelayAction]) {
        do {
            switch side {
            case .frontend:
                try clientCutter.cut(buffer, into: &actions) { (input: inout ByteBuffer) throws(PostgresProtocolError) in
                    try frontend.next(&input)
                } handle: { (frame: PostgresFrame, rest: ByteBuffer) throws(PostgresProtocolError) in
                    try frontendMessage(frame, sequence: sequence, after: rest)
                }
            case .backend:
                try serverCutter.cut(buffer, into: &actions) { (input: inout ByteBuffer) throws(PostgresProtocolError) in
                    try backend.next(&input)
                } handle: { (frame: PostgresFrame, _: ByteBuffer) throws(PostgresProtocolError) in
                    try backendMessage(frame)
                }
            }
        } catch {
            actions.append(failure(side, error.reason))
        }
    }

    // MARK: Client to server

    /// Returns what replaces the message (nothing: drop it), or nil when it passes as it came.
    private func frontendMessage(_ frame: PostgresFrame, sequence: Int64?, after rest: ByteBuffer) throws(PostgresProtocolError) -> [RelayAction]? {
        let sequence = sequence ?? recordLoginMessage(frame)
        switch frame.kind {
        case .startupPacket(let body):
            return try startupPacket(body, after: rest)
        case .message(let type, let body):
            switch type {
            case UInt8(ascii: "Q"):
                guard case .query(let sql) = try PostgresFrontendMessage(type: type, body: body) else { return nil }
                return try statement(.query, sql: sql, raw: frame.raw, sequence: sequence)
            case UInt8(ascii: "P"):
                guard case .parse(let name, let sql, let types) = try PostgresFrontendMessage(type: type, body: body) else { return nil }
                return try statement(.parse(name: name, parameterTypes: types), sql: sql, raw: frame.raw, sequence: sequence)
            case UInt8(ascii: "B"):
                if case .bind(let portal, let name, let formats, let parameters, _) = try PostgresFrontendMessage(type: type, body: body) {
                    let types = tracker.statements[name]?.parameterTypes ?? []
                    try keep(tracker.bound(portal: portal, statement: name, parameters: PostgresParameterText.describe(parameters, formats: formats, types: types)))
                }
            case UInt8(ascii: "E"):
                if case .execute(let portal, _) = try PostgresFrontendMessage(type: type, body: body) { execute(portal) }
            case UInt8(ascii: "S"):
                tracker.await(.sync)
            case UInt8(ascii: "C"):
                switch try PostgresFrontendMessage(type: type, body: body) {
                case .close(.statement, let name): tracker.closed(statement: name)
                case .close(.portal, let name): tracker.closed(portal: name)
                default: break
                }
            case UInt8(ascii: "F"):
                if case .functionCall(let oid) = try PostgresFrontendMessage(type: type, body: body) {
                    let command = commands.record("-- fast-path function call, oid \(oid)", kind: .sql, judgement: commands.judge("", kind: .sql))
                    tracker.await(.query(command.index))
                }
            default:
                break
            }
            return nil
        case .streamStart(let type, let length, let head):
            if type == UInt8(ascii: "B"), case .bind(let portal, let name) = try PostgresStreamHead(direction: .frontend, type: type, head: head) {
                try keep(tracker.bound(portal: portal, statement: name, parameters: ["(\(length) bytes of parameters, not shown)"]))
            }
            return nil
        case .streamPart:
            return nil
        }
    }

    /// Before the login completes, each message is recorded on its own, and a password message only as its size.
    private func recordLoginMessage(_ frame: PostgresFrame) -> Int64 {
        if case .message(UInt8(ascii: "p"), let body) = frame.kind {
            return recorder.chunk(ByteBuffer(string: "p: \(body.readableBytes) bytes of authentication response, not recorded"), direction: .up)
        }
        return recorder.chunk(frame.raw, direction: .up)
    }

    private func startupPacket(_ body: ByteBuffer, after rest: ByteBuffer) throws(PostgresProtocolError) -> [RelayAction]? {
        let message = try PostgresFrontendMessage(startupPacket: body)
        switch message {
        case .sslRequest, .gssEncRequest:
            guard rest.readableBytes == 0 else {
                return [failure(.frontend, "the client sent data behind its encryption request before the answer (refused, as the server does: CVE-2021-23214)")]
            }
            var answer = ByteBuffer()
            if message == .sslRequest, let clientTLS {
                // TLS with Sluice's certificate; the startup packet comes next, inside it.
                answer.writeInteger(UInt8(ascii: "S"))
                return [.answer(answer), .secureSender(clientTLS)]
            }
            // GSSAPI encryption cannot be intercepted; nor TLS unless the listener says tls=intercept.
            PostgresMessageEncoder.writeEncryptionRefused(into: &answer)
            return [.answer(answer)]
        case .cancelRequest(let processID, let secret):
            guard let owner = cancelKeys.server(processID: processID, secret: secret) else {
                recorder.failed(.client, "cancel request for backend \(processID), whose key no session through Sluice has: not passed on")
                return [.end(RelayEnding())]
            }
            guard owner == server else {
                recorder.failed(.client, "cancel request for backend \(processID) of \(owner), not of \(server): not passed on")
                return [.end(RelayEnding())]
            }
            return nil
        case .startup(_, let parameters):
            let user = parameters.first { $0.name == "user" }?.value ?? "?"
            commands.user = user
            commands.database = parameters.first { $0.name == "database" }?.value ?? user
            return nil
        default:
            return nil
        }
    }

    /// A Query or Parse: judged, recorded, and passed, held or replaced by its stand-in.
    private func statement(
        _ message: StatementMessage, sql: String, raw: ByteBuffer, sequence: Int64
    ) throws(PostgresProtocolError) -> [RelayAction]? {
        let judgement = commands.judge(sql, kind: .sql)
        let filterHolds = gate.isActive && judgement.action < .hold && gate.shouldHold(subject(sql))
        if case .parse(let name, _) = message, judgement.action < .hold, !filterHolds {
            // Its executions are the commands; this judgement goes with them.
            if judgement.action == .alert { commands.alert(level: judgement.risk, rule: judgement.rule ?? "policy", "\(commands.user)@\(commands.database ?? "?") prepared: \(sql)") }
            try keep(tracker.parsed(name, .init(sql: sql, judgement: judgement, parameterTypes: parameterTypes(message))))
            return nil
        }
        let command = commands.record(sql, kind: .sql, judgement: judgement, settled: filterHolds ? (.pending, nil) : nil)
        if case .query = message { tracker.await(.query(command.index)) }
        if case .parse(let name, _) = message {
            try keep(tracker.parsed(
                name,
                .init(
                    sql: sql, judgement: judgement, parameterTypes: parameterTypes(message),
                    settled: judgement.action == .block ? (.blocked, .policy) : nil, heldCommand: command.index
                )
            ))
        }
        if judgement.action < .hold && !filterHolds { return nil }
        switch judgement.action {
        case .block:
            return [.pass(standIn(for: message, Refusal(sqlState: "42501", message: "blocked by Sluice policy: \(judgement.reason)")))]
        case .allow, .alert, .hold:
            let id = nextHold
            nextHold += 1
            held[id] = Held(message: message, original: raw, text: sql, judgement: judgement)
            return [.hold(RelayHold(id: id, sequence: sequence, direction: .up, payload: Data(sql.utf8), command: command))]
        }
    }

    /// A session that prepares more than Sluice keeps track of ends (`PostgresStatementTracker`'s limits).
    private func keep(_ fits: Bool) throws(PostgresProtocolError) {
        guard fits else {
            throw PostgresProtocolError(
                kind: .messageTooLarge,
                reason: "the session holds more prepared statements or portals than Sluice keeps (\(PostgresStatementTracker.maxStatements) statements, \(PostgresStatementTracker.maxStatementBytes >> 20) MiB of SQL, \(PostgresStatementTracker.maxPortals) portals)"
            )
        }
    }

    /// Records a held Parse's verdict on its statement, for its executions.
    private func settle(_ message: StatementMessage, _ statement: Held, _ decision: CommandDecision, _ decider: Decider) {
        guard case .parse(let name, _) = message else { return }
        // The same name and text as when it was held: it fits as it did then.
        _ = tracker.parsed(
            name, .init(sql: statement.text, judgement: statement.judgement, parameterTypes: parameterTypes(message), settled: (decision, decider))
        )
    }

    private func parameterTypes(_ message: StatementMessage) -> [UInt32] {
        if case .parse(_, let types) = message { return types }
        return []
    }

    /// An Execute: one command per run of a prepared statement, with its parameters.
    private func execute(_ portal: String) {
        let command: Command
        if let run = tracker.execution(of: portal), run.statement.settled == nil, let heldCommand = run.statement.heldCommand {
            // Its Parse still waits for a verdict: the held command is this execution's record, and gets its outcome.
            tracker.await(.execute(heldCommand))
            return
        } else if let run = tracker.execution(of: portal) {
            command = commands.record(
                run.statement.sql, kind: .sql, judgement: run.statement.judgement, parameters: run.parameters, alerting: false,
                settled: run.statement.settled.map { ($0.decision, $0.by) }
            )
        } else {
            command = commands.record("-- execute of portal '\(portal)', whose statement Sluice did not see", kind: .sql, judgement: commands.judge("", kind: .sql))
        }
        tracker.await(.execute(command.index))
    }

    private func subject(_ sql: String) -> FilterSubject {
        var subject = recorder.subject(direction: .up, payload: Data(sql.utf8))
        subject.commands = [sql]
        return subject
    }

    // MARK: Stand-ins for blocked statements

    /// The message with a statement the server refuses to parse in place of `message`'s SQL, numbered so the
    /// server's error for it can be rewritten into `refusal`.
    private func standIn(for message: StatementMessage, _ refusal: Refusal) -> ByteBuffer {
        let number = nextRefusal
        nextRefusal += 1
        refusals[number] = refusal
        return encode(message, sql: "\(standInPrefix)\(number)")
    }

    private func encode(_ message: StatementMessage, sql: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        switch message {
        case .query:
            PostgresMessageEncoder.writeQuery(sql, into: &buffer)
        case .parse(let name, let types):
            PostgresMessageEncoder.writeParse(statement: name, query: sql, parameterTypes: types, into: &buffer)
        }
        return buffer
    }

    /// The refusal a server error is about, when it is the error for a stand-in.
    private func refusal(in fields: PostgresErrorFields) -> Refusal? {
        guard let message = fields.message, let range = message.range(of: standInPrefix) else { return nil }
        let digits = message[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard let number = Int(digits) else { return nil }
        return refusals.removeValue(forKey: number)
    }

    // MARK: Server to client

    private func backendMessage(_ frame: PostgresFrame) throws(PostgresProtocolError) -> [RelayAction]? {
        guard case .message(let type, let body) = frame.kind else { return nil }
        switch type {
        case UInt8(ascii: "D"):
            return nil
        case UInt8(ascii: "C"):
            if case .commandComplete(let tag) = try PostgresBackendMessage(type: type, body: body), let done = tracker.commandComplete(tag) {
                commands.finished(done.index, done.outcome)
            }
        case UInt8(ascii: "I"):
            finish(tracker.executeEnded("EMPTY"))
        case UInt8(ascii: "s"):
            finish(tracker.executeEnded("SUSPENDED"))
        case UInt8(ascii: "Z"):
            for done in tracker.readyForQuery() { commands.finished(done.index, done.outcome) }
        case UInt8(ascii: "E"):
            guard case .errorResponse(let fields) = try PostgresBackendMessage(type: type, body: body) else { return nil }
            return error(fields)
        case UInt8(ascii: "R"):
            switch try PostgresBackendMessage(type: type, body: body) {
            case .authentication(.ok):
                authenticated = true
            case .authentication(.sasl(let mechanisms)) where serverLegIsTLS && mechanisms.contains(where: { $0.hasSuffix("-PLUS") }):
                // SCRAM's channel binding covers the TLS session the client sees, which is Sluice's, not the
                // server's: offered, it could only fail. Without it, SCRAM passes through (PROTOCOLS.md §1).
                if let rewritten = try PostgresMessageEncoder.removingChannelBinding(fromAuthenticationSASL: frame.raw) {
                    return [.pass(rewritten)]
                }
            default:
                break
            }
        case UInt8(ascii: "K"):
            if case .backendKeyData(let processID, let secret) = try PostgresBackendMessage(type: type, body: body) {
                backendKey = (processID, secret)
                cancelKeys.register(processID: processID, secret: secret, server: server)
            }
        default:
            break
        }
        return nil
    }

    private func finish(_ done: PostgresStatementTracker.Finished?) {
        if let done { commands.finished(done.index, done.outcome) }
    }

    /// A server error: the login refused, a stand-in's error to rewrite, or a statement's failure.
    private func error(_ fields: PostgresErrorFields) -> [RelayAction]? {
        let described = "\(fields.severity ?? "ERROR") \(fields.sqlState ?? "?"): \(fields.message ?? "")"
        guard authenticated else {
            recorder.failed(.server, "the server refused the session: \(described)")
            return nil
        }
        guard let refusal = refusal(in: fields) else {
            for done in tracker.error(described) { commands.finished(done.index, done.outcome) }
            return nil
        }
        for done in tracker.error("ERROR \(refusal.sqlState): \(refusal.message)") { commands.finished(done.index, done.outcome) }
        var rewritten = ByteBuffer()
        PostgresMessageEncoder.writeErrorResponse(sqlState: refusal.sqlState, message: refusal.message, into: &rewritten)
        return [.pass(rewritten)]
    }

    // MARK: Failing

    /// A side broke the protocol: the connection ends; the client is told why in a FATAL error.
    private func failure(_ side: PostgresDirection, _ reason: String) -> RelayAction {
        failed = true
        let message = side == .frontend ? "the client broke the PostgreSQL protocol: \(reason)" : "the server broke the PostgreSQL protocol: \(reason)"
        var fatal = ByteBuffer()
        PostgresMessageEncoder.writeErrorResponse(
            PostgresErrorFields([
                .init(code: UInt8(ascii: "S"), value: "FATAL"), .init(code: UInt8(ascii: "V"), value: "FATAL"),
                .init(code: UInt8(ascii: "C"), value: "08P01"), .init(code: UInt8(ascii: "M"), value: "Sluice: \(message)"),
            ]),
            into: &fatal
        )
        return .end(RelayEnding(failure: (side == .frontend ? .client : .server, message), toClient: fatal))
    }
}
