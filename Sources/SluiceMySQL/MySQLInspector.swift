import Foundation
import NIOCore
import SluiceCore
import SluiceModel
import SluicePolicy

/// Reads a MySQL or MariaDB session on the relay: every COM_QUERY, COM_INIT_DB and each execution of a prepared
/// statement becomes a `Command` judged by the policy before the server sees it, with its parameters and, from the
/// response, its rows, affected rows or error.
///
/// **Handshake.** The greeting's capabilities lose SSL (the client leg stays in clear: `--ssl-mode=PREFERRED`
/// clients go on, `REQUIRED` ones refuse, as they should), compression (it would hide the packets) and query
/// attributes; the client's answer loses the same bits. Nothing else changes, the scramble above all, so
/// authentication is relayed untouched, auth switches and every plugin included. The client's auth packets are
/// never recorded.
///
/// **Holding and blocking.** A statement the policy holds (or the intercept filter matches) waits for a verdict
/// while reading from the client stops. A blocked statement never reaches the server: Sluice answers it with an
/// ERR 1142 (SQLSTATE 42000) carrying the next sequence id, after the responses of any commands still in flight, so
/// the session and its transaction are as the server left them and the next statement runs. A blocked prepare
/// leaves no statement: its executions (MariaDB's "the one just prepared" included) get their own ERR, and its
/// long data and close are dropped.
///
/// Malformed input from either side ends the connection with an error flow; the client gets an ERR 1835 saying why.
final class MySQLInspector: RelayInspector {
    /// Where the session is.
    private enum Phase {
        case greeting
        case handshakeResponse
        /// The auth exchange, until the server's OK or ERR (again after COM_CHANGE_USER).
        case authentication
        case commands
    }

    /// A command sent (or answered by Sluice) whose response has not finished.
    private struct InFlight {
        enum Reply {
            /// The server answers; the tracker follows it.
            case server(MySQLResponseTracker)
            /// Sluice answers with this packet once everything before it is answered.
            case sluice(ByteBuffer)
        }

        var reply: Reply
        /// The command to finish with the outcome, if the packet is one.
        var commandIndex: Int64?
        /// A COM_STMT_PREPARE's text and judgement, kept for its statement id.
        var prepared: Statement?
    }

    /// A prepared statement, as PREPARE gave it and the policy judged it.
    private struct Statement {
        var sql: String
        var judgement: Judgement
        var parameterCount = 0
        var boundTypes: [MySQLParameterType]?
        /// How a hold was decided; nil when the policy decided alone.
        var settled: (decision: CommandDecision, by: Decider)?
        /// Set for a statement the policy or the operator refused: it does not exist on the server.
        var refusal: String?
    }

    /// A held command and what to send once it is decided.
    private struct Held {
        var packet: ByteBuffer
        var sequenceID: UInt8
        var text: String
        var command: MySQLCommand
        var judgement: Judgement
        var commandIndex: Int64
    }

    private let recorder: FlowRecorder
    private let gate: InterceptGate
    private let commands: CommandLog
    private var clientFramer: MySQLPacketFramer
    private var serverFramer: MySQLPacketFramer
    private var clientCutter = StreamCutter()
    private var serverCutter = StreamCutter()
    private var phase = Phase.greeting
    private var failed = false
    /// The capabilities Sluice advertised, then those the session uses (the client's ∧ the advertised).
    private var capabilities: MySQLCapabilities = []
    private var mariaDBCapabilities: MariaDBCapabilities = []
    private var inFlight: [InFlight] = []
    private var inFlightStart = 0
    private var statements: [UInt32: Statement] = [:]
    /// The last COM_STMT_PREPARE's statement, for an execution of id 0xFFFFFFFF pipelined behind it.
    private var lastPrepared: Statement?
    private var held: [Int: Held] = [:]
    private var nextHold = 0
    /// Statement id MariaDB's connectors use for "the one just prepared".
    private static let justPrepared: UInt32 = 0xFFFF_FFFF

    /// With `tls=intercept`: the handlers that terminate the client's TLS (Sluice's certificate) and start Sluice's
    /// own TLS to the server, both once the client's SSLRequest has passed.
    private let tls: (client: () throws -> ChannelHandler, server: () throws -> ChannelHandler)?
    /// The capabilities taken out of the greeting and the client's answer: SSL stays when TLS is intercepted.
    private let cleared: MySQLCapabilities
    /// The client asked for TLS and both legs are TLS now.
    private var secured = false

