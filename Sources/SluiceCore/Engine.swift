import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceModel

/// The proxy engine: listeners, the connections they accept, and the one way state leaves it, the `FlowBus`.
///
/// Each listener's scheme picks a `ProtocolModule`; the engine accepts, tracks connections and flows, and hands
/// each client to its module. `start()` binds every listener or none; `shutdown()` stops accepting, closes the
/// open connections and returns once each of their flows has published its close, so a store flushed afterwards
/// holds everything.
public final class Engine: Sendable {
    private let configuration: Configuration
    private let bus: FlowBus
    private let modules: [ListenScheme: any ProtocolModule]
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    /// Where held messages wait; the TUI sets its filter and resolves what it holds.
    public let gate: InterceptGate
    /// Unfinished messages buffered across connections (`websocket.max_buffered_bytes`).
    public let bufferBudget: ByteBudget
    /// The risk policy commands are judged by; replaced on reload.
    public let policy: SharedPolicy

    private struct State {
        var nextFlowID: Int64
        var nextConnectionID: Int64 = 1
        var accepting = true
        /// The listeners running, by id (configured ones from 1 in order, added ones after).
        var listeners: [Int: Listener] = [:]
        var nextListenerID = 1
        var connections: [Int64: [Channel]] = [:]
        var flows: [FlowID: OpenFlow] = [:]
        /// Each listener's `AcceptGate` by listener id, woken when a connection closes while they wait for room.
        var acceptGates: [Int: NIOLoopBound<AcceptGate>] = [:]
        var acceptPaused = false
        /// Client connections accepted and not yet closed (counted at accept, before `connections` has them).
        var acceptedClients = 0
    }

    /// The addresses the listeners are bound to, for the transparent listeners' loop check.
    private let ownListeners = OwnListeners()

    /// The last refusal said in the log, so that a flood of refused connections says it once.
    private let lastRefusal = NIOLockedValueBox<String?>(nil)

    /// Client connections open at once before listeners stop accepting (`max_connections`).
    public let maxConnections: Int

    private struct Listener {
        var spec: ListenSpec
        var channel: Channel
        var session: SessionID?
    }

    private struct OpenFlow {
        var connectionID: Int64
        var recorder: NIOLoopBound<FlowRecorder>
        var snapshot: OpenConnection
    }

    /// - Parameters:
    ///   - firstFlowID: the id the next flow gets; the store hands out one past its highest, so ids keep
    ///     increasing across runs.
    ///   - modules: protocol modules beside the built-in TCP relay, e.g. SluiceHTTP's proxies.
    ///   - threads: event loop threads, one per core unless a test wants fewer.
    public convenience init(
        configuration: Configuration, bus: FlowBus, firstFlowID: FlowID, modules: [any ProtocolModule] = [], logger: Logger,
        threads: Int = System.coreCount
    ) {
        self.init(
            configuration: configuration, bus: bus, firstFlowID: firstFlowID, modules: modules, logger: logger, threads: threads,
            originalDestination: nil
        )
    }

