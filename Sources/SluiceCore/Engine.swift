import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceModel

/// The proxy engine: listeners, the connections they accept, and the one way state leaves it, the `FlowBus`.
///
/// `start()` binds every listener or none; `shutdown()` stops accepting, closes the open connections and returns
/// once each of their flows has published its close, so a store flushed afterwards holds everything.
public final class Engine: Sendable {
    private let configuration: Configuration
    private let bus: FlowBus
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    /// Where held messages wait; the TUI sets its filter and resolves what it holds.
    public let gate: InterceptGate

    private struct State {
        var nextFlowID: Int64
        var accepting = true
        var listeners: [Channel] = []
        var connections: [FlowID: Connection] = [:]
    }

    private struct Connection {
        var channels: [Channel]
        var recorder: NIOLoopBound<FlowRecorder>?
        var snapshot: OpenConnection
    }

    /// - Parameter firstFlowID: the id the next flow gets; the store hands out one past its highest, so ids keep
    ///   increasing across runs.
    public init(configuration: Configuration, bus: FlowBus, firstFlowID: FlowID, logger: Logger) {
        self.configuration = configuration
        self.bus = bus
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.state = NIOLockedValueBox(State(nextFlowID: firstFlowID.rawValue))
        self.gate = InterceptGate(
            bus: bus, settings: InterceptGate.Settings(holdTimeout: configuration.holdTimeout, defaultVerdict: configuration.holdDefault)
        )
        self.gate.filter = configuration.intercept
    }

    /// Binds every configured listener. On any failure the ones already bound are closed again.
    /// - Returns: the bound addresses, in the order of the configuration.
    @discardableResult
    public func start() throws(EngineError) -> [SocketAddress] {
        var bound: [SocketAddress] = []
        for spec in configuration.listeners {
            do {
                let channel = try makeTCPListener(spec).bind(host: spec.listen.host, port: spec.listen.port).wait()
                state.withLockedValue { $0.listeners.append(channel) }
                if let address = channel.localAddress { bound.append(address) }
                logger.info("listening on \(spec)")
            } catch {
                closeListeners()
                throw EngineError(message: "cannot listen on \(spec.listen): \(describe(error))")
            }
        }
        return bound
    }

    /// Open flows right now.
    public var openConnectionCount: Int {
        state.withLockedValue { $0.connections.count }
    }

    /// Stops accepting, closes every open connection and waits (up to `timeout`) until each flow has published
    /// its close. Then stops the event loops.
    public func shutdown(timeout: TimeInterval = 1.5) {
        let deadline = Date().addingTimeInterval(timeout)
        let open: [Channel] = state.withLockedValue { state in
            state.accepting = false
            return state.connections.values.flatMap(\.channels)
        }
        closeListeners()
        for channel in open {
            channel.close(promise: nil)
        }
        while openConnectionCount > 0, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        if openConnectionCount > 0 {
            logger.warning("connections still closing at shutdown", metadata: ["count": "\(openConnectionCount)"])
        }
        try? group.syncShutdownGracefully()
    }

    /// The open connections with their live byte counts, oldest first.
    public var openConnections: [OpenConnection] {
        state.withLockedValue { $0.connections.values.map(\.snapshot) }.sorted { $0.flowID < $1.flowID }
    }

    /// Closes one flow's connection both ways, recording that the operator ended it.
    /// - Returns: false when the flow is not open.
    @discardableResult
    public func kill(_ flowID: FlowID) -> Bool {
        guard let connection = state.withLockedValue({ $0.connections[flowID] }) else { return false }
        guard let eventLoop = connection.channels.first?.eventLoop else { return false }
        eventLoop.execute {
            connection.recorder?.value.failed(.proxy, "killed by the operator")
            for channel in connection.channels {
                channel.close(promise: nil)
            }
        }
        return true
    }

    private func closeListeners() {
        let listeners = state.withLockedValue { state in
            defer { state.listeners = [] }
            return state.listeners
        }
        for listener in listeners {
            try? listener.close().wait()
        }
    }

    // MARK: Raw TCP