    init(
        recorder: FlowRecorder, gate: InterceptGate, commands: CommandLog,
        tls: (client: () throws -> ChannelHandler, server: () throws -> ChannelHandler)? = nil,
        maxInspectedPayloadBytes: Int = MySQLPacketFramer.defaultMaxInspectedPayloadBytes
    ) {
        self.tls = tls
        cleared = tls == nil ? .clearedBySluice : MySQLCapabilities.clearedBySluice.subtracting(.ssl)
        self.recorder = recorder
        self.gate = gate
        self.commands = commands
        clientFramer = MySQLPacketFramer(maxInspectedPayloadBytes: maxInspectedPayloadBytes)
        serverFramer = MySQLPacketFramer(maxInspectedPayloadBytes: maxInspectedPayloadBytes)
    }

    // MARK: RelayInspector

    func read(_ buffer: ByteBuffer, direction: Direction, into actions: inout [RelayAction]) {
        guard !failed else { return }
        switch direction {
        case .up:
            // Until the login is done the client sends its auth answers: those reads are not recorded.
            let sequence: Int64
            if phase == .commands {
                sequence = recorder.chunk(buffer, direction: .up)
            } else {
                sequence = recorder.chunk(ByteBuffer(string: "\(buffer.readableBytes) bytes of the login, not recorded"), direction: .up)
            }
            cut(buffer, fromClient: true, sequence: sequence, into: &actions)
        case .down:
            recorder.chunk(buffer, direction: .down)
            cut(buffer, fromClient: false, sequence: 0, into: &actions)
        }
    }

    func released(_ hold: RelayHold, verdict: Verdict, decidedBy: Decider, into actions: inout [RelayAction]) {
        guard let statement = held.removeValue(forKey: hold.id) else { return }
        switch verdict {
        case .forward(edited: nil):
            send(statement.packet, command: statement.command, commandIndex: statement.commandIndex, text: statement.text,
                 judgement: statement.judgement, settled: (.allowed, decidedBy), into: &actions)
        case .forward(edited: let edited?):
            recorder.edited(edited, from: hold.sequence, direction: .up)
            let sql = String(decoding: edited, as: UTF8.self)
            var payload = ByteBuffer()
            payload.writeInteger(statement.command.code)
            payload.writeString(sql)
            var packet = ByteBuffer()
            _ = MySQLPacketEncoder.writePacket(payload: payload, sequenceID: statement.sequenceID, into: &packet)
            let command: MySQLCommand
            switch statement.command {
            case .statementPrepare: command = .statementPrepare(sql: sql)
            default: command = .query(sql: sql, attributes: [])
            }
            send(packet, command: command, commandIndex: statement.commandIndex, text: sql, judgement: statement.judgement,
                 settled: (.allowed, decidedBy), into: &actions)
        case .drop, .block:
            var reason = "refused by the Sluice operator"
            if case .block(let message) = verdict, !message.isEmpty { reason = message }
            if decidedBy == .timeout { reason = "held by Sluice and not approved in time" }
            refuse(statement.command, sequenceID: statement.sequenceID, commandIndex: statement.commandIndex,
                   text: statement.text, judgement: statement.judgement, reason: "blocked by Sluice: \(reason)",
                   settled: (.blocked, decidedBy), into: &actions)
        case .kill:
            actions.append(.end(RelayEnding(failure: .proxy, "killed by the operator")))
        }
    }

    var bufferedBytes: Int { clientCutter.bufferedBytes + serverCutter.bufferedBytes }

    func relayEnded() {
        clientCutter.reset()
        serverCutter.reset()
        held = [:]
        inFlight = []
        inFlightStart = 0
    }

    // MARK: Framing

