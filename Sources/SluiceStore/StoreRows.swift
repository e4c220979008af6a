import Foundation
import GRDB
import SluiceModel

/// The SQL the store writer runs for each kind of event, prepared once on its connection (see `RowStatement`).
/// Used by the writer thread only, inside its transactions.
///
/// Rows are added with `INSERT OR IGNORE`: a flow, exchange, message or command is published once, so a row that is
/// already there can only come from writing the same events again, and the first copy is kept. Not `OR REPLACE`:
/// a statement that may delete rows needs SQLite's statement journal, which copies every page the statement touches
/// (16 KiB each) before changing it, about a sixth of the writer's instructions per HTTP exchange.
final class StoreRows {
    private let flowInsert: RowStatement
    private let flowClose: RowStatement
    private let exchangeInsert: RowStatement
    private let responseUpdate: RowStatement
    private let messageInsert: RowStatement
    private let errorInsert: RowStatement
    private let heldUpdate: RowStatement
    private let releasedUpdate: RowStatement
    private let commandInsert: RowStatement
    private let commandDecision: RowStatement
    private let commandOutcome: RowStatement
    private let alertInsert: RowStatement

    init(_ db: Database) throws {
        flowInsert = try RowStatement(
            """
            INSERT OR IGNORE INTO flows
                (id, kind, listener, client, server, started_at, ended_at, bytes_up, bytes_down, state, error, payload_truncated,
                 head_bytes_up, head_bytes_down, replay_of_flow, session_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, in: db)
        flowClose = try RowStatement(
            """
            UPDATE flows SET ended_at = ?, bytes_up = ?, bytes_down = ?, state = ?, error = ?, payload_truncated = ?,
                head_bytes_up = ?, head_bytes_down = ?
            WHERE id = ?
            """, in: db)
        exchangeInsert = try RowStatement(
            """
            INSERT OR IGNORE INTO http
                (flow_id, requested_at, method, url, version, request_headers, replay_of,
                 responded_at, status, reason, response_version, response_headers, synthetic, connect_ms, tls_ms, first_byte_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, in: db)
        responseUpdate = try RowStatement(
            """
            UPDATE http SET responded_at = ?, status = ?, reason = ?, response_version = ?, response_headers = ?,
                synthetic = ?, connect_ms = ?, tls_ms = ?, first_byte_ms = ?
            WHERE flow_id = ?
            """, in: db)
        messageInsert = try RowStatement(
            """
            INSERT OR IGNORE INTO messages (flow_id, seq, direction, at, size, payload, edited_from_seq, kind, body_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, in: db)
        errorInsert = try RowStatement("INSERT INTO errors (flow_id, at, phase, message) VALUES (?, ?, ?, ?)", in: db)
        heldUpdate = try RowStatement("UPDATE messages SET disposition = 'held' WHERE flow_id = ? AND seq = ?", in: db)
        releasedUpdate = try RowStatement("UPDATE messages SET disposition = ? WHERE flow_id = ? AND seq = ?", in: db)
        commandInsert = try RowStatement(
            """
            INSERT OR IGNORE INTO commands
                (flow_id, idx, at, kind, text, user, target, risk, action, rule, decision, decided_by, decided_at, database, parameters,
                 exit_status, exit_signal, result, error, finished_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, in: db)
        commandDecision = try RowStatement(
            "UPDATE commands SET decision = ?, decided_by = ?, decided_at = ? WHERE flow_id = ? AND idx = ?", in: db
        )
        commandOutcome = try RowStatement(
            """
            UPDATE commands SET exit_status = ?, exit_signal = ?, result = ?, error = ?, finished_at = ?
            WHERE flow_id = ? AND idx = ?
            """, in: db)
        alertInsert = try RowStatement(
            "INSERT INTO alerts (flow_id, command_idx, at, level, rule, message) VALUES (?, ?, ?, ?, ?, ?)", in: db
        )
    }

    /// A command's row, with its outcome when that is known too.
    func insertCommand(_ command: Command, finished: CommandFinished?, in db: Database) throws(StoreError) {
        try commandInsert.run(in: db) { row in
            row.int(command.flowID.rawValue)
            row.int(command.index)
            row.time(command.time)
            row.text(command.kind.rawValue)
            row.text(command.text)
            row.text(command.user)
            row.text(command.target)
            row.text(command.risk.rawValue)
            row.text(command.action.rawValue)
            row.text(command.rule)
            row.text(command.decision.rawValue)
            row.text(command.decidedBy?.rawValue)
            if command.decidedBy == nil { row.null() } else { row.time(command.time) }
            row.text(command.database)
            row.text(command.parameters.map { JSONObject().optionalStrings("p", $0).line })
            row.int(finished?.outcome.exitStatus.map(Int64.init))
            row.text(finished?.outcome.exitSignal)
            row.text(finished?.outcome.result)
            row.text(finished?.outcome.error)
            if let finished { row.time(finished.time) } else { row.null() }
        }
    }

    /// A flow's row: open, or complete when its close is known too.
    func insertFlow(_ opened: FlowOpened, closed: FlowClosed?, in db: Database) throws(StoreError) {
        try flowInsert.run(in: db) { row in
            row.int(opened.flowID.rawValue)
            row.text(opened.kind.rawValue)
            row.text(opened.listener)
            row.text(opened.client)
            row.text(opened.server)
            row.time(opened.time)
            if let closed {
                Self.bindClose(closed, to: &row)
            } else {
                row.null()
                row.int(0)
                row.int(0)
                row.text(FlowState.open.rawValue)
                row.null()
                row.bool(false)
                row.int(0)
                row.int(0)
            }
            row.int(opened.replayOf?.rawValue)
            row.int(opened.session?.rawValue)
        }
    }

    /// An exchange's row: the request, with the response when it is known too. Headers come as JSON text.
    func insertExchange(
        _ request: HTTPRequestStarted, headers: [UInt8], response: (HTTPResponseStarted, headers: [UInt8])?, in db: Database
    ) throws(StoreError) {
        try exchangeInsert.run(in: db) { row in
            row.int(request.flowID.rawValue)
            row.time(request.time)
            row.text(request.method)
            row.text(request.url)
            row.text(request.version)
            row.text(utf8: headers)
            row.int(request.replayOf?.rawValue)
            if let (response, headers) = response {
                Self.bindResponse(response, headers: headers, to: &row)
            } else {
                for _ in 0..<5 { row.null() }
                row.bool(false)
                for _ in 0..<3 { row.null() }
            }
        }
    }

    /// Any event on its own: updates for flows and exchanges begun in an earlier batch, messages, errors, holds.
    func write(_ event: ProxyEvent, bodyID: Int64?, headers: [UInt8]?, in db: Database) throws(StoreError) {
        switch event {
        case .flowOpened(let opened):
            try insertFlow(opened, closed: nil, in: db)
        case .httpRequest(let request):
            try insertExchange(request, headers: headers ?? [], response: nil, in: db)
        case .httpResponse(let response):
            try responseUpdate.run(in: db) { row in
                Self.bindResponse(response, headers: headers ?? [], to: &row)
                row.int(response.flowID.rawValue)
            }
        case .flowClosed(let closed):
            try flowClose.run(in: db) { row in
                Self.bindClose(closed, to: &row)
                row.int(closed.flowID.rawValue)
            }
        case .message(let message):
            try messageInsert.run(in: db) { row in
                row.int(message.flowID.rawValue)
                row.int(message.sequence)
                row.text(message.direction.rawValue)
                row.time(message.time)
                row.int(message.size)
                // A body kept once in `bodies` leaves its message an empty payload and the row's id.
                row.blob(bodyID == nil ? message.payload : Data())
                row.int(message.editedFromSequence)
                row.text(message.kind.rawValue)
                row.int(bodyID)
            }
        case .flowError(let error):
            try errorInsert.run(in: db) { row in
                row.int(error.flowID.rawValue)
                row.time(error.time)
                row.text(error.phase.rawValue)
                row.text(error.message)
            }
        case .messageHeld(let held):
            try heldUpdate.run(in: db) { row in
                row.int(held.flowID.rawValue)
                row.int(held.sequence)
            }
        case .messageReleased(let released):
            try releasedUpdate.run(in: db) { row in
                row.text(released.verdict.disposition)
                row.int(released.flowID.rawValue)
                row.int(released.sequence)
            }
        case .command(let command):
            try insertCommand(command, finished: nil, in: db)
        case .commandDecided(let decided):
            try commandDecision.run(in: db) { row in
                row.text(decided.decision.rawValue)
                row.text(decided.decidedBy.rawValue)
                row.time(decided.time)
                row.int(decided.flowID.rawValue)
                row.int(decided.index)
            }
        case .commandFinished(let finished):
            try commandOutcome.run(in: db) { row in
                row.int(finished.outcome.exitStatus.map(Int64.init))
                row.text(finished.outcome.exitSignal)
                row.text(finished.outcome.result)
                row.text(finished.outcome.error)
                row.time(finished.time)
                row.int(finished.flowID.rawValue)
                row.int(finished.index)
            }
        case .alert(let alert):
            try alertInsert.run(in: db) { row in
                row.int(alert.flowID?.rawValue)
                row.int(alert.commandIndex)
                row.time(alert.time)
                row.text(alert.level.rawValue)
                row.text(alert.rule)
                row.text(alert.message)
            }
        }
    }

    /// The close's six columns, in the order both statements name them.
    private static func bindClose(_ closed: FlowClosed, to row: inout RowStatement.Bindings) {
        row.time(closed.time)
        row.int(closed.bytesUp)
        row.int(closed.bytesDown)
        row.text(closed.state.rawValue)
        row.text(closed.error)
        row.bool(closed.payloadTruncated)
        row.int(closed.headBytesUp)
        row.int(closed.headBytesDown)
    }

    /// The response's nine columns, in the order both statements name them.
    private static func bindResponse(_ response: HTTPResponseStarted, headers: [UInt8], to row: inout RowStatement.Bindings) {
        row.time(response.time)
        row.int(response.status)
        row.text(response.reason)
        row.text(response.version)
        row.text(utf8: headers)
        row.bool(response.synthetic)
        row.double(response.timings.connect)
        row.double(response.timings.tls)
        row.double(response.timings.firstByte)
    }
}
