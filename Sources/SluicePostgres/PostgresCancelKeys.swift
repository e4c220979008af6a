import NIOConcurrencyHelpers
import SluiceModel

/// The backends of every relayed PostgreSQL session by their cancel key (BackendKeyData's process id and secret),
/// so that a CancelRequest, which arrives on a new connection of its own, reaches the server whose backend it
/// names and no other (PROTOCOLS.md §1). Shared by all connections of all postgres listeners.
final class PostgresCancelKeys: Sendable {
    private struct Key: Hashable {
        var processID: Int32
        var secret: [UInt8]
    }

    private let backends = NIOLockedValueBox<[Key: Endpoint]>([:])

    func register(processID: Int32, secret: [UInt8], server: Endpoint) {
        backends.withLockedValue { $0[Key(processID: processID, secret: secret)] = server }
    }

    func remove(processID: Int32, secret: [UInt8]) {
        _ = backends.withLockedValue { $0.removeValue(forKey: Key(processID: processID, secret: secret)) }
    }

    /// The server of the session this key belongs to, or nil for a key no relayed session has.
    func server(processID: Int32, secret: [UInt8]) -> Endpoint? {
        backends.withLockedValue { $0[Key(processID: processID, secret: secret)] }
    }

    var count: Int { backends.withLockedValue { $0.count } }
}