    /// Cuts what one side sent into packets; those that pass unchanged go on as runs of the input.
    private func cut(_ buffer: ByteBuffer, fromClient: Bool, sequence: Int64, into actions: inout [RelayAction]) {
        do {
            if fromClient {
                try clientCutter.cut(buffer, into: &actions) { (input: inout ByteBuffer) throws(MySQLProtocolError) in
                    try clientFramer.next(&input)
                } handle: { (frame: MySQLFrame, rest: ByteBuffer) throws(MySQLProtocolError) in
                    try clientFrame(frame, sequence: sequence, rest: rest)
                }
            } else {
                try serverCutter.cut(buffer, into: &actions) { (input: inout ByteBuffer) throws(MySQLProtocolError) in
                    try serverFramer.next(&input)
                } handle: { (frame: MySQLFrame, _: ByteBuffer) throws(MySQLProtocolError) in
                    try serverFrame(frame)
                }
            }
        } catch {
            actions.append(failure(fromClient, error.reason))
        }
    }

    // MARK: Server to client

    private func serverFrame(_ frame: MySQLFrame) throws(MySQLProtocolError) -> [RelayAction]? {
        switch phase {
        case .greeting:
            guard case .payload(let payload) = frame.kind else { throw MySQLProtocolError(kind: .unexpectedPacket, reason: "a greeting too large to read") }
            switch try MySQLHandshake.decodeGreeting(payload) {
            case .error(let error):
                recorder.failed(.server, "the server refused the connection: \(error.code) \(error.message)")
                return nil
            case .handshake(let handshake):
                capabilities = handshake.capabilities.subtracting(cleared)
                mariaDBCapabilities = handshake.mariaDBCapabilities ?? []
                phase = .handshakeResponse
                let rewritten = try MySQLHandshake.rewritingCapabilities(of: payload, clearing: cleared)
                var packet = ByteBuffer()
                _ = MySQLPacketEncoder.writePacket(payload: rewritten, sequenceID: frame.sequenceID, into: &packet)
                return [.pass(packet)]
            }
        case .handshakeResponse, .authentication:
            if case .payload(let payload) = frame.kind, let first = payload.getInteger(at: payload.readerIndex, as: UInt8.self) {
                if first == 0x00 {
                    phase = .commands
                } else if first == 0xFF {
                    let error = try MySQLErrorPacket(payload: payload, capabilities: capabilities)
                    recorder.failed(.server, "the server refused the login: \(error.code) \(error.message)")
                }
            }
            return nil
        case .commands:
            return try response(frame)
        }
    }

    /// A packet of the oldest in-flight command's response. When that completes, the command is finished, and any
    /// answers Sluice owes behind it go out after it.
    private func response(_ frame: MySQLFrame) throws(MySQLProtocolError) -> [RelayAction]? {
        guard inFlightStart < inFlight.count, case .server(var tracker) = inFlight[inFlightStart].reply else {
            throw MySQLProtocolError(
                kind: .unexpectedPacket, reason: "the server sent a packet (sequence \(frame.sequenceID)) while no command was waiting for one"
            )
        }
        let step = try tracker.receive(frame)
        inFlight[inFlightStart].reply = .server(tracker)
        guard step == .complete else { return nil }
        completed(tracker.summary)
        // Sluice's own answers that waited behind this response.
        var answers: [RelayAction] = []
        while inFlightStart < inFlight.count, case .sluice(let packet) = inFlight[inFlightStart].reply {
            answers.append(.pass(packet))
            popInFlight()
        }
        return answers.isEmpty ? nil : [.pass(frame.raw)] + answers
    }

    /// The oldest command's response is complete: its command finishes, a prepare's statement is kept.
    private func completed(_ summary: MySQLResponseSummary) {
        let entry = inFlight[inFlightStart]
        popInFlight()
        if var statement = entry.prepared {
            for case .prepared(let ok) in summary.results {
                statement.parameterCount = ok.parameterCount
                keep(statement, as: ok.statementID)
                lastPrepared = statement
            }
        }
        guard let index = entry.commandIndex else { return }
        if let error = summary.error {
            commands.finished(index, CommandOutcome(error: "ERROR \(error.code) (\(error.sqlState ?? "HY000")): \(error.message)"))
            return
        }
        var parts: [String] = []
        for result in summary.results {
            switch result {
            case .resultSet(let set): parts.append("\(set.rowCount) row\(set.rowCount == 1 ? "" : "s")")
            case .ok(let ok): parts.append("OK, \(ok.affectedRows) affected")
            case .prepared(let ok): parts.append("prepared #\(ok.statementID)")
            default: break
            }
        }
        commands.finished(index, CommandOutcome(result: parts.isEmpty ? "OK" : parts.joined(separator: "; ")))
    }

