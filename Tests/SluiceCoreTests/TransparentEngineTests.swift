import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceCore

/// A module of a protocol that opens with `HELLO`: it notes how each connection reached it, then relays it to the
/// spec's target as raw TCP.
private struct GreetModule: ProtocolModule {
    static let scheme = ListenScheme(name: "greet", target: .endpoint)
    static var schemes: [ListenScheme] { [scheme] }
    static var transparentProtocols: [TransparentProtocol] {
        [
            TransparentProtocol(
                scheme: scheme, ports: [],
                opening: .clientFirst { bytes, _ in
                    let expected = Array("HELLO".utf8)
                    if bytes.starts(with: expected) { return .match }
                    return expected.starts(with: bytes) ? .needMoreData : .noMatch
                }
            )
        ]
    }

    let seen = NIOLockedValueBox<[(spec: ListenSpec, route: TransparentRoute?, client: Endpoint)]>([])

    func accept(_ connection: ClientConnection) {
        seen.withLockedValue { $0.append((connection.spec, connection.route, connection.client)) }
        connection.relayToTarget(kind: .tcp) { _ in nil }
    }
}

/// Transparent listeners in process, over loopback: nothing is redirected here, so each test says where connections
/// were going (the engine's `originalDestination`), and the rest (loop check, target table, sniffing, hand-over,
/// refusals) runs as in production.
@Suite(.ownThread) struct TransparentEngineTests {
    private struct Setup {
        var engine: Engine
        var port: Int
        var events: EventCollector
        var module: GreetModule
        var echo: EchoServer
        var group: EventLoopGroup

        func stop() async throws {
            engine.shutdown()
            try await echo.close()
            try await group.shutdownGracefully()
        }
    }