    /// - Parameter originalDestination: how transparent listeners learn where a connection was going; the socket's
    ///   (`OriginalDestination.read`) when nil. Tests on loopback, where nothing was redirected, say it themselves.
    init(
        configuration: Configuration, bus: FlowBus, firstFlowID: FlowID, modules: [any ProtocolModule], logger: Logger, threads: Int,
        originalDestination: TransparentModule.DestinationFinder?
    ) {
        self.configuration = configuration
        self.bus = bus
        self.logger = logger
        var table: [ListenScheme: any ProtocolModule] = [:]
        for module in [TCPRelayModule()] + modules {
            for scheme in type(of: module).schemes { table[scheme] = module }
        }
        // Transparent listeners hand each connection to the module of the protocol it speaks.
        let transparent = TransparentModule(
            settings: configuration.transparent, modules: table, protocols: modules.flatMap { type(of: $0).transparentProtocols },
            ownListeners: ownListeners, originalDestination: originalDestination ?? OriginalDestination.read
        )
        for scheme in TransparentModule.schemes { table[scheme] = transparent }
        self.modules = table
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.state = NIOLockedValueBox(State(nextFlowID: firstFlowID.rawValue))
        self.gate = InterceptGate(
            bus: bus, settings: InterceptGate.Settings(holdTimeout: configuration.holdTimeout, defaultVerdict: configuration.holdDefault)
        )
        self.gate.filter = configuration.intercept
        self.bufferBudget = ByteBudget(limit: configuration.webSocket.maxBufferedBytes)
        self.policy = SharedPolicy(configuration.policy)
        FileDescriptorLimit.raiseToHardLimit()
        // Past what the open-files limit allows, accepting would fail with EMFILE, which NIO retries at once, again
        // and again: the limit is the ceiling, and more is lowered to it, with a warning.
        let capacity = FileDescriptorLimit.connectionCapacity
        self.maxConnections = min(configuration.maxConnections ?? capacity, capacity)
        if let asked = configuration.maxConnections, asked > capacity {
            logger.warning(
                "max_connections \(asked) is more than the open files limit (\(FileDescriptorLimit.current)) allows: using \(capacity) (each connection may need two descriptors; raise ulimit -n for more)"
            )
        }
    }

    /// Binds every configured listener. On any failure the ones already bound are closed again.
    /// - Returns: the bound addresses, in the order of the configuration.
    @discardableResult
    public func start() throws(EngineError) -> [SocketAddress] {
        var bound: [SocketAddress] = []
        for spec in configuration.listeners {
            do {
                if let address = try listen(spec).address { bound.append(address) }
            } catch {
                closeListeners()
                throw error
            }
        }
        return bound
    }

    /// Binds one more listener while running (the TUI's `:listen`, the control API); its clients are served like any.
    /// - Throws: when no module serves its scheme, the engine is stopping, or the address cannot be bound
    ///   (`EngineError.addressInUse` says whether the port was taken).
    @discardableResult
    public func listen(_ spec: ListenSpec) throws(EngineError) -> RunningListener {
        try listen(spec, session: nil)
    }

    /// Binds a listener opened for `session` (the control API's proxies): every flow its connections open names it.
    /// The engine only carries the id.
    @discardableResult
    public func listen(_ spec: ListenSpec, session: SessionID?) throws(EngineError) -> RunningListener {
        guard let module = modules[spec.scheme] else {
            throw EngineError(message: "cannot listen on \(spec): this sluice serves no \(spec.scheme.name):// listeners\(Self.moduleHint(spec.scheme))")
        }
        let id: Int? = state.withLockedValue { state in
            guard state.accepting else { return nil }
            defer { state.nextListenerID += 1 }
            return state.nextListenerID
        }
        guard let id else { throw EngineError(message: "cannot listen on \(spec): sluice is stopping") }
        let channel: Channel
        do {
            channel = try makeListener(spec, id: id, module: module, session: session).bind(host: spec.listen.host, port: spec.listen.port)
                .wait()
        } catch {
            _ = state.withLockedValue { $0.acceptGates.removeValue(forKey: id) }
            let inUse = (error as? IOError)?.errnoCode == EADDRINUSE
            let hint = spec.scheme == .tproxy ? " (a tproxy:// listener's IP_TRANSPARENT needs CAP_NET_ADMIN)" : ""
            throw EngineError(message: "cannot listen on \(spec.listen): \(describe(error))\(hint)", addressInUse: inUse)
        }
        let running = state.withLockedValue { state -> Bool in
            guard state.accepting else { return false }
            state.listeners[id] = Listener(spec: spec, channel: channel, session: session)
            return true
        }
        guard running else {
            channel.close(promise: nil)
            throw EngineError(message: "cannot listen on \(spec): sluice is stopping")
        }
        ownListeners.add(channel.localAddress, id: id)
        logger.info("listening on \(spec)")
        return RunningListener(id: id, spec: spec, address: channel.localAddress, session: session)
    }