    /// What one session may make Sluice keep of its prepared statements: MariaDB's own default limit
    /// (`max_prepared_stmt_count`) and 64 MiB of their SQL, a bound on what a hostile client can make Sluice hold.
    /// Checked when a prepare arrives (`command`); prepares in flight may pass it by at most `maxInFlight`.
    static let maxStatements = 16_382
    static let maxStatementBytes = 64 << 20
    private var statementBytes = 0

    private func keep(_ statement: Statement, as id: UInt32) {
        statementBytes += statement.sql.utf8.count - (statements[id]?.sql.utf8.count ?? 0)
        statements[id] = statement
    }

    private func forget(statement id: UInt32) {
        statementBytes -= statements.removeValue(forKey: id)?.sql.utf8.count ?? 0
    }

    private func popInFlight() {
        inFlightStart += 1
        if inFlightStart == inFlight.count {
            inFlight.removeAll(keepingCapacity: true)
            inFlightStart = 0
        }
    }

    // MARK: Client to server

    /// - Parameter rest: what the client sent behind this packet in the same read.
    private func clientFrame(_ frame: MySQLFrame, sequence: Int64, rest: ByteBuffer) throws(MySQLProtocolError) -> [RelayAction]? {
        switch phase {
        case .greeting:
            throw MySQLProtocolError(kind: .unexpectedPacket, reason: "the client sent data before the server's greeting")
        case .handshakeResponse:
            guard case .payload(let payload) = frame.kind else { throw MySQLProtocolError(kind: .unexpectedPacket, reason: "a handshake response too large to read") }
            switch try MySQLClientHandshake(payload: payload) {
            case .sslRequest:
                // Offered only with tls=intercept and a server that speaks TLS, and asked for once.
                guard let tls, !secured, capabilities.contains(.ssl) else {
                    throw MySQLProtocolError(kind: .unexpectedPacket, reason: "the client asked for TLS, which this listener does not offer")
                }
                // The request goes on (less what Sluice clears), then TLS on both legs: Sluice's certificate to the
                // client, Sluice's own verified TLS to the server. The real answer comes next, inside them.
                secured = true
                let rewritten = try MySQLHandshakeResponse.rewritingCapabilities(of: payload, clearing: cleared)
                var packet = ByteBuffer()
                _ = MySQLPacketEncoder.writePacket(payload: rewritten, sequenceID: frame.sequenceID, into: &packet)
                return [.pass(packet), .securePartner(tls.server), .secureSender(tls.client, unread: rest)]
            case .response(let response):
                commands.user = response.user
                commands.database = response.database
                capabilities = capabilities.intersection(response.capabilities)
                // MariaDB's extended capabilities hold only when the client speaks them too (it then clears CLIENT_MYSQL).
                mariaDBCapabilities = mariaDBCapabilities.intersection(response.mariaDBCapabilities ?? [])
                phase = .authentication
                guard !response.capabilities.isDisjoint(with: cleared) else { return nil }
                let rewritten = try MySQLHandshakeResponse.rewritingCapabilities(of: payload, clearing: cleared)
                var packet = ByteBuffer()
                _ = MySQLPacketEncoder.writePacket(payload: rewritten, sequenceID: frame.sequenceID, into: &packet)
                return [.pass(packet)]
            }
        case .authentication:
            return nil
        case .commands:
            return try command(frame, sequence: sequence)
        }
    }

