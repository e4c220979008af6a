import Foundation
import NIOCore
import NIOPosix
import SluiceModel

/// One accepted client connection, as the engine hands it to a protocol module: the channel, the listener it came
/// in on, and the engine's services a module needs (flows, upstream connections, the bus and the gate).
///
/// A connection carries one flow (TCP) or many (HTTP keep-alive, one flow per exchange). Every channel it opens is
/// adopted, so killing a flow or shutting down closes them all.
public final class ClientConnection: Sendable {
    public let channel: Channel
    public let spec: ListenSpec
    /// `spec` as text, as each of the connection's flows records it (made once, not per exchange).
    public let listenerName: String
    public let configuration: Configuration
    public let bus: FlowBus
    public let gate: InterceptGate
    /// What all connections together may buffer of unfinished messages.
    public let bufferBudget: ByteBudget
    /// The risk policy, for the protocols that capture commands.
    public let policy: SharedPolicy
    /// The client's address as the flow records it (made once: each of the connection's flows names it).
    public let client: Endpoint
    let id: Int64
    /// Set when Sluice itself is the client, replaying a flow.
    let replay: ReplayOrigin?
    /// The session of the listener that accepted the connection, which each of its flows names.
    let session: SessionID?
    /// Set when a transparent listener accepted the connection and handed it to its module: `spec` is then the
    /// module's scheme with the original destination as its target, made for this connection.
    public let route: TransparentRoute?
    private let registry: ConnectionRegistry

    init(
        id: Int64, channel: Channel, spec: ListenSpec, configuration: Configuration, bus: FlowBus, gate: InterceptGate,
        bufferBudget: ByteBudget, policy: SharedPolicy, registry: ConnectionRegistry, replay: ReplayOrigin? = nil,
        session: SessionID? = nil, route: TransparentRoute? = nil, client: Endpoint? = nil
    ) {
        self.replay = replay
        self.session = session
        self.route = route
        self.policy = policy
        self.id = id
        self.channel = channel
        self.spec = spec
        // A transparent connection's flows name the listener it came in on, not the spec made for it.
        self.listenerName = route?.listener.description ?? spec.description
        self.configuration = configuration
        self.bus = bus
        self.gate = gate
        self.bufferBudget = bufferBudget
        self.registry = registry
        // A replay's socket pair has no address; HTTP replays name their client the same way.
        self.client = client ?? (replay == nil ? Endpoint(channel.remoteAddress) : Endpoint(host: "replay", port: 0))
    }

    /// The same connection as a transparent listener hands it to a module: `spec` made for it, `route` saying how it
    /// came, and the target's own policy when it has one.
    func handedOver(as spec: ListenSpec, route: TransparentRoute) -> ClientConnection {
        ClientConnection(
            id: id, channel: channel, spec: spec, configuration: configuration, bus: bus, gate: gate, bufferBudget: bufferBudget,
            policy: route.target?.policy?.shared ?? policy, registry: registry, replay: replay, session: session, route: route, client: client
        )
    }

    public var eventLoop: EventLoop { channel.eventLoop }

    /// Starts a flow on this connection and publishes its opening. Call on the event loop.
    /// - Returns: nil when the engine is shutting down; the module should then close the connection.
    public func openFlow(kind: FlowKind, server: Endpoint, limits: RecordingLimits? = nil) -> FlowRecorder? {
        registry.openFlow(
            on: self, kind: kind, server: server, limits: limits ?? RecordingLimits(configuration)
        )
    }

    /// Tracks a channel this connection opened (an upstream), so that a kill or a shutdown closes it too.
    public func adopt(_ upstream: Channel) {
        registry.adopt(upstream, into: id)
    }