    /// Stops listener `id`: no new clients; the connections it accepted go on until they end.
    /// - Returns: the listener stopped; nil when none has that id.
    @discardableResult
    public func stopListening(_ id: Int) -> RunningListener? {
        let stopped: Listener? = state.withLockedValue { state in
            state.acceptGates.removeValue(forKey: id)
            return state.listeners.removeValue(forKey: id)
        }
        guard let stopped else { return nil }
        ownListeners.remove(id: id)
        try? stopped.channel.close().wait()
        logger.info("stopped listening on \(stopped.spec)")
        return RunningListener(id: id, spec: stopped.spec, address: nil, session: stopped.session)
    }

    /// The listeners running, by id.
    public var listeners: [RunningListener] {
        state.withLockedValue { state in
            state.listeners.map {
                RunningListener(id: $0.key, spec: $0.value.spec, address: $0.value.channel.localAddress, session: $0.value.session)
            }
        }.sorted { $0.id < $1.id }
    }

    /// The schemes this engine can listen with: the ones its modules serve.
    public var listenSchemes: [ListenScheme] {
        modules.keys.sorted { $0.name < $1.name }
    }

    /// Why a scheme of this build may have no module in this engine.
    private static func moduleHint(_ scheme: ListenScheme) -> String {
        scheme.name == "ssh" ? " (the SSH module starts only when sluice starts with an ssh:// listener or the control API)" : ""
    }

    /// Binds each listener's address once and lets it go, so that an occupied port is found before anything is
    /// created (the data directory, a CA, a store): a start that fails leaves nothing behind. The socket never
    /// listens, so no client can connect to it in between; `start()` binds for real, and a port taken in between
    /// is still its one clear error.
    public static func checkListenersAreFree(_ specs: [ListenSpec]) throws(EngineError) {
        for spec in specs where spec.listen.port != 0 {
            let problem: String?
            do {
                let address = try SocketAddress.makeAddressResolvingHost(spec.listen.host, port: spec.listen.port)
                problem = bindProblem(address)
            } catch {
                problem = describe(error)
            }
            if let problem { throw EngineError(message: "cannot listen on \(spec.listen): \(problem)") }
        }
    }

    /// Checks that listeners can bind `host` (an address of this machine), by binding port 0 once: the control API's
    /// proxies are opened on it later, one port at a time, and a wrong address should stop the start, not each proxy.
    public static func checkCanBind(host: String, what: String) throws(EngineError) {
        let problem: String?
        do {
            problem = bindProblem(try SocketAddress.makeAddressResolvingHost(host, port: 0))
        } catch {
            problem = describe(error)
        }
        if let problem { throw EngineError(message: "\(what) \(host): cannot bind it: \(problem)") }
    }

