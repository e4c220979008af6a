import NIOCore
import SluiceModel

/// Fixed-target raw TCP forwarding (`tcp://LISTEN=>TARGET`): connect to the target on the client's event loop,
/// then splice the two channels. One flow per connection.
struct TCPRelayModule: ProtocolModule {
    static var schemes: [ListenScheme] { [.tcp] }

    func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target else {
            connection.channel.close(promise: nil)
            return
        }
        guard let recorder = connection.openFlow(kind: .tcp, server: target) else {
            connection.channel.close(promise: nil)
            return
        }
        let loopBound = NIOLoopBound(recorder, eventLoop: connection.eventLoop)
        connection.channel.closeFuture.whenComplete { _ in
            loopBound.value.sideClosed(.client)
        }
        connection.connect(to: target).whenComplete { result in
            let recorder = loopBound.value
            switch result {
            case .success(let server):
                server.closeFuture.whenComplete { _ in
                    loopBound.value.sideClosed(.server)
                }
                guard connection.channel.isActive else {
                    server.close(promise: nil)
                    return
                }
                connection.splice(with: server, recorder: recorder)
            case .failure(let error):
                recorder.failed(.connect, "cannot connect to \(target): \(describe(error))")
                recorder.sideClosed(.server)
                connection.channel.close(promise: nil)
            }
        }
    }
}
