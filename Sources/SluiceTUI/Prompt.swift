import SluiceModel

/// The status line's one line of input: a filter, a search, a file name, a message to send. It edits its text; what
/// a submitted text does is the app's to decide.
struct Prompt: Equatable {
    enum Kind: Equatable {
        case filter, intercept, search, save
        /// Why the held message or command is blocked.
        case block
        /// A text message to send into the open WebSocket: to the server (`up`) or to the client.
        case send(Direction)
        /// `:listen SPEC`, `:stop N`.
        case command
        /// `y` to re-run a statement rated above low risk.
        case confirmRerun(StatementRerun)
        /// The database password a re-run logs in with (shown as dots, kept for this session only).
        case password(StatementRerun)

        var label: String {
            switch self {
            case .command: return ""
            case .filter: return "filter"
            case .intercept: return "intercept"
            case .search: return "search"
            case .save: return "save as"
            case .block: return "block, saying"
            case .send(let direction): return direction == .up ? "send to server" : "send to client"
            case .confirmRerun(let statement):
                return "re-run this \(statement.risk.rawValue)-risk statement against \(statement.target)? y/N"
            case .password(let statement): return "password for \(statement.user)@\(statement.target)"
            }
        }

        /// What the status line shows before the text: `filter: `, or `:` for the command line.
        var prefix: String { self == .command ? ":" : label + ": " }

        /// Typed text is not shown (a password).
        var isSecret: Bool {
            if case .password = self { return true }
            return false
        }
    }

    /// What a key did to the prompt.
    enum Outcome: Equatable {
        /// The text changed.
        case edited
        /// A key the prompt does not take; nothing changed.
        case ignored
        /// Esc: the prompt is abandoned.
        case cancelled
        /// Enter: the app acts on the text (and may leave the prompt open with an `error`).
        case submitted
    }

    var kind: Kind
    var text: String
    /// Why the submitted text was refused, shown after it until the next edit.
    var error: String?

    init(kind: Kind, text: String, error: String? = nil) {
        self.kind = kind
        self.text = text
        self.error = error
    }

    /// The text as the status line shows it: dots for a secret.
    var shownText: String { kind.isSecret ? String(repeating: "•", count: text.count) : text }

    mutating func handle(_ key: Key) -> Outcome {
        switch key {
        case .escape: return .cancelled
        case .enter: return .submitted
        case .backspace:
            if !text.isEmpty { text.removeLast() }
        case .control("u"):
            text = ""
        case .character(let character):
            text.append(character)
        default:
            return .ignored
        }
        error = nil
        return .edited
    }
}

/// A line for the status bar: what a key did, or why it could not.
struct StatusMessage: Equatable {
    var text: String
    var isError: Bool

    init(_ text: String, isError: Bool = false) {
        self.text = text
        self.isError = isError
    }

    static func error(_ text: String) -> StatusMessage { StatusMessage(text, isError: true) }
}
