import NIOCore

/// A database client as a sans-I/O state machine: it logs in, then runs one statement at a time. Replays drive one
/// (`DatabaseReplayHandler`) through the engine's own relay, so what it sends is inspected, judged and recorded like
/// any client's statements. Each database module brings its own (`PostgresClientSession`, `MySQLClientSession`).
public protocol DatabaseClientSession {
    /// What to send once connected: PostgreSQL's StartupMessage; nothing for MySQL, whose server speaks first.
    mutating func start() -> ByteBuffer?

    /// Takes the next bytes from the server (any split: a message may arrive in pieces or many at once).
    /// - Returns: what the driver should do, in order.
    /// - Throws: when the server's bytes break the protocol, or it refuses the login.
    mutating func receive(_ bytes: ByteBuffer) throws(DatabaseClientError) -> [DatabaseClientStep]

    /// The bytes that run `statement`. Call only once `.ready` came, and after that only after each `.finished`.
    /// - Throws: when the statement cannot be sent as recorded (a parameter the record cut short).
    mutating func run(_ statement: ReplayStatement) throws(DatabaseClientError) -> ByteBuffer

    /// The polite goodbye (Terminate, COM_QUIT), sent before closing.
    func quit() -> ByteBuffer
}

/// What a client session asks its driver to do.
public enum DatabaseClientStep: Sendable, Equatable {
    /// Write these bytes to the server (authentication answers).
    case send(ByteBuffer)
    /// Logged in: the first statement may run.
    case ready
    /// The statement that ran is done, with the server's answer.
    case finished(ReplayOutcome)
}

/// A statement to run again, as its command was recorded.
public struct ReplayStatement: Sendable, Equatable {
    public var text: String
    /// The bind parameters as recorded, in order (nil: the statement ran as plain text, without any). A nil element
    /// is SQL NULL.
    public var parameters: [String?]?

    public init(text: String, parameters: [String?]? = nil) {
        self.text = text
        self.parameters = parameters
    }
}

/// What the server answered to one statement.
public struct ReplayOutcome: Sendable, Equatable {
    /// The server's summary: a command tag (`INSERT 0 1`, `SELECT 3`), `3 rows`, `OK, 1 row affected`.
    public var summary: String
    /// The server's error, when it refused the statement: `42501: permission denied for table t`.
    public var error: String?

    public init(summary: String, error: String? = nil) {
        self.summary = summary
        self.error = error
    }
}

/// Who a replay logs in as. The password is used for the login only: never recorded, never logged.
public struct DatabaseLogin: Sendable {
    public var user: String
    /// The database to connect to (PostgreSQL's `database`, MySQL's initial schema); nil for the server's default.
    public var database: String?
    public var password: String?

    public init(user: String, database: String?, password: String?) {
        self.user = user
        self.database = database
        self.password = password
    }
}

/// Why a database client session cannot go on, in one line.
public struct DatabaseClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