    private static func bindProblem(_ address: SocketAddress) -> String? {
        let descriptor = socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return String(cString: strerror(errno)).lowercased() }
        defer { close(descriptor) }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
        return result == 0 ? nil : String(cString: strerror(errno)).lowercased()
    }

    /// When a transparent listener is configured and its upstream connections are to be marked, checks that this
    /// process may set `SO_MARK` (it needs `CAP_NET_ADMIN`): better one clear error at start than every connection
    /// failing.
    public static func checkTransparentMark(_ configuration: Configuration) throws(EngineError) {
        let mark = configuration.transparent.mark
        guard mark != 0, configuration.listeners.contains(where: \.scheme.isTransparent) else { return }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var value = mark
        guard setsockopt(descriptor, SOL_SOCKET, SO_MARK, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            throw EngineError(
                message: "cannot mark upstream connections with SO_MARK 0x\(String(mark, radix: 16)): \(reason) (it needs CAP_NET_ADMIN; "
                    + "transparent.mark: 0 or --transparent-mark 0 turns marking off, and with it the rules' loop protection for local traffic)"
            )
        }
    }

    /// Open flows right now.
    public var openConnectionCount: Int {
        state.withLockedValue { $0.flows.count }
    }

    /// Stops accepting, closes every open connection and waits (up to `timeout`) until each flow has published
    /// its close. Then stops the event loops.
    public func shutdown(timeout: TimeInterval = 1.5) {
        let deadline = Date().addingTimeInterval(timeout)
        let open: [Channel] = state.withLockedValue { state in
            state.accepting = false
            return state.connections.values.flatMap { $0 }
        }
        closeListeners()
        for channel in open {
            channel.close(promise: nil)
        }
        func busy() -> Bool { state.withLockedValue { !$0.flows.isEmpty || !$0.connections.isEmpty } }
        while busy(), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        if openConnectionCount > 0 {
            logger.warning("connections still closing at shutdown", metadata: ["count": "\(openConnectionCount)"])
        }
        // A relay still parked on a full store must not be woken on a loop that is gone.
        bus.stop()
        try? group.syncShutdownGracefully()
    }

    /// The open flows with their live byte counts, oldest first.
    public var openConnections: [OpenConnection] {
        state.withLockedValue { $0.flows.values.map(\.snapshot) }.sorted { $0.flowID < $1.flowID }
    }

    /// Closes the connection carrying a flow, both ways, recording that the operator ended it.
    /// - Returns: false when the flow is not open.
    @discardableResult
    public func kill(_ flowID: FlowID) -> Bool {
        let found: (OpenFlow, [Channel])? = state.withLockedValue { state in
            guard let flow = state.flows[flowID] else { return nil }
            return (flow, state.connections[flow.connectionID] ?? [])
        }
        guard let (flow, channels) = found else { return false }
        flow.recorder.eventLoop.execute {
            flow.recorder.value.failed(.proxy, "killed by the operator")
            for channel in channels {
                channel.close(promise: nil)
            }
        }
        return true
    }

    /// Sends a message from the operator into an open flow that takes them (a WebSocket): `.up` to the server,
    /// `.down` to the client. Recorded like any other message.
    /// - Returns: false when the flow is not open or cannot take messages.
    @discardableResult
    public func send(_ data: Data, kind: MessageKind, direction: Direction, into flowID: FlowID) -> Bool {
        guard let flow = state.withLockedValue({ $0.flows[flowID] }) else { return false }
        let accepts = flow.recorder.eventLoop.submit { flow.recorder.value.injector != nil }
        guard (try? accepts.wait()) == true else { return false }
        flow.recorder.eventLoop.execute {
            flow.recorder.value.injector?(data, kind, direction)
        }
        return true
    }

    private func closeListeners() {
        let listeners = state.withLockedValue { state in
            defer {
                state.listeners = [:]
                state.acceptGates = [:]
            }
            return state.listeners.values.map(\.channel)
        }
        ownListeners.removeAll()
        for listener in listeners {
            try? listener.close().wait()
        }
    }

    /// How big each connection's receive buffer is: NIO keeps a channel's last one for its next read, so an idle
    /// connection holds one. It starts small (most first reads are a request head or a protocol's greeting) and
    /// doubles while reads fill it, up to 64 KiB for a bulk transfer, and shrinks again when reads get small.
    public static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)

    private func makeListener(_ spec: ListenSpec, id: Int, module: any ProtocolModule, session: SessionID?) -> ServerBootstrap {
        var bootstrap = ServerBootstrap(group: group)
        if spec.scheme == .tproxy {
            // Before bind: the listener then accepts connections addressed to anywhere (PROTOCOLS.md §7).
            bootstrap = bootstrap.serverChannelOption(OriginalDestination.transparentOption(forListenHost: spec.listen.host), value: 1)
        }
        return bootstrap
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: Self.receiveBuffers)
            // Nothing is read until the module has its handlers in place.
            .childChannelOption(.autoRead, value: false)
            .serverChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let gate = AcceptGate(
                        listener: spec.description, admits: { [self] in self.admitsConnection() },
                        accepted: { [self] client in self.countClient(client) }, log: { [logger] message in logger.warning("\(message)") }
                    )
                    try channel.pipeline.syncOperations.addHandler(gate)
                    let bound = NIOLoopBound(gate, eventLoop: channel.eventLoop)
                    state.withLockedValue { $0.acceptGates[id] = bound }
                }
            }
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        EarlyInput(whenActive: { self.accept(channel, spec: spec, module: module, session: session) })
                    )
                }
            }
    }

    /// Whether a listener may accept one more client connection; when not, it waits for `roomFreed`.
    private func admitsConnection() -> Bool {
        state.withLockedValue { state in
            let admits = state.acceptedClients < maxConnections
            if !admits { state.acceptPaused = true }
            return admits
        }
    }

    /// Counts an accepted client until it closes; its close wakes listeners waiting for room.
    private func countClient(_ client: Channel) {
        state.withLockedValue { $0.acceptedClients += 1 }
        client.closeFuture.whenComplete { [self] _ in
            let waiting: [NIOLoopBound<AcceptGate>] = self.state.withLockedValue { state in
                state.acceptedClients -= 1
                guard state.acceptPaused, state.acceptedClients < maxConnections else { return [] }
                state.acceptPaused = false
                return Array(state.acceptGates.values)
            }
            for gate in waiting {
                gate.eventLoop.execute { gate.value.roomFreed() }
            }
        }
    }

    /// - Parameters:
    ///   - replay: set when Sluice itself is the client (`serveReplay`): no access rules apply, and the
    ///     connection's flows name the flow they repeat.
    ///   - session: the listener's session, which the connection's flows name.
    private func accept(
        _ channel: Channel, spec: ListenSpec, module: any ProtocolModule, replay: ReplayOrigin? = nil, session: SessionID? = nil
    ) {
        if let refusal = bus.refusal {
            // The store cannot record (store.on_full: stop): an audit trail with a hole is worse than no service.
            if lastRefusal.withLockedValue({ last in defer { last = refusal }; return last != refusal }) {
                logger.error("refusing connections on \(spec): \(refusal)")
            }
            channel.close(promise: nil)
            return
        }
        let id: Int64? = state.withLockedValue { state in
            guard state.accepting else { return nil }
            let id = state.nextConnectionID
            state.nextConnectionID += 1
            state.connections[id] = [channel]
            return id
        }
        guard let id else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = self.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
        // A transparent listener on `[::]` takes IPv4 clients too: they are named by their IPv4 address, as the
        // destinations they were going to are.
        let client = spec.scheme.isTransparent ? channel.remoteAddress.flatMap(OriginalDestination.endpoint) : nil
        let connection = ClientConnection(
            id: id, channel: channel, spec: spec, configuration: configuration, bus: bus, gate: gate, bufferBudget: bufferBudget, policy: policy,
            registry: self, replay: replay, session: session, client: client
        )
        if replay == nil, let refusal = configuration.access.refusal(for: connection.client.host) {
            // Recorded like any flow, so a jumphost's operator sees who knocked.
            let recorder = openFlow(on: connection, kind: .tcp, server: spec.target ?? spec.listen, limits: RecordingLimits(configuration))
            recorder?.failed(.proxy, "refused: \(refusal)")
            recorder?.finish()
            channel.close(promise: nil)
            return
        }
        module.accept(connection)
    }
}