    /// Connects to `target` on this connection's event loop with the engine's socket settings: reads off and an
    /// `EarlyInput` in the new pipeline, as on the accepted side, so either side can be spliced or given handlers.
    ///
    /// For a transparent connection the new socket carries the route's `SO_MARK`, so that the rules that sent the
    /// client here let Sluice's own connection through (`sluice transparent rules`).
    ///
    /// A target that is an IP address is connected to directly; only a name goes through NIO's resolver and Happy
    /// Eyeballs (two `getaddrinfo` calls and their timers, which an address does not need).
    public func connect(to target: Endpoint) -> EventLoopFuture<Channel> {
        let mark = route?.mark ?? 0
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(configuration.connectTimeout * 1000)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.recvAllocator, value: Engine.receiveBuffers)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if mark != 0 { try Self.setMark(mark, on: channel) }
                    try channel.pipeline.syncOperations.addHandler(EarlyInput())
                }
            }
        let connecting: EventLoopFuture<Channel>
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            connecting = bootstrap.connect(to: address)
        } else {
            connecting = bootstrap.connect(host: target.host, port: target.port)
        }
        return connecting.map { [self] channel in
            self.adopt(channel)
            return channel
        }
    }

    /// Serves a fixed-target listener: opens a flow of `kind`, connects to the spec's target, and relays with the
    /// inspector `inspector` makes for the flow (raw chunks when it makes none). Closes the client when there is no
    /// target, the engine is stopping, or the target cannot be reached (recorded as the flow's error). Call on the
    /// event loop.
    /// - Parameters:
    ///   - limits: how much of the flow to store; the configuration's when nil.
    ///   - prepareServer: work on the server's connection before the relay starts (a protocol's own TLS
    ///     negotiation); its failure is the flow's connect error.
    public func relayToTarget(
        kind: FlowKind, limits: RecordingLimits? = nil, prepareServer: ((Channel) -> EventLoopFuture<Void>)? = nil,
        inspector: @escaping (FlowRecorder) -> RelayInspector?
    ) {
        guard let target = spec.target, let recorder = openFlow(kind: kind, server: target, limits: limits) else {
            channel.close(promise: nil)
            return
        }
        let loopBound = NIOLoopBound((recorder: recorder, inspector: inspector), eventLoop: eventLoop)
        channel.closeFuture.whenComplete { _ in
            loopBound.value.recorder.sideClosed(.client)
        }
        let prepare = NIOLoopBound(prepareServer, eventLoop: eventLoop)
        let connected = connect(to: target).flatMap { server in
            guard let prepare = prepare.value else { return server.eventLoop.makeSucceededFuture(server) }
            return prepare(server).map { server }.flatMapErrorThrowing { error in
                server.close(promise: nil)
                throw error
            }
        }
        connected.whenComplete { [self] result in
            let (recorder, makeInspector) = loopBound.value
            switch result {
            case .success(let server):
                server.closeFuture.whenComplete { _ in
                    loopBound.value.recorder.sideClosed(.server)
                }
                guard channel.isActive else {
                    server.close(promise: nil)
                    return
                }
                splice(with: server, recorder: recorder, inspector: makeInspector(recorder))
            case .failure(let error):
                recorder.failed(.connect, "cannot connect to \(target): \(describe(error))")
                recorder.sideClosed(.server)
                channel.close(promise: nil)
            }
        }
    }

    /// Splices the client channel with `server` as a byte relay recording into `recorder`: both pipelines must end
    /// in an `EarlyInput`, whose bytes are relayed first. Closes both on failure.
    public func splice(with server: Channel, recorder: FlowRecorder, inspector: RelayInspector? = nil) {
        do {
            try RelayHandler.install(
                client: channel, server: server, recorder: recorder, connection: self, inspector: inspector,
                idleLimit: configuration.timeouts.tunnelIdle.map(TimeAmount.fromSeconds)
            )
        } catch {
            recorder.failed(.proxy, "cannot set up relay: \(describe(error))")
            server.close(promise: nil)
            channel.close(promise: nil)
        }
    }
}

extension ClientConnection {
    struct MarkError: Error, CustomStringConvertible {
        var description: String
    }

    /// Sets `SO_MARK` on a socket before it connects.
    static func setMark(_ mark: UInt32, on channel: Channel) throws {
        do {
            try channel.syncOptions?.setOption(
                ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_MARK)),
                value: SocketOptionValue(Int32(bitPattern: mark))
            )
        } catch {
            throw MarkError(
                description: "cannot mark the connection with SO_MARK 0x\(String(mark, radix: 16)) (needs CAP_NET_ADMIN; transparent.mark: 0 "
                    + "marks nothing): \(describe(error))"
            )
        }
    }
}

/// The engine's table of open connections and flows, as the connection needs it.
protocol ConnectionRegistry: AnyObject, Sendable {
    func openFlow(on connection: ClientConnection, kind: FlowKind, server: Endpoint, limits: RecordingLimits) -> FlowRecorder?
    func adopt(_ channel: Channel, into connectionID: Int64)
}

extension Endpoint {
    public init(_ address: SocketAddress?) {
        self.init(host: address?.ipAddress ?? "?", port: address?.port ?? 0)
    }
}