    private func command(_ frame: MySQLFrame, sequence: Int64) throws(MySQLProtocolError) -> [RelayAction]? {
        guard inFlight.count - inFlightStart < Self.maxInFlight else {
            throw MySQLProtocolError(kind: .unexpectedPacket, reason: "more than \(Self.maxInFlight) commands sent ahead of their responses")
        }
        // The client's LOCAL INFILE data goes to the command that asked for it.
        if inFlightStart < inFlight.count, case .server(var tracker) = inFlight[inFlight.count - 1].reply, tracker.awaitsClientData {
            _ = try tracker.clientSent(frame)
            inFlight[inFlight.count - 1].reply = .server(tracker)
            return nil
        }
        switch frame.kind {
        case .payload(let payload):
            let command = try MySQLCommand(payload: payload, capabilities: capabilities)
            if case .statementPrepare = command,
                statements.count >= Self.maxStatements || statementBytes + payload.readableBytes > Self.maxStatementBytes
            {
                throw MySQLProtocolError(
                    kind: .unexpectedPacket,
                    reason: "the session prepared more statements than Sluice keeps (\(Self.maxStatements), \(Self.maxStatementBytes >> 20) MiB of SQL)"
                )
            }
            return decide(command, payload: payload, frame: frame, sequence: sequence)
        case .streamStart(let head):
            // A command over the inspection cap (a huge INSERT): judged on its start, passed or refused whole.
            let command = try MySQLStreamedCommand(head: head, capabilities: capabilities)
            return streamed(command, frame: frame)
        case .streamPart(_, let isLast):
            return streamPart(isLast: isLast, frame: frame)
        }
    }

    /// Judges, records and passes, holds or refuses one command.
    private func decide(_ command: MySQLCommand, payload: ByteBuffer, frame: MySQLFrame, sequence: Int64) -> [RelayAction]? {
        let text: String
        switch command {
        case .query(let sql, _): text = sql
        case .statementPrepare(let sql): text = sql
        case .initDB(let schema): text = "USE `\(schema)`"
        case .statementExecute(let id, _):
            return execute(id, payload: payload, frame: frame)
        case .statementSendLongData(let id, _, _):
            // A refused statement does not exist on the server: what belongs to it goes nowhere.
            return statement(for: id)?.refusal != nil ? [] : nil
        case .statementClose(let id):
            let refused = statement(for: id)?.refusal != nil
            forget(statement: id)
            return refused ? [] : nil
        case .changeUser(let user, let database):
            commands.user = user
            commands.database = database
            phase = .authentication
            return nil
        case .quit:
            return nil
        default:
            track(command, commandIndex: nil, prepared: nil)
            return nil
        }
        let judgement = commands.judge(text, kind: .sql)
        let filterHolds = gate.isActive && judgement.action < .hold && gate.shouldHold(subject(text))
        let isPrepare: Bool
        if case .statementPrepare = command { isPrepare = true } else { isPrepare = false }
        if isPrepare, judgement.action < .hold, !filterHolds {
            // Its executions are the commands; the alert is raised once.
            if judgement.action == .alert {
                commands.alert(level: judgement.risk, rule: judgement.rule ?? "policy", "\(commands.user)@\(commands.database ?? "?") prepared: \(text)")
            }
            lastPrepared = Statement(sql: text, judgement: judgement)
            track(command, commandIndex: nil, prepared: lastPrepared)
            return nil
        }
        let recorded = commands.record(text, kind: .sql, judgement: judgement, settled: filterHolds ? (.pending, nil) : nil)
        if judgement.action < .hold && !filterHolds {
            if case .initDB(let schema) = command { commands.database = schema }
            track(command, commandIndex: recorded.index, prepared: nil)
            return nil
        }
        if judgement.action == .block {
            var actions: [RelayAction] = []
            refuse(command, sequenceID: frame.lastSequenceID, commandIndex: recorded.index, text: text, judgement: judgement,
                   reason: "blocked by Sluice policy: \(judgement.reason)", settled: nil, into: &actions)
            return actions
        }
        let id = nextHold
        nextHold += 1
        held[id] = Held(
            packet: frame.raw, sequenceID: frame.lastSequenceID, text: text, command: command, judgement: judgement,
            commandIndex: recorded.index
        )
        return [.hold(RelayHold(id: id, sequence: sequence, direction: .up, payload: Data(text.utf8), command: recorded))]
    }