extension Engine {
    /// The engine's event loops, for work Sluice starts itself (replays).
    public var eventLoopGroup: EventLoopGroup { group }

    /// Starts a flow that no accepted connection carries: a request Sluice sends itself (a replay). Call on
    /// `eventLoop`, which then owns the recorder. The flow gets a connection entry of its own, so that a channel it
    /// opens (`adopt(_:forFlow:)`) is closed by `kill` and by shutdown like any other.
    /// - Returns: nil when the engine is shutting down.
    public func openDetachedFlow(
        kind: FlowKind, listener: String, client: Endpoint, server: Endpoint, on eventLoop: EventLoop, limits: RecordingLimits? = nil,
        replayOf: FlowID? = nil
    ) -> FlowRecorder? {
        let connectionID: Int64? = state.withLockedValue { state in
            guard state.accepting else { return nil }
            let id = state.nextConnectionID
            state.nextConnectionID += 1
            state.connections[id] = []
            return id
        }
        guard let connectionID else { return nil }
        let recorder = openFlow(
            connectionID: connectionID, eventLoop: eventLoop, listener: listener, kind: kind, client: client, server: server,
            limits: limits ?? RecordingLimits(configuration), replayOf: replayOf, session: nil
        )
        guard let recorder else {
            _ = state.withLockedValue { $0.connections.removeValue(forKey: connectionID) }
            return nil
        }
        let forgetFlow = recorder.onFinished
        recorder.onFinished = { [self] in
            forgetFlow?()
            _ = self.state.withLockedValue { $0.connections.removeValue(forKey: connectionID) }
        }
        return recorder
    }

