import NIOCore
import NIOSSH
import SluiceCore
import SluiceModel

/// One client's SSH connection through Sluice, on the client channel's event loop: the server half facing the
/// client, the client half facing the target (connected at once, in parallel with the client's key exchange), the
/// login relay between them, and the channels they pair.
final class SSHProxySession {
    /// sshd's `LoginGraceTime`: a client that has not logged in by then is cut off.
    static let loginGrace: TimeAmount = .seconds(120)

    private let connection: ClientConnection
    private let recorder: FlowRecorder
    private let target: Endpoint
    private let module: SSHModule
    /// The settings, credentials and trusted target keys of this session's target.
    private let profile: SSHModule.Profile
    private let login = LoginRelay()
    private let commands: CommandLog
    /// Terminal sessions recorded so far on this connection (each its own .cast).
    private var recordedSessions = 0
    private var upstream: Channel?
    private var upstreamSSH: NIOSSHHandler?
    private var hostKeyCheck: TargetHostKeys.Delegate?
    private var loginTimer: Scheduled<Void>?
    /// The client's connection has closed: what happens to the target's after that is no error of the session.
    private var clientGone = false
    /// Who logged in (the name the target accepted).
    private(set) var user: String?

    init(connection: ClientConnection, recorder: FlowRecorder, target: Endpoint, module: SSHModule, profile: SSHModule.Profile) {
        self.connection = connection
        self.profile = profile
        self.recorder = recorder
        self.target = target
        self.module = module
        self.commands = CommandLog(
            flowID: recorder.flowID, target: target, bus: connection.bus, policy: connection.policy, gate: connection.gate
        )
    }

    private var eventLoop: EventLoop { connection.eventLoop }

    func start() {
        let client = connection.channel
        let serverRole = SSHServerConfiguration(
            hostKeys: [module.hostKey.nioKey], userAuthDelegate: LoginRelay.ServerSide(login, credentials: profile.credentials)
        )
        let handler = NIOSSHHandler(
            role: .server(serverRole), allocator: client.allocator,
            inboundChildChannelInitializer: { [self] child, type in self.clientOpened(child, type) }
        )
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        client.closeFuture.whenComplete { _ in
            let this = session.value
            this.loginTimer?.cancel()
            if !this.login.isAuthenticated, let reason = this.loginFailure() {
                this.recorder.failed(.client, reason)
            }
            this.clientGone = true
            this.connection.gate.discard(flowID: this.recorder.flowID)
            this.recorder.sideClosed(.client)
            this.upstream?.close(promise: nil)
            this.login.upstreamFailed("the client left")
        }
        login.onAuthenticated = { [self] user in
            self.loginTimer?.cancel()
            self.user = user
            self.commands.user = user
        }
        do {
            try client.pipeline.syncOperations.addHandler(handler)
            try client.pipeline.syncOperations.addHandler(SSHConnectionEvents(side: .client, session: self))
            try client.pipeline.syncOperations.handler(type: EarlyInput.self).release()
            try client.syncOptions?.setOption(.autoRead, value: true)
        } catch {
            fail(.proxy, "cannot set up the SSH server side: \(describe(error))")
            return
        }
        loginTimer = eventLoop.scheduleTask(in: Self.loginGrace) {
            session.value.fail(.client, "the client did not log in within \(Self.loginGrace.nanoseconds / 1_000_000_000) s")
        }
        connection.connect(to: target).whenComplete { result in
            let this = session.value
            switch result {
            case .success(let channel):
                this.upstreamConnected(channel)
            case .failure(let error):
                this.recorder.sideClosed(.server)
                this.fail(.connect, "cannot connect to \(this.target): \(describe(error))")
            }
        }
    }

    private func upstreamConnected(_ channel: Channel) {
        upstream = channel
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        channel.closeFuture.whenComplete { _ in
            let this = session.value
            this.recorder.sideClosed(.server)
            this.login.upstreamFailed("the target closed the connection")
            this.connection.channel.close(promise: nil)
        }
        guard connection.channel.isActive else {
            channel.close(promise: nil)
            return
        }
        let hostKeyCheck = TargetHostKeys.Delegate(keys: profile.targetKeys, target: target)
        self.hostKeyCheck = hostKeyCheck
        let clientRole = SSHClientConfiguration(userAuthDelegate: LoginRelay.ClientSide(login), serverAuthDelegate: hostKeyCheck)
        // No inbound channels from the target: a server opening channels to the client (forwarded-tcpip, X11,
        // agent) is refused, since Sluice never asks for them.
        let handler = NIOSSHHandler(role: .client(clientRole), allocator: channel.allocator, inboundChildChannelInitializer: nil)
        upstreamSSH = handler
        do {
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.pipeline.syncOperations.addHandler(SSHConnectionEvents(side: .server, session: self))
            try channel.pipeline.syncOperations.handler(type: EarlyInput.self).release()
            try channel.syncOptions?.setOption(.autoRead, value: true)
        } catch {
            fail(.proxy, "cannot set up the SSH client side: \(describe(error))")
        }
    }

    /// Why the client did not get in, when it tried: for the flow's error.
    private func loginFailure() -> String? {
        guard let user = login.user else { return nil }
        func times(_ count: Int) -> String { count == 1 ? "once" : "\(count) times" }
        if login.localRefusals > 0 {
            return "login as \(user) failed: Sluice lists no such key for \(user) (ssh.users), tried \(times(login.localRefusals))"
        }
        guard login.refusals > 0 else { return nil }
        switch profile.credentials {
        case .passthrough:
            return "login as \(user) failed: the target refused the password \(times(login.refusals))"
        case .configured:
            return "login as \(user) failed: the target refused Sluice's credentials (ssh.target_login)"
        }
    }