    /// An execution of a prepared statement: one command, with the statement's text and its parameters.
    private func execute(_ id: UInt32, payload: ByteBuffer, frame: MySQLFrame) -> [RelayAction]? {
        guard var statement = statement(for: id) else {
            // Not one Sluice saw prepared: the server answers (usually ERR 1243, unknown handler).
            let recorded = commands.record("-- execute of statement \(id), whose prepare Sluice did not see", kind: .sql, judgement: commands.judge("", kind: .sql))
            track(.statementExecute(statementID: id, flags: 0), commandIndex: recorded.index, prepared: nil)
            return nil
        }
        var parameters: [String]?
        if let decoded = try? MySQLCommand.decodeExecute(
            payload, parameterCount: statement.parameterCount, boundTypes: statement.boundTypes, capabilities: capabilities
        ) {
            parameters = decoded.parameterTexts.map { $0 ?? "NULL" }
            if decoded.typesWereSent {
                statement.boundTypes = decoded.parameterTypes
                if id == Self.justPrepared { lastPrepared = statement } else { statements[id] = statement }  // same text: same bytes
            }
        }
        let recorded = commands.record(
            statement.sql, kind: .sql, judgement: statement.judgement, parameters: parameters, alerting: false,
            settled: statement.settled.map { ($0.decision, $0.by) } ?? (statement.refusal != nil ? (.blocked, .policy) : nil)
        )
        if let refusal = statement.refusal {
            let error = MySQLPacketEncoder.errorPacket(code: 1142, sqlState: "42000", message: refusal, sequenceID: frame.lastSequenceID &+ 1)
            commands.finished(recorded.index, CommandOutcome(error: "ERROR 1142 (42000): \(refusal)"))
            return answer(error)
        }
        track(.statementExecute(statementID: id, flags: 0), commandIndex: recorded.index, prepared: nil)
        return nil
    }

    /// A prepared statement by its id; MariaDB's "the statement just prepared" is the last COM_STMT_PREPARE sent
    /// (its id may not even be known yet: connectors pipeline the execution behind it).
    private func statement(for id: UInt32) -> Statement? {
        id == Self.justPrepared ? lastPrepared : statements[id]
    }

    /// Sends a held command on once it is allowed.
    private func send(
        _ packet: ByteBuffer, command: MySQLCommand, commandIndex: Int64, text: String, judgement: Judgement,
        settled: (decision: CommandDecision, by: Decider), into actions: inout [RelayAction]
    ) {
        var prepared: Statement?
        if case .statementPrepare = command {
            prepared = Statement(sql: text, judgement: judgement, settled: settled)
            lastPrepared = prepared
        }
        if case .initDB(let schema) = command { commands.database = schema }
        track(command, commandIndex: commandIndex, prepared: prepared)
        actions.append(.pass(packet))
    }

    /// Answers a command with an ERR 1142 instead of sending it: at once when nothing is in flight, else after the
    /// responses before it.
    private func refuse(
        _ command: MySQLCommand, sequenceID: UInt8, commandIndex: Int64, text: String, judgement: Judgement, reason: String,
        settled: (decision: CommandDecision, by: Decider)?, into actions: inout [RelayAction]
    ) {
        if case .statementPrepare = command {
            // No statement exists; its executions, the one pipelined as "just prepared" too, are refused as well.
            lastPrepared = Statement(sql: text, judgement: judgement, settled: settled ?? (.blocked, .policy), refusal: reason)
        }
        let error = MySQLPacketEncoder.errorPacket(code: 1142, sqlState: "42000", message: reason, sequenceID: sequenceID &+ 1)
        commands.finished(commandIndex, CommandOutcome(error: "ERROR 1142 (42000): \(reason)"))
        actions.append(contentsOf: answer(error))
    }

    /// Sluice's own answer to the client: now, or queued behind the responses still owed.
    private func answer(_ packet: ByteBuffer) -> [RelayAction] {
        if inFlightStart == inFlight.count { return [.answer(packet)] }
        inFlight.append(InFlight(reply: .sluice(packet)))
        return []
    }

    /// Commands a client may send ahead of their responses. Clients pipeline a few (a prepare and its execution);
    /// each waiting one costs Sluice a tracker, so a peer may not queue without bound.
    static let maxInFlight = 4096

    private func track(_ command: MySQLCommand, commandIndex: Int64?, prepared: Statement?) {
        let tracker = MySQLResponseTracker(command: command, capabilities: capabilities, mariaDBCapabilities: mariaDBCapabilities)
        // Commands the server does not answer finish at once.
        guard !tracker.isComplete else {
            if let commandIndex { commands.finished(commandIndex, CommandOutcome(result: "sent")) }
            return
        }
        inFlight.append(InFlight(reply: .server(tracker), commandIndex: commandIndex, prepared: prepared))
    }

    // MARK: Streamed commands