    /// Tracks a channel a detached flow opened (a replay's connection to its server) until it closes. Closes the
    /// channel at once when the flow is over or the engine is stopping.
    public func adopt(_ channel: Channel, forFlow flowID: FlowID) {
        guard let connectionID = state.withLockedValue({ $0.flows[flowID]?.connectionID }) else {
            channel.close(promise: nil)
            return
        }
        adopt(channel, into: connectionID)
    }
}

extension Engine {
    /// The module that serves `scheme`'s listeners, e.g. for the database client a replay needs.
    public func module(for scheme: ListenScheme) -> (any ProtocolModule)? { modules[scheme] }

    /// Serves a connection Sluice makes itself, as if a client had connected to a listener of `spec`: a replay of
    /// database statements then goes through the module's inspector like any client's, so it is judged, held and
    /// recorded the same way. The two ends are a socket pair; the replay's client gets the other end.
    /// - Parameters:
    ///   - replayOf: the flow whose statements are sent again; the new flow names it.
    ///   - flowOpened: called with the new flow's id once the module opened it.
    ///   - client: sets up the replay client's channel (its handlers), on its event loop.
    /// - Returns: the client's channel, active; fails when the engine is stopping or has no module for the scheme.
    public func serveReplay(
        of replayOf: FlowID, on spec: ListenSpec, flowOpened: @escaping @Sendable (FlowID) -> Void,
        client: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Channel> {
        let eventLoop = group.next()
        guard let module = modules[spec.scheme] else {
            return eventLoop.makeFailedFuture(EngineError(message: "this build has no \(spec.scheme.name):// module"))
        }
        guard state.withLockedValue({ $0.accepting }) else {
            return eventLoop.makeFailedFuture(EngineError(message: "the engine is stopping"))
        }
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            return eventLoop.makeFailedFuture(EngineError(message: "cannot make a socket pair: \(String(cString: strerror(errno)))"))
        }
        let origin = ReplayOrigin(original: replayOf, flowOpened: flowOpened)
        let served = ClientBootstrap(group: eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        EarlyInput(whenActive: { self.accept(channel, spec: spec, module: module, replay: origin) })
                    )
                }
            }
            .withConnectedSocket(ends[0])
        let clientEnd = ends[1]
        return served.flatMapErrorThrowing { error in
            close(clientEnd)  // no channel took it
            throw error
        }.flatMap { server in
            ClientBootstrap(group: eventLoop).channelInitializer(client).withConnectedSocket(clientEnd)
                .flatMapErrorThrowing { error in
                    server.close(promise: nil)
                    throw error
                }
        }
    }
}

/// A listener as the engine runs it: its id (for `stopListening`), its spec and the address it is bound to.
public struct RunningListener: Sendable, Equatable {
    public var id: Int
    public var spec: ListenSpec
    /// The bound address (the port the system chose for port 0); nil once stopped.
    public var address: SocketAddress?
    /// The session it was opened for, if any.
    public var session: SessionID?

    public init(id: Int, spec: ListenSpec, address: SocketAddress?, session: SessionID? = nil) {
        self.id = id
        self.spec = spec
        self.address = address
        self.session = session
    }
}

/// A connection Sluice itself made to replay a flow.
struct ReplayOrigin: Sendable {
    var original: FlowID
    var flowOpened: @Sendable (FlowID) -> Void
}

