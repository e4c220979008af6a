/// One event of a recording, at its time since the start (v3's intervals are added up when read).
public struct AsciicastEvent: Sendable, Equatable {
    /// What the event carries; asciicast's one-letter codes.
    public enum Code: Sendable, Equatable {
        /// "o": bytes the terminal displayed.
        case output
        /// "i": keys typed (recorded only when enabled, since they hold passwords).
        case input
        /// "r": the terminal's new size, "COLSxROWS".
        case resize
        /// "m": a marker a player can jump to (Sluice puts one at each captured command).
        case marker
        /// "x": the exit status (v3).
        case exit
        /// A code this reader does not know; kept so a newer file still plays.
        case other(String)

        public init(_ text: String) {
            switch text {
            case "o": self = .output
            case "i": self = .input
            case "r": self = .resize
            case "m": self = .marker
            case "x": self = .exit
            default: self = .other(text)
            }
        }

        public var text: String {
            switch self {
            case .output: "o"
            case .input: "i"
            case .resize: "r"
            case .marker: "m"
            case .exit: "x"
            case .other(let text): text
            }
        }
    }

    /// Seconds since the recording started.
    public var time: Double
    public var code: Code
    public var data: String

    public init(time: Double, code: Code, data: String) {
        self.time = time
        self.code = code
        self.data = data
    }
}
