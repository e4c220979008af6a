import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// A recorded database session (a `postgres` or `mysql` flow) made ready to send again: the listener it came in on
/// (so the replay passes the same inspector, policy and TLS settings), who logs in, and its statements in order.
struct DatabaseSessionReplay {
    var original: FlowID
    var kind: FlowKind
    var spec: ListenSpec
    var login: DatabaseLogin
    var statements: [ReplayStatement]
    /// Statements the policy blocked when they were recorded: the server never ran them, so the replay leaves them
    /// out.
    var leftOut = 0

    /// The flow kinds whose sessions replay as statements.
    static let kinds: Set<String> = [FlowKind.postgres.rawValue, FlowKind.mysql.rawValue]

    /// Reads flow `id`'s session from the store.
    /// - Parameters:
    ///   - only: replay just this command of the flow (the TUI's `r` on one statement), blocked or not.
    /// - Throws: one line saying why the flow cannot be replayed.
    static func load(
        _ id: FlowID, store: Store, only: Int64? = nil, target: Endpoint?, credentials: DatabaseCredentials
    ) throws -> DatabaseSessionReplay {
        guard let flow = try store.flow(id) else { throw DatabaseReplayError("no flow \(id) in the store", mayBeUnwritten: true) }
        guard kinds.contains(flow.kind), let kind = FlowKind(rawValue: flow.kind) else {
            throw DatabaseReplayError("flow \(id) is \(flow.kind), not a database session")
        }
        var spec: ListenSpec
        do {
            spec = try ListenSpec(parsing: flow.listener, schemes: ListenSchemes.all)
        } catch {
            throw DatabaseReplayError("flow \(id) came in on \(flow.listener), which this build cannot serve: \(error)")
        }
        if spec.scheme.isTransparent, let scheme = ListenSchemes.all.first(where: { $0.name == kind.rawValue }) {
            // A transparent listener handed the session to its database module: replayed through that module.
            spec = ListenSpec(scheme: scheme, listen: spec.listen, target: nil)
        }
        spec.target = target ?? Endpoint(parsing: flow.server)
        // One statement (the TUI's `r`) is read alone: a session may hold a hundred thousand.
        let recorded: [Command]
        if let only {
            recorded = try store.command(flow: id, index: only).map { [$0.command] } ?? []
        } else {
            recorded = try store.commands(flow: id, limit: maxStatements + 1).map(\.command)
        }
        let commands = recorded.filter { $0.kind == .sql }
        guard let first = commands.first else {
            throw DatabaseReplayError("flow \(id) has no recorded statements", mayBeUnwritten: true)
        }
        guard commands.count <= maxStatements else {
            throw DatabaseReplayError("flow \(id) has more than \(maxStatements) statements; replay fewer with the TUI's r")
        }
        let sent = only == nil ? commands.filter { $0.decision != .blocked } : commands
        let login = DatabaseLogin(
            user: credentials.user ?? first.user, database: credentials.database ?? first.database,
            password: credentials.password ?? DatabaseCredentials.environmentPassword(for: kind)
        )
        return DatabaseSessionReplay(
            original: id, kind: kind, spec: spec, login: login, statements: sent.map(statement), leftOut: commands.count - sent.count
        )
    }

    /// The TUI and the control API show what the engine publishes before the store's writer has committed it (a
    /// batch, longer on a busy machine): a statement just listed may not be readable yet, so its session is read
    /// again for a while. Called off the event loops (a background queue, the API's route queue).
    static func loadWhenStored(_ load: () throws -> DatabaseSessionReplay) throws -> DatabaseSessionReplay {
        let deadline = Date().addingTimeInterval(3)
        while true {
            do {
                return try load()
            } catch let error as DatabaseReplayError where error.mayBeUnwritten && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// A session replays at most this many statements (a recorded pgbench run has millions).
    static let maxStatements = 100_000

    /// A command as its statement: bind parameters as recorded, `NULL` as SQL NULL.
    static func statement(_ command: Command) -> ReplayStatement {
        ReplayStatement(text: command.text, parameters: command.parameters.map { values in values.map { $0 == "NULL" ? nil : $0 } })
    }
}

/// Who a database replay logs in as, when not the recorded user, and the password: Sluice never records one.
struct DatabaseCredentials {
    var user: String?
    var database: String?
    var password: String?

    /// The password the database's own clients would take from the environment: `PGPASSWORD` (psql, libpq) or
    /// `MYSQL_PWD` (mysql, MariaDB's client).
    static func environmentPassword(for kind: FlowKind) -> String? {
        let name = kind == .postgres ? "PGPASSWORD" : "MYSQL_PWD"
        return ProcessInfo.processInfo.environment[name]
    }

    /// The first line of `path` (a password file, as `--password-file` names it).
    static func password(fromFile path: String) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: Configuration.expandTilde(path)))
        } catch {
            throw DatabaseReplayError("cannot read the password file \(path): \(describeFileError(error))")
        }
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
    }
}

/// Where `--target` sends a database replay: `HOST:PORT`, also written `postgres://HOST:PORT` or `mysql://HOST:PORT`.
enum DatabaseTarget {
    static func parse(_ text: String) -> Endpoint? {
        var rest = Substring(text)
        if let scheme = rest.range(of: "://") {
            guard ["postgres", "postgresql", "mysql", "tcp"].contains(rest[..<scheme.lowerBound].lowercased()) else { return nil }
            rest = rest[scheme.upperBound...]
        }
        let endpoint = Endpoint(parsing: String(rest))
        guard !endpoint.host.isEmpty, (1...65535).contains(endpoint.port), !rest.contains("/") else { return nil }
        return endpoint
    }
}

struct DatabaseReplayError: Error, CustomStringConvertible {
    var description: String
    /// What was looked for may be on its way to the store (the TUI lists events before their batch is committed).
    var mayBeUnwritten = false

    init(_ description: String, mayBeUnwritten: Bool = false) {
        self.description = description
        self.mayBeUnwritten = mayBeUnwritten
    }
}

/// What `sluice replay` prints for a database session.
enum DatabaseReplayReport {
    /// `#15 <- #12 postgres alice@app 127.0.0.1:5432 -> 8 statements, 1 error`, then a line for each error.
    static func lines(_ result: DatabaseReplayResult, replay: DatabaseSessionReplay) -> [String] {
        let new = result.flowID.map { "#\($0)" } ?? "#-"
        let who = replay.login.user + (replay.login.database.map { "@\($0)" } ?? "")
        var head = "\(new) <- #\(replay.original) \(replay.kind.rawValue) \(who) \(replay.spec.target.map(\.description) ?? "?") -> "
        let errors = result.outcomes.enumerated().filter { $0.element.error != nil }
        head += "\(result.outcomes.count) of \(replay.statements.count) statements answered, \(errors.count) error\(errors.count == 1 ? "" : "s")"
        if replay.leftOut > 0 { head += "; \(replay.leftOut) left out (blocked when recorded)" }
        if let failure = result.failure { head += "; stopped: \(failure)" }
        var lines = [head]
        for (index, outcome) in errors {
            let text = shortened(replay.statements[index].text)
            lines.append("  \(index + 1): \(text) -> error \(outcome.error ?? "")")
        }
        return lines
    }

    /// A statement on one line, its first 60 characters.
    private static func shortened(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return line.count > 60 ? line.prefix(59) + "…" : line
    }
}
