import NIOCore
import SluiceModel

/// Fixed-target raw TCP forwarding (`tcp://LISTEN=>TARGET`): connect to the target on the client's event loop,
/// then splice the two channels. One flow per connection.
struct TCPRelayModule: ProtocolModule {
    static var schemes: [ListenScheme] { [.tcp] }

    func accept(_ connection: ClientConnection) {
        connection.relayToTarget(kind: .tcp) { _ in nil }
    }
}