    private func makeTCPListener(_ spec: ListenSpec) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Nothing is read until the target is connected and the relay is in place.
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EarlyInput(whenActive: { self.accept(channel, spec: spec) }))
                }
            }
    }

    /// A client arrived: open its flow, connect to the target on the same event loop, then splice the two.
    private func accept(_ client: Channel, spec: ListenSpec) {
        let admitted: FlowID? = state.withLockedValue { state in
            guard state.accepting else { return nil }
            let id = FlowID(state.nextFlowID)
            state.nextFlowID += 1
            state.connections[id] = Connection(
                channels: [client], recorder: nil,
                snapshot: OpenConnection(
                    flowID: id, kind: .tcp, client: Endpoint(client.remoteAddress), server: spec.target, openedAt: Date(), counters: nil
                )
            )
            return id
        }
        guard let flowID = admitted else {
            client.close(promise: nil)
            return
        }
        let eventLoop = client.eventLoop
        let recorder = NIOLoopBound(FlowRecorder(flowID: flowID, bus: bus, limits: RecordingLimits(configuration)), eventLoop: eventLoop)
        recorder.value.opened(kind: .tcp, listener: spec.description, client: Endpoint(client.remoteAddress), server: spec.target)
        let counters = recorder.value.counters
        state.withLockedValue { state in
            state.connections[flowID]?.recorder = recorder
            state.connections[flowID]?.snapshot.counters = counters
        }
        client.closeFuture.whenComplete { [self] _ in
            self.sideClosed(.client, of: flowID, recorder: recorder)
        }

        ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(configuration.connectTimeout * 1000)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EarlyInput()) }
            }
            .connect(host: spec.target.host, port: spec.target.port)
            .whenComplete { [self] result in
                switch result {
                case .success(let server):
                    self.splice(client: client, server: server, flowID: flowID, recorder: recorder)
                case .failure(let error):
                    recorder.value.failed(.connect, "cannot connect to \(spec.target): \(describe(error))")
                    self.sideClosed(.server, of: flowID, recorder: recorder)
                    client.close(promise: nil)
                }
            }
    }

    private func splice(client: Channel, server: Channel, flowID: FlowID, recorder: NIOLoopBound<FlowRecorder>) {
        let stillWanted = state.withLockedValue { state in
            guard state.accepting, state.connections[flowID] != nil else { return false }
            state.connections[flowID]?.channels.append(server)
            return true
        }
        server.closeFuture.whenComplete { [self] _ in
            self.sideClosed(.server, of: flowID, recorder: recorder)
        }
        guard stillWanted, client.isActive else {
            server.close(promise: nil)
            client.close(promise: nil)
            return
        }
        let (clientRelay, serverRelay) = RelayHandler.matchedPair(recorder: recorder.value, bus: bus, gate: gate)
        do {
            try client.pipeline.syncOperations.addHandler(clientRelay)
            try server.pipeline.syncOperations.addHandler(serverRelay)
            try client.pipeline.syncOperations.handler(type: EarlyInput.self).release()
            try server.pipeline.syncOperations.handler(type: EarlyInput.self).release()
            try client.syncOptions?.setOption(.autoRead, value: true)
            try server.syncOptions?.setOption(.autoRead, value: true)
        } catch {
            recorder.value.failed(.proxy, "cannot set up relay: \(describe(error))")
            server.close(promise: nil)
            client.close(promise: nil)
        }
    }

    private func sideClosed(_ side: FlowRecorder.Side, of flowID: FlowID, recorder: NIOLoopBound<FlowRecorder>) {
        recorder.value.sideClosed(side)
        if recorder.value.isFinished {
            gate.discard(flowID: flowID)
            state.withLockedValue { _ = $0.connections.removeValue(forKey: flowID) }
        }
    }
}

/// An open connection as the connections view shows it.
public struct OpenConnection: Sendable {
    public var flowID: FlowID
    public var kind: FlowKind
    public var client: Endpoint
    public var server: Endpoint
    public var openedAt: Date
    var counters: FlowCounters?

    public var bytesUp: Int64 { counters?.bytesUp ?? 0 }
    public var bytesDown: Int64 { counters?.bytesDown ?? 0 }
}

/// One line saying why the engine could not start.
public struct EngineError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension Endpoint {
    init(_ address: SocketAddress?) {
        self.init(host: address?.ipAddress ?? "?", port: address?.port ?? 0)
    }
}
