/// The first line of an asciicast file: the terminal's size and what it was (PROTOCOLS.md §4).
///
/// Sluice writes version 2, which every player reads; the reader also takes version 3, whose `term` object holds
/// the size and type, and maps it here.
public struct AsciicastHeader: Sendable, Equatable {
    public var version: Int
    public var width: Int
    public var height: Int
    /// When the recording started, Unix seconds.
    public var timestamp: Int64?
    /// `TERM` from the client's pty request.
    public var term: String?
    public var shell: String?
    public var title: String?
    /// A player's cap on pauses, seconds, when the recording asks for one.
    public var idleTimeLimit: Double?

    public init(
        version: Int = 2, width: Int, height: Int, timestamp: Int64? = nil, term: String? = nil,
        shell: String? = nil, title: String? = nil, idleTimeLimit: Double? = nil
    ) {
        self.version = version
        self.width = width
        self.height = height
        self.timestamp = timestamp
        self.term = term
        self.shell = shell
        self.title = title
        self.idleTimeLimit = idleTimeLimit
    }
}
