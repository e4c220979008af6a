import SluiceModel

/// A recorded SQL statement to run again from the Commands view.
public struct StatementRerun: Sendable, Equatable {
    public var flowID: FlowID
    /// The command's position in its flow.
    public var index: Int64
    public var risk: RiskLevel
    public var user: String
    /// Where its session went, e.g. `127.0.0.1:5432`.
    public var target: String

    public init(_ command: Command) {
        flowID = command.flowID
        index = command.index
        risk = command.risk
        user = command.user
        target = command.target
    }
}

/// What a re-run came to, for the status line.
public struct RerunOutcome: Sendable, Equatable {
    public var line: String
    public var failed: Bool
    /// The server refused the login: the TUI asks for the password and tries again.
    public var loginRefused: Bool

    public init(line: String, failed: Bool, loginRefused: Bool = false) {
        self.line = line
        self.failed = failed
        self.loginRefused = loginRefused
    }
}

/// `r`: sends recorded traffic again through the running engine, recorded as a new flow linked to the original.
extension App {
    /// In the flows list and the detail, the HTTP request; in the Commands view, the selected SQL statement.
    func replaySelected() {
        guard let replayer else { return noEngine() }
        if view == .commands { return rerunSelectedStatement() }
        guard let id = view == .detail ? detail?.flowID : selectedRow?.id else { return }
        setStatus("replaying flow \(id)…")
        replayer.replay(id) { [inbox] line, failed in
            inbox.post { app in app.setStatus(line, isError: failed) }
        }
    }

    /// A statement above low risk runs only once the operator types `y`: a re-run is a new change to the database.
    private func rerunSelectedStatement() {
        guard let command = log.commands.selectedRow?.command else { return }
        guard command.kind == .sql else {
            return setStatus("only SQL statements can be re-run; a shell line belongs to its terminal session", isError: true)
        }
        let statement = StatementRerun(command)
        if statement.risk > .low {
            prompt = Prompt(kind: .confirmRerun(statement), text: "")
        } else {
            rerun(statement)
        }
    }

    /// Runs the statement; when the server refuses the login, asks for the password and runs it again with that.
    /// - Parameter password: just typed at the prompt; else the one typed earlier for the same user and target.
    func rerun(_ statement: StatementRerun, password: String? = nil) {
        guard let replayer else { return noEngine() }
        let key = "\(statement.user)@\(statement.target)"
        if let password { rerunPasswords[key] = password }
        let known = rerunPasswords[key]
        setStatus("re-running statement \(statement.index + 1) of flow \(statement.flowID)…")
        replayer.rerun(statement, password: known) { [inbox] outcome in
            inbox.post { app in
                guard outcome.loginRefused else { return app.setStatus(outcome.line, isError: outcome.failed) }
                app.rerunPasswords[key] = nil
                app.prompt = Prompt(kind: .password(statement), text: "", error: known == nil ? nil : outcome.line)
            }
        }
    }
}