extension Engine: ConnectionRegistry {
    func openFlow(on connection: ClientConnection, kind: FlowKind, server: Endpoint, limits: RecordingLimits) -> FlowRecorder? {
        let recorder = openFlow(
            connectionID: connection.id, eventLoop: connection.eventLoop, listener: connection.listenerName, kind: kind,
            client: connection.client, server: server, limits: limits, replayOf: connection.replay?.original, session: connection.session
        )
        if let recorder { connection.replay?.flowOpened(recorder.flowID) }
        if let recorder, let note = connection.route?.note {
            let alert = Alert(flowID: recorder.flowID, commandIndex: nil, time: Date(), level: .medium, rule: "transparent.unknown", message: note)
            bus.publish(.alert(alert))
        }
        return recorder
    }

    private func openFlow(
        connectionID: Int64, eventLoop: EventLoop, listener: String, kind: FlowKind, client: Endpoint, server: Endpoint, limits: RecordingLimits,
        replayOf: FlowID?, session: SessionID?
    ) -> FlowRecorder? {
        let openedAt = Date()
        // One lock: the id and the entry that `kill` and the connections view find.
        let recorder: FlowRecorder? = state.withLockedValue { state in
            guard state.accepting else { return nil }
            let flowID = FlowID(state.nextFlowID)
            state.nextFlowID += 1
            let recorder = FlowRecorder(flowID: flowID, bus: bus, limits: limits)
            let snapshot = OpenConnection(
                flowID: flowID, kind: kind, client: client, server: server, openedAt: openedAt, counters: recorder.counters
            )
            state.flows[flowID] = OpenFlow(
                connectionID: connectionID, recorder: NIOLoopBound(recorder, eventLoop: eventLoop), snapshot: snapshot
            )
            return recorder
        }
        guard let recorder else { return nil }
        let flowID = recorder.flowID
        recorder.onFinished = { [self] in
            self.gate.discard(flowID: flowID)
            _ = self.state.withLockedValue { $0.flows.removeValue(forKey: flowID) }
        }
        recorder.opened(kind: kind, listener: listener, client: client, server: server, replayOf: replayOf, session: session)
        return recorder
    }

    func adopt(_ channel: Channel, into connectionID: Int64) {
        let tracked = state.withLockedValue { state -> Bool in
            guard state.accepting, state.connections[connectionID] != nil else { return false }
            state.connections[connectionID]?.append(channel)
            return true
        }
        guard tracked else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            self.state.withLockedValue { state in
                state.connections[connectionID]?.removeAll { $0 === channel }
            }
        }
    }
}

/// An open flow as the connections view shows it.
public struct OpenConnection: Sendable {
    public var flowID: FlowID
    public var kind: FlowKind
    public var client: Endpoint
    public var server: Endpoint
    public var openedAt: Date
    /// The live counts of this engine's connection; nil for one read from elsewhere (a recorder's API).
    var counters: FlowCounters?
    private var countedUp: Int64 = 0
    private var countedDown: Int64 = 0

    public var bytesUp: Int64 { counters?.bytesUp ?? countedUp }
    public var bytesDown: Int64 { counters?.bytesDown ?? countedDown }

    init(flowID: FlowID, kind: FlowKind, client: Endpoint, server: Endpoint, openedAt: Date, counters: FlowCounters?) {
        self.flowID = flowID
        self.kind = kind
        self.client = client
        self.server = server
        self.openedAt = openedAt
        self.counters = counters
    }

    /// A connection as another process reported it, with its byte counts then.
    public init(flowID: FlowID, kind: FlowKind, client: Endpoint, server: Endpoint, openedAt: Date, bytesUp: Int64, bytesDown: Int64) {
        self.init(flowID: flowID, kind: kind, client: client, server: server, openedAt: openedAt, counters: nil)
        countedUp = bytesUp
        countedDown = bytesDown
    }
}

/// One line saying why the engine could not start.
public struct EngineError: Error, CustomStringConvertible {
    public var message: String
    /// A listener's port was taken (`EADDRINUSE`): a caller choosing ports may try the next one.
    public var addressInUse: Bool
    public var description: String { message }

    public init(message: String, addressInUse: Bool = false) {
        self.message = message
        self.addressInUse = addressInUse
    }
}