    /// A `redirect://` listener whose connections "were going to" what `destination` says (the echo server when nil).
    private func start(
        configure: (inout TransparentSettings, Endpoint) -> Void = { _, _ in },
        destination: (@Sendable (Endpoint, SocketAddress?) -> Endpoint?)? = nil
    ) async throws -> Setup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let echo = try await EchoServer(group: group)
        let echoEndpoint = Endpoint(host: "127.0.0.1", port: echo.port)
        var configuration = Configuration()
        configuration.listeners = [ListenSpec(scheme: .redirect, listen: Endpoint(host: "127.0.0.1", port: 0), target: nil)]
        configuration.connectTimeout = 5
        configuration.transparent.mark = 0  // marking needs CAP_NET_ADMIN, which a test need not have
        // Long enough that a loaded machine running tests in parallel still sees the client's bytes first.
        configuration.transparent.sniffTimeout = 10
        configure(&configuration.transparent, echoEndpoint)
        let events = EventCollector()
        let module = GreetModule()
        let finder: TransparentModule.DestinationFinder = { channel, _ in
            let found = destination.map { $0(echoEndpoint, channel.localAddress) } ?? echoEndpoint
            guard let found else { return channel.eventLoop.makeFailedFuture(OriginalDestination.Failure(description: "nothing in conntrack")) }
            return channel.eventLoop.makeSucceededFuture(found)
        }
        let engine = Engine(
            configuration: configuration, bus: FlowBus(subscribers: [events]), firstFlowID: FlowID(1), modules: [module],
            logger: Logger(label: "test"), threads: 1, originalDestination: finder
        )
        let port = try engine.start().first?.port ?? 0
        return Setup(engine: engine, port: port, events: events, module: module, echo: echo, group: group)
    }

    private func allowEcho(_ settings: inout TransparentSettings, _ echo: Endpoint, protocolName: String = "auto") {
        var target = TransparentTarget(index: 0)
        target.name = "echo"
        target.destinations = [CIDR(echo.host)].compactMap { $0 }
        target.ports = [PortRange(echo.port, echo.port)]
        target.protocolName = protocolName
        settings.targets = [target]
    }

    /// Connects, sends `text` (nothing when nil) after `delay`, half-closes, and reads until the close.
    private func exchange(port: Int, text: String?, delay: Duration = .zero, group: EventLoopGroup) async throws -> String {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Half-closure on: `finish()` sends the FIN the echo server answers with its own.
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            if delay > .zero { try await Task.sleep(for: delay) }
            if let text { try await outbound.write(ByteBuffer(string: text)) }
            outbound.finish()
            var received = ""
            do {
                for try await buffer in inbound { received += String(buffer: buffer) }
            } catch {
                // A refusal may reset the connection: what came before it is the answer.
            }
            return received
        }
    }

    private func waitForClose(_ events: EventCollector, count: Int = 1) async throws {
        for _ in 0..<500 where events.closes.count < count {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(events.closes.count >= count)
    }

    @Test func aConnectionGoesToTheModuleItsFirstBytesName() async throws {
        let setup = try await start { settings, echo in allowEcho(&settings, echo) }
        #expect(try await exchange(port: setup.port, text: "HELLO over there", group: setup.group) == "HELLO over there")
        try await waitForClose(setup.events)
        let seen = try #require(setup.module.seen.withLockedValue { $0 }.first)
        #expect(seen.spec.scheme == GreetModule.scheme)
        #expect(seen.spec.target == Endpoint(host: "127.0.0.1", port: setup.echo.port))
        #expect(seen.spec.listen == Endpoint(host: "127.0.0.1", port: 0))
        #expect(seen.route?.listener.scheme == .redirect && seen.route?.target?.label == "echo" && seen.route?.mark == 0)
        #expect(seen.route?.originalDestination == Endpoint(host: "127.0.0.1", port: setup.echo.port))
        #expect(seen.client.host == "127.0.0.1")
        let opened = try #require(setup.events.opens.first)
        #expect(opened.listener == "redirect://127.0.0.1:0" && opened.server.port == setup.echo.port)
        #expect(setup.events.closes.first?.state == .closed)
        try await setup.stop()
    }

    @Test func somethingElseIsRelayedAsTCP() async throws {
        let setup = try await start { settings, echo in allowEcho(&settings, echo) }
        #expect(try await exchange(port: setup.port, text: "GOODBYE", group: setup.group) == "GOODBYE")
        try await waitForClose(setup.events)
        #expect(setup.module.seen.withLockedValue { $0 }.isEmpty)
        #expect(setup.events.opens.first?.kind == .tcp)
        try await setup.stop()
    }

    /// A client that waits for the server (as a MySQL client would on a port no module claims) is relayed when the
    /// sniff timeout passes, and what it sends later arrives.
    @Test func aSilentClientIsRelayedAfterTheSniffTimeout() async throws {
        let setup = try await start { settings, echo in
            allowEcho(&settings, echo)
            settings.sniffTimeout = 0.3
        }
        let started = Date()
        #expect(try await exchange(port: setup.port, text: "late", delay: .milliseconds(600), group: setup.group) == "late")
        #expect(Date().timeIntervalSince(started) >= 0.6)
        try await waitForClose(setup.events)
        #expect(setup.module.seen.withLockedValue { $0 }.isEmpty && setup.events.opens.first?.kind == .tcp)
        try await setup.stop()
    }

    @Test func aTargetsProtocolWinsOverTheBytes() async throws {
        let setup = try await start { settings, echo in allowEcho(&settings, echo, protocolName: "greet") }
        #expect(try await exchange(port: setup.port, text: "not a greeting", group: setup.group) == "not a greeting")
        try await waitForClose(setup.events)
        #expect(setup.module.seen.withLockedValue { $0 }.count == 1)
        try await setup.stop()

        let tcp = try await start { settings, echo in allowEcho(&settings, echo, protocolName: "tcp") }
        #expect(try await exchange(port: tcp.port, text: "HELLO", group: tcp.group) == "HELLO")
        try await waitForClose(tcp.events)
        #expect(tcp.module.seen.withLockedValue { $0 }.isEmpty)
        try await tcp.stop()
    }

    @Test func anUnknownDestinationIsRefusedAndRecordedWithItsReason() async throws {
        let setup = try await start()
        #expect(try await exchange(port: setup.port, text: "HELLO", group: setup.group) == "")
        try await waitForClose(setup.events)
        let error = try #require(setup.events.errors.first)
        #expect(error.message == "refused: 127.0.0.1:\(setup.echo.port) is in no target (transparent.unknown: refuse)")
        #expect(setup.events.opens.first?.server.port == setup.echo.port && setup.events.opens.first?.kind == .tcp)
        #expect(setup.module.seen.withLockedValue { $0 }.isEmpty)
        try await setup.stop()
    }

    @Test func anUnknownDestinationRelayedCarriesAnAlert() async throws {
        let setup = try await start { settings, _ in settings.unknown = .relay }
        #expect(try await exchange(port: setup.port, text: "HELLO", group: setup.group) == "HELLO")
        try await waitForClose(setup.events)
        #expect(setup.module.seen.withLockedValue { $0 }.isEmpty, "an unknown destination is only ever relayed as bytes")
        let alerts = setup.events.events.compactMap { if case .alert(let alert) = $0 { alert } else { nil } }
        #expect(alerts.count == 1)
        #expect(alerts.first?.rule == "transparent.unknown" && alerts.first?.flowID == setup.events.opens.first?.flowID)
        #expect(alerts.first?.message == "127.0.0.1:\(setup.echo.port) is in no target: relayed as tcp (transparent.unknown: relay)")
        try await setup.stop()
    }

    @Test func aDeniedDestinationIsRefused() async throws {
        let setup = try await start { settings, echo in
            allowEcho(&settings, echo)
            settings.targets[0].action = .deny
        }
        #expect(try await exchange(port: setup.port, text: "HELLO", group: setup.group) == "")
        try await waitForClose(setup.events)
        #expect(setup.events.errors.first?.message == "refused: 127.0.0.1:\(setup.echo.port) is denied by echo")
        try await setup.stop()
    }

    @Test func aConnectionMeantForSluicesOwnListenerIsALoop() async throws {
        let setup = try await start(configure: { settings, _ in settings.unknown = .relay }, destination: { _, local in local.flatMap(OriginalDestination.endpoint) })
        #expect(try await exchange(port: setup.port, text: "HELLO", group: setup.group) == "")
        try await waitForClose(setup.events)
        #expect(setup.events.errors.first?.message == "refused: 127.0.0.1:\(setup.port) is Sluice's own listener (a loop)")
        try await setup.stop()
    }

    @Test func noOriginalDestinationIsRefused() async throws {
        let setup = try await start(configure: { settings, _ in settings.unknown = .relay }, destination: { _, _ in nil })
        #expect(try await exchange(port: setup.port, text: "HELLO", group: setup.group) == "")
        try await waitForClose(setup.events)
        #expect(setup.events.errors.first?.message == "refused: nothing in conntrack")
        #expect(setup.events.opens.first?.server == Endpoint(host: "127.0.0.1", port: 0))
        try await setup.stop()
    }

    /// On loopback nothing was redirected: the real lookup finds no original destination (no conntrack entry) or the
    /// listener itself (conntrack knows the connection as it is). Either way it is refused, never relayed.
    @Test func theRealLookupOnADirectConnectionRefuses() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = Configuration()
        configuration.listeners = [ListenSpec(scheme: .redirect, listen: Endpoint(host: "127.0.0.1", port: 0), target: nil)]
        configuration.transparent.unknown = .relay
        configuration.transparent.mark = 0
        let events = EventCollector()
        let engine = Engine(configuration: configuration, bus: FlowBus(subscribers: [events]), firstFlowID: FlowID(1), logger: Logger(label: "test"), threads: 1)
        let port = try engine.start().first?.port ?? 0
        #expect(try await exchange(port: port, text: "x", group: group) == "")
        try await waitForClose(events)
        let message = events.errors.first?.message ?? ""
        #expect(message.hasPrefix("refused: no original destination") || message == "refused: 127.0.0.1:\(port) is Sluice's own listener (a loop)", "\(message)")
        engine.shutdown()
        try await group.shutdownGracefully()
    }
}