    /// Whether the streamed command's parts go on (nil) or are dropped because it was refused.
    private var refusingStream: (sequenceID: UInt8, reason: String, commandIndex: Int64)?

    /// A command over the inspection cap: a query or prepare is judged on its start (one the policy would hold is
    /// refused, since it cannot be held); the rest are tracked as what they are, so the responses that follow
    /// stay matched to their commands.
    private func streamed(_ command: MySQLStreamedCommand, frame: MySQLFrame) -> [RelayAction]? {
        switch command {
        case .query(let start), .statementPrepare(let start):
            let text = start + " …"
            let judgement = commands.judge(start, kind: .sql)
            let isPrepare: Bool
            if case .statementPrepare = command { isPrepare = true } else { isPrepare = false }
            let recorded = commands.record(text, kind: .sql, judgement: judgement)
            guard judgement.action >= .hold else {
                if isPrepare {
                    lastPrepared = Statement(sql: text, judgement: judgement)
                    track(.statementPrepare(sql: start), commandIndex: recorded.index, prepared: lastPrepared)
                } else {
                    track(.query(sql: start, attributes: []), commandIndex: recorded.index, prepared: nil)
                }
                return nil
            }
            let reason = "blocked by Sluice policy: \(judgement.reason) (a statement too large to hold is refused)"
            if isPrepare { lastPrepared = Statement(sql: text, judgement: judgement, settled: (.blocked, .policy), refusal: reason) }
            refusingStream = (frame.sequenceID, reason, recorded.index)
            return []
        case .statementExecute(let id):
            // Its parameters are too large to show; the statement's verdict stands as for any execution.
            guard let statement = statement(for: id) else {
                track(.statementExecute(statementID: id, flags: 0), commandIndex: nil, prepared: nil)
                return nil
            }
            let recorded = commands.record(
                statement.sql, kind: .sql, judgement: statement.judgement, parameters: ["(too large to show)"], alerting: false,
                settled: statement.settled.map { ($0.decision, $0.by) }
            )
            if let refusal = statement.refusal {
                refusingStream = (frame.sequenceID, refusal, recorded.index)
                return []
            }
            track(.statementExecute(statementID: id, flags: 0), commandIndex: recorded.index, prepared: nil)
            return nil
        case .statementSendLongData(let id, _):
            // No response; a refused statement's data goes nowhere.
            if statement(for: id)?.refusal != nil {
                droppingStream = true
                return []
            }
            return nil
        case .bulkExecute(let id):
            track(.bulkExecute(statementID: id, flags: 0), commandIndex: nil, prepared: nil)
            return nil
        case .other(let code):
            track(.other(code), commandIndex: nil, prepared: nil)
            return nil
        }
    }

    /// The parts of a streamed command that goes nowhere and is answered by nobody (a refused statement's long data).
    private var droppingStream = false

    private func streamPart(isLast: Bool, frame: MySQLFrame) -> [RelayAction]? {
        if droppingStream {
            if isLast { droppingStream = false }
            return []
        }
        guard let refusing = refusingStream else { return nil }
        guard isLast else { return [] }
        refusingStream = nil
        let error = MySQLPacketEncoder.errorPacket(
            code: 1142, sqlState: "42000", message: refusing.reason, sequenceID: frame.lastSequenceID &+ 1
        )
        commands.finished(refusing.commandIndex, CommandOutcome(error: "ERROR 1142 (42000): \(refusing.reason)"))
        return answer(error)
    }

    private func subject(_ sql: String) -> FilterSubject {
        var subject = recorder.subject(direction: .up, payload: Data(sql.utf8))
        subject.commands = [sql]
        return subject
    }

    // MARK: Failing

    /// A side broke the protocol: the connection ends; the client is told why in an ERR 1835.
    private func failure(_ fromClient: Bool, _ reason: String) -> RelayAction {
        failed = true
        let message = fromClient ? "the client broke the MySQL protocol: \(reason)" : "the server broke the MySQL protocol: \(reason)"
        let error = MySQLPacketEncoder.errorPacket(code: 1835, sqlState: "HY000", message: "Sluice: \(message)", sequenceID: 0xFF)
        return .end(RelayEnding(failure: (fromClient ? .client : .server, message), toClient: error))
    }
}
