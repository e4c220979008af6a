import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceCore
import SluiceModel
import SluiceTestSupport

@testable import SluiceHTTP

/// Sluice's engine with the HTTP module, in process on loopback, as the proxy tests drive it.
struct TestProxy {
    let engine: Engine
    let port: Int

    /// An explicit proxy (`http://`), or the listener given, with the changes `configure` makes to a test
    /// configuration (connect timeout 5 s).
    static func start(
        events: EventCollector, listener: ListenSpec? = nil, access: AccessRules = AccessRules(), threads: Int = System.coreCount,
        configure: (inout Configuration) -> Void = { _ in }
    ) throws -> TestProxy {
        var configuration = Configuration()
        configuration.listeners = [listener ?? ListenSpec(scheme: .http, listen: Endpoint(host: "127.0.0.1", port: 0), target: nil)]
        configuration.connectTimeout = 5
        configuration.access = access
        configure(&configuration)
        let engine = Engine(
            configuration: configuration, bus: FlowBus(subscribers: [events]), firstFlowID: FlowID(1),
            modules: [HTTPProxyModule(tls: nil)], logger: Logger(label: "test"), threads: threads
        )
        return TestProxy(engine: engine, port: try engine.start().first?.port ?? 0)
    }

    /// A reverse proxy (`reverse+http://`) in front of `backend` on loopback.
    static func reverse(to backend: Int, events: EventCollector) throws -> TestProxy {
        try start(
            events: events,
            listener: ListenSpec(
                scheme: .reverseHTTP, listen: Endpoint(host: "127.0.0.1", port: 0), target: Endpoint(host: "127.0.0.1", port: backend)
            )
        )
    }
}

/// A test's connection did not end within its time.
struct TimedOut: Error, CustomStringConvertible {
    var received: String
    var description: String { "no end of the connection in time; received so far: \(received.prefix(300))" }
}

/// Sends `pieces` one write each (flushed, so a piece per TCP segment), then reads until the proxy closes. A
/// connection still open after `timeout` is closed and the call throws `TimedOut`: a proxy that leaves a client
/// hanging fails the test instead of hanging it.
func send(_ pieces: [[UInt8]], to port: Int, group: EventLoopGroup, timeout: TimeAmount = .seconds(30)) async throws -> String {
    let channel = try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
    let timedOut = NIOLockedValueBox(false)
    let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) {
        timedOut.withLockedValue { $0 = true }
        channel.channel.close(promise: nil)
    }
    let received = try await channel.executeThenClose { inbound, outbound in
        do {
            for piece in pieces {
                try await outbound.write(ByteBuffer(bytes: piece))
            }
        } catch {
            // The proxy closed first (a timeout, a refusal): what it sent before closing is still to be read.
        }
        var received = ""
        do {
            for try await buffer in inbound {
                received += String(buffer: buffer)
            }
        } catch {
            // A reset after the answer: what was received is the answer.
        }
        return received
    }
    deadline.cancel()
    if timedOut.withLockedValue({ $0 }) { throw TimedOut(received: received) }
    return received
}

/// Polls `condition` for up to 5 s.
func waitFor(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() {
        try await Task.sleep(for: .milliseconds(10))
    }
}