    /// The target accepted the login: from here on the client may open channels.
    fileprivate func upstreamAuthenticated() {
        login.upstreamAccepted()
    }

    fileprivate func connectionError(_ side: SSHConnectionEvents.Side, _ error: Error) {
        guard !clientGone else { return }
        switch side {
        case .client:
            if !(error is NIOSSHError), login.user == nil {
                // Reset before a login was even tried (a port probe, a scanner): a connection that came and went.
                connection.channel.close(promise: nil)
                upstream?.close(promise: nil)
                return
            }
            fail(.client, "SSH from the client: \(describe(error))")
        case .server:
            if let refusal = hostKeyCheck?.refusal {
                fail(.server, refusal.description)
            } else if !login.isAuthenticated, let reason = login.upstreamFailure {
                fail(.server, reason)
            } else {
                fail(.server, "SSH from the target: \(describe(error))")
            }
        }
    }

    /// Ends the session with an error on the flow (the first one counts) and closes both connections.
    private func fail(_ phase: FlowErrorPhase, _ message: String) {
        recorder.failed(phase, message)
        login.upstreamFailed(message)
        upstream?.close(promise: nil)
        connection.channel.close(promise: nil)
    }

    // MARK: Channels

    /// The client opens a channel: Sluice opens the same kind to the target, and confirms the client's only once
    /// the target has confirmed its own (or refuses it when the target refused).
    private func clientOpened(_ child: Channel, _ type: SSHChannelType) -> EventLoopFuture<Void> {
        guard login.isAuthenticated, let upstreamSSH else {
            return eventLoop.makeFailedFuture(ChannelRefused.notLoggedIn)
        }
        var channelRecorder = recorder
        switch type {
        case .session:
            break
        case .directTCPIP(let forward):
            let destination = "\(forward.targetHost):\(forward.targetPort)"
            guard profile.settings.allowPortForwarding else {
                // Port forwarding carries traffic past the session's recording: refused unless allowed, and said.
                commands.alert(
                    level: .medium, rule: "ssh.port_forwarding",
                    "refused \(commands.user)'s port forward to \(destination) (ssh.allow_port_forwarding is off)"
                )
                return eventLoop.makeFailedFuture(ChannelRefused.portForwarding)
            }
            // Allowed: each forwarded connection is a `tcp` flow of its own, opened by the target's sshd.
            guard let forwardRecorder = connection.openFlow(kind: .tcp, server: Endpoint(host: forward.targetHost, port: forward.targetPort))
            else {
                return eventLoop.makeFailedFuture(ChannelRefused.portForwarding)
            }
            commands.alert(level: .low, rule: "ssh.port_forwarding", "\(commands.user) forwards to \(destination): flow #\(forwardRecorder.flowID)")
            let bound = NIOLoopBound(forwardRecorder, eventLoop: eventLoop)
            child.closeFuture.whenComplete { _ in
                bound.value.sideClosed(.client)
                bound.value.sideClosed(.server)
            }
            channelRecorder = forwardRecorder
        case .forwardedTCPIP:
            return eventLoop.makeFailedFuture(ChannelRefused.portForwarding)
        }
        let recording = SSHChannelInspector.RecordingSettings(directory: module.dataDirectory, recordInput: profile.settings.recordInput)
        let inspector = SSHChannelInspector(
            recorder: channelRecorder, commands: commands, eventLoop: eventLoop, recording: recording,
            sessionNumber: { [self] in
                self.recordedSessions += 1
                return self.recordedSessions
            }
        )
        let (clientRelay, serverRelay) = SSHChannelRelay.matchedPair(inspector: inspector)
        let opened = eventLoop.makePromise(of: Channel.self)
        let relays = NIOLoopBound((client: clientRelay, server: serverRelay), eventLoop: eventLoop)
        upstreamSSH.createChannel(opened, channelType: type) { upstreamChild, _ in
            upstreamChild.eventLoop.makeCompletedFuture {
                try Self.configureChild(upstreamChild, relay: relays.value.server)
            }
        }
        return opened.futureResult.flatMapThrowing { _ in
            try Self.configureChild(child, relay: relays.value.client)
        }
    }

    /// A relayed channel reads on its own (its relay handler holds reads back while the partner cannot take more:
    /// child channels start with reads off) and takes an EOF as a half-close, to pass it on.
    private static func configureChild(_ child: Channel, relay: SSHChannelRelay) throws {
        try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        try child.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        try child.pipeline.syncOperations.addHandler(relay)
    }

    enum ChannelRefused: Error {
        case notLoggedIn
        case portForwarding
    }
}

/// The last handler of each connection's pipeline, telling the session what swift-nio-ssh reports: a protocol error
/// (a garbage banner, an oversized packet, a bad MAC) or an I/O error, which ends the session with a flow error; the
/// target's login success; the peer's end of input, which closes the connection.
final class SSHConnectionEvents: ChannelInboundHandler {
    typealias InboundIn = Any

    enum Side {
        case client
        case server
    }

    let side: Side
    let session: SSHProxySession

    init(side: Side, session: SSHProxySession) {
        self.side = side
        self.session = session
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if side == .server, event is UserAuthSuccessEvent {
            session.upstreamAuthenticated()
        }
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            // SSH has no half-close of the connection itself (channels have EOF): the peer is done.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        session.connectionError(side, error)
    }
}

@available(*, unavailable)
extension SSHConnectionEvents: Sendable {}
