/// The status byte of ReadyForQuery (`Z`).
///
/// A synthetic `Z` must repeat the last status the server reported, since the server never saw the blocked
/// statement (PROTOCOLS.md §1).
public enum PostgresTransactionStatus: UInt8, Sendable, Hashable {
    /// `I`: not in a transaction block.
    case idle = 0x49
    /// `T`: in a transaction block.
    case inTransaction = 0x54
    /// `E`: in a failed transaction block; statements are refused until it ends.
    case failed = 0x45
}
