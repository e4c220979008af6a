import Foundation
import Logging
import NIOCore
import NIOPosix
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceCore

/// The engine over real loopback sockets, in process: client -> Sluice -> echo server.
@Suite(.ownThread) struct EngineTests {
    private func engine(
        target: Endpoint, events: EventCollector, connectTimeout: Double = 5, configure: (inout Configuration) -> Void = { _ in }
    ) throws -> (Engine, Int) {
        var configuration = Configuration()
        configuration.listeners = [ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: 0), target: target)]
        configuration.connectTimeout = connectTimeout
        configure(&configuration)
        let engine = Engine(configuration: configuration, bus: FlowBus(subscribers: [events]), firstFlowID: FlowID(100), logger: Logger(label: "test"))
        let port = try engine.start().first?.port ?? 0
        return (engine, port)
    }

    /// Connects, sends `text`, reads until `expect` bytes came back or the peer closed.
    private func exchange(port: Int, text: String, expect: Int, group: EventLoopGroup) async throws -> String {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: text))
            var received = ""
            for try await buffer in inbound {
                received += String(buffer: buffer)
                if received.utf8.count >= expect { break }
            }
            return received
        }
    }

    private func waitFor(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func relaysAndRecordsAFlowFromOpenToClose() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let (engine, port) = try engine(target: Endpoint(host: "127.0.0.1", port: echo.port), events: events)

        let reply = try await exchange(port: port, text: "ping over sluice", expect: 16, group: group)
        #expect(reply == "ping over sluice")
        try await waitFor { !events.closes.isEmpty }

        let opened = try #require(events.opens.first)
        #expect(opened.flowID == FlowID(100))
        #expect(opened.kind == .tcp)
        #expect(opened.server.port == echo.port)
        let up = events.messages.filter { $0.direction == .up }.map { String(decoding: $0.payload, as: UTF8.self) }.joined()
        let down = events.messages.filter { $0.direction == .down }.map { String(decoding: $0.payload, as: UTF8.self) }.joined()
        #expect(up == "ping over sluice")
        #expect(down == "ping over sluice")
        let closed = try #require(events.closes.first)
        #expect(closed.bytesUp == 16 && closed.bytesDown == 16)
        #expect(closed.state == .closed)
        #expect(engine.openConnectionCount == 0)

        engine.shutdown()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    /// A listener added while running serves clients like a configured one; stopped, it takes no more, while the
    /// connection it accepted goes on; a thousand added and stopped leave no descriptor behind.
    @Test func listenersAddedAndStoppedWhileRunning() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let target = Endpoint(host: "127.0.0.1", port: echo.port)
        let (engine, configuredPort) = try engine(target: target, events: events)
        let added = try engine.listen(ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: 0), target: target))
        #expect(engine.listeners.map(\.id) == [1, 2])
        #expect(added.id == 2)
        let port = try #require(added.address?.port)
        #expect(try await exchange(port: port, text: "through the new one", expect: 19, group: group) == "through the new one")

        // An open connection through the listener outlives its stop.
        let open = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        try await waitFor { engine.openConnectionCount == 1 }
        #expect(engine.stopListening(2)?.spec.listen.port == 0)
        #expect(engine.stopListening(2) == nil)
        #expect(engine.listeners.map(\.id) == [1])
        await #expect(throws: (any Error).self) {
            _ = try await self.exchange(port: port, text: "x", expect: 1, group: group)
        }
        let reply = try await open.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "still here"))
            var received = ""
            for try await buffer in inbound {
                received += String(buffer: buffer)
                if received.utf8.count >= 10 { break }
            }
            return received
        }
        #expect(reply == "still here")
        #expect(try await exchange(port: configuredPort, text: "first", expect: 5, group: group) == "first")

        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0 }
        let before = descriptors()
        for _ in 0..<1000 {
            let listener = try engine.listen(ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: 0), target: target))
            engine.stopListening(listener.id)
        }
        // Other tests run beside this one and open descriptors of their own (a few hundred at times); a leak here
        // would be one or two thousand (each listener's socket and its spare descriptor).
        #expect(descriptors() <= before + 500)
        #expect(engine.listeners.count == 1)

        engine.shutdown()
        #expect(throws: EngineError.self) {
            try engine.listen(ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: 0), target: target))
        }
        try await echo.close()
        try await group.shutdownGracefully()
    }

    /// A listener opened for a session hands its id to every flow its connections open; the engine only carries it.
    /// A port in use is said as such, so a caller choosing ports can try the next.
    @Test func aSessionsListenerNamesItInItsFlowsAndATakenPortSaysSo() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let target = Endpoint(host: "127.0.0.1", port: echo.port)
        let (engine, configuredPort) = try engine(target: target, events: events)
        let tagged = try engine.listen(ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: 0), target: target), session: SessionID(7))
        #expect(tagged.session == SessionID(7))
        #expect(engine.listeners.map(\.session) == [nil, SessionID(7)])
        let port = try #require(tagged.address?.port)
        #expect(try await exchange(port: port, text: "tagged", expect: 6, group: group) == "tagged")
        #expect(try await exchange(port: configuredPort, text: "plain", expect: 5, group: group) == "plain")
        try await waitFor { events.opens.count == 2 }
        #expect(Set(events.opens.map(\.session)) == [SessionID(7), nil])
        #expect(events.opens.first { $0.server.port == echo.port && $0.session != nil }?.session == SessionID(7))

        #expect {
            try engine.listen(ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: port), target: target), session: SessionID(8))
        } throws: { error in
            (error as? EngineError)?.addressInUse == true
        }
        #expect(engine.stopListening(tagged.id)?.session == SessionID(7))
        engine.shutdown()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    @Test func bytesAndFINSentBeforeTheTargetAcceptsAreNotLost() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let (engine, port) = try engine(target: Endpoint(host: "127.0.0.1", port: echo.port), events: events)
        for attempt in 0..<10 {
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                    }
                }
            // Write and shut at once, like `printf x | nc -N`: both arrive before Sluice's connect completes.
            let received = try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "early bird \(attempt)"))
                outbound.finish()
                var received = ""
                for try await buffer in inbound { received += String(buffer: buffer) }
                return received
            }
            #expect(received == "early bird \(attempt)")
        }
        engine.shutdown()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    @Test func deadTargetClosesTheClientAndRecordsTheConnectError() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Bind and close to find a port nothing listens on.
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let deadPort = probe.localAddress?.port ?? 1
        try await probe.close()
        let events = EventCollector()
        let (engine, port) = try engine(target: Endpoint(host: "127.0.0.1", port: deadPort), events: events)

        // Closed or reset, depending on whether the kernel still held unread bytes from the client.
        let reply = try? await exchange(port: port, text: "anyone?", expect: 1, group: group)
        #expect(reply == nil || reply == "", "the client sees the connection closed")
        try await waitFor { !events.closes.isEmpty }
        let error = try #require(events.errors.first)
        #expect(error.phase == .connect)
        #expect(error.message.contains("refused"))
        #expect(events.closes.first?.state == .error)

        engine.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func occupiedPortIsOneClearError() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let holder = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = holder.localAddress?.port ?? 0
        var configuration = Configuration()
        configuration.listeners = [try ListenSpec(parsing: "tcp://127.0.0.1:\(port)=>127.0.0.1:1", schemes: [.tcp])]
        let engine = Engine(configuration: configuration, bus: FlowBus(subscribers: []), firstFlowID: FlowID(1), logger: Logger(label: "test"))
        #expect {
            try engine.start()
        } throws: { error in
            (error as? EngineError)?.description == "cannot listen on 127.0.0.1:\(port): address already in use"
        }
        engine.shutdown()
        try await holder.close()
        try await group.shutdownGracefully()
    }

    @Test func shutdownClosesOpenConnectionsAndEveryFlowIsClosed() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let (engine, port) = try engine(target: Endpoint(host: "127.0.0.1", port: echo.port), events: events)
        var clients: [Channel] = []
        for _ in 0..<5 {
            clients.append(try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get())
        }
        try await waitFor { engine.openConnectionCount == 5 }
        #expect(engine.openConnectionCount == 5)
        engine.shutdown()
        #expect(events.opens.count == 5)
        #expect(events.closes.count == 5, "every flow publishes its close before shutdown returns")
        for client in clients { try? await client.close() }
        try await echo.close()
        try await group.shutdownGracefully()
    }

    /// `timeouts.tunnel_idle`: a relay that carries nothing either way for that long is closed, and says why.
    @Test func anIdleRelayClosesAfterTunnelIdle() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let (engine, port) = try engine(target: Endpoint(host: "127.0.0.1", port: echo.port), events: events) {
            $0.timeouts.tunnelIdle = 1.5  // long enough that a loaded machine still echoes first
        }
        let started = ContinuousClock.now
        // Echoed, then silence: the relay ends by itself (the client never closes).
        let reply = try await exchange(port: port, text: "hello", expect: 1_000, group: group)
        #expect(reply == "hello")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(1_450) && elapsed < .seconds(10), "\(elapsed)")
        try await waitFor { !events.closes.isEmpty }
        #expect(events.errors.first?.message.contains("timeouts.tunnel_idle") == true, "\(events.errors)")
        engine.shutdown()
        try await echo.close()
        try await group.shutdownGracefully()
    }

    /// At `max_connections` the listener accepts no more; the next client waits in the backlog and is served as
    /// soon as a connection closes.
    @Test func atMaxConnectionsAcceptingWaitsForRoom() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let events = EventCollector()
        let (engine, port) = try engine(target: Endpoint(host: "127.0.0.1", port: echo.port), events: events) {
            $0.maxConnections = 1
        }
        let first = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        try await waitFor { events.opens.count == 1 }
        let second = Task { try await exchange(port: port, text: "second", expect: 6, group: group) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(events.opens.count == 1, "the second connection waits in the backlog")
        try await first.close()
        let reply = try await second.value
        #expect(reply == "second")
        #expect(events.opens.count == 2)
        engine.shutdown()
        try await echo.close()
        try await group.shutdownGracefully()
    }
}
