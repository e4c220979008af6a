import NIOCore
import NIOSSH
import SluiceModel

/// Relays one SSH channel between the client's connection and the target's (a matched pair, one handler on each
/// child channel, both on the session's event loop).
///
/// - Data both ways with backpressure: a side is read only while its partner can take more, so swift-nio-ssh's
///   channel windows push back on the sender (it sends WINDOW_ADJUST only as a channel is read).
/// - Requests in order (pty-req, env, shell, exec, subsystem, window-change, signal one way; exit-status,
///   exit-signal and xon-xoff the other), and each reply to a `want_reply` request back to the side that asked, in
///   the order asked (RFC 4254 §5.4), including the replies Sluice gives itself (a blocked exec).
/// - EOF as a half-close and close after everything written, so exit-status arrives before EOF before close, as
///   OpenSSH's client needs to report the remote status.
final class SSHChannelRelay: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    enum Side {
        /// The channel the client opened to Sluice.
        case client
        /// The channel Sluice opened to the target.
        case server

        var direction: Direction { self == .client ? .up : .down }
    }

    /// Who answers a request the client made that wants a reply.
    private enum ReplySource {
        case target
        case sluice(success: Bool)
    }

    let side: Side
    private let inspector: SSHChannelInspector
    private var partner: SSHChannelRelay?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Client side only: the replies owed to the client, oldest first.
    private var owedReplies: [ReplySource] = []
    /// The future of the last write to this channel: EOF and close wait for it.
    private var lastWrite: EventLoopFuture<Void>?
    private var closing = false
    /// This side's peer sent EOF.
    private var receivedEOF = false

    private init(side: Side, inspector: SSHChannelInspector) {
        self.side = side
        self.inspector = inspector
    }

    static func matchedPair(inspector: SSHChannelInspector) -> (client: SSHChannelRelay, server: SSHChannelRelay) {
        let client = SSHChannelRelay(side: .client, inspector: inspector)
        let server = SSHChannelRelay(side: .server, inspector: inspector)
        client.partner = server
        server.partner = client
        inspector.attach(client: client)
        return (client, server)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have been asked to read before this side existed: it can go on now.
        partner?.readIfPending()
    }

    func channelActive(context: ChannelHandlerContext) {
        partner?.readIfPending()
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    // MARK: Data

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .byteBuffer(let buffer) = message.data else { return }  // nio-ssh delivers buffers only
        switch side {
        case .client:
            inspector.clientData(buffer, type: message.type)
        case .server:
            inspector.serverData(buffer, type: message.type)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flushWrites()
    }

    /// Sends bytes out on this channel (to this side's peer).
    func send(_ buffer: ByteBuffer, type: SSHChannelData.DataType = .channel) {
        guard let context, !closing else { return }
        lastWrite = context.write(wrapOutboundOut(SSHChannelData(type: type, data: .byteBuffer(buffer))))
    }

    func flushWrites() {
        context?.flush()
    }

    /// The partner of this side, for the inspector to forward through.
    var peer: SSHChannelRelay? { partner }

    // MARK: Backpressure

    func read(context: ChannelHandlerContext) {
        if !isPaused, let partner, partner.isWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.readIfPending() }
        context.fireChannelWritabilityChanged()
    }

    /// The inspector stops a direction while a command waits for a verdict, and starts it again.
    var isPaused = false {
        didSet { if !isPaused { readIfPending() } }
    }

    private func readIfPending() {
        guard pendingRead, !isPaused, partner?.isWritable == true, let context else { return }
        pendingRead = false
        context.read()
    }

    // MARK: Requests and replies

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch (side, event) {
        case (.client, let request as SSHChannelRequestEvent.ExecRequest):
            inspector.exec(request)
        case (.client, let request as SSHChannelRequestEvent.PseudoTerminalRequest):
            inspector.ptyRequested(request)
            forwardRequest(request, wantReply: request.wantReply)
        case (.client, let request as SSHChannelRequestEvent.WindowChangeRequest):
            inspector.windowChanged(request)
            forwardRequest(request, wantReply: false)
        case (.client, let request as SSHChannelRequestEvent.ShellRequest):
            inspector.shellRequested()
            forwardRequest(request, wantReply: request.wantReply)
        case (.client, let request as SSHChannelRequestEvent.SubsystemRequest):
            inspector.subsystemRequested(request.subsystem)
            forwardRequest(request, wantReply: request.wantReply)
        case (.client, let request as SSHChannelRequestEvent.EnvironmentRequest):
            forwardRequest(request, wantReply: request.wantReply)
        case (.client, let request as SSHChannelRequestEvent.SignalRequest):
            forwardRequest(request, wantReply: false)
        case (.server, let status as SSHChannelRequestEvent.ExitStatus):
            inspector.exitStatus(status.exitStatus)
            partner?.context?.triggerUserOutboundEvent(status, promise: nil)
        case (.server, let signal as SSHChannelRequestEvent.ExitSignal):
            inspector.exitSignal(signal.signalName)
            partner?.context?.triggerUserOutboundEvent(signal, promise: nil)
        case (.server, let flowControl as SSHChannelRequestEvent.LocalFlowControlRequest):
            partner?.context?.triggerUserOutboundEvent(flowControl, promise: nil)
        case (.server, is ChannelSuccessEvent):
            partner?.targetReplied(success: true)
        case (.server, is ChannelFailureEvent):
            partner?.targetReplied(success: false)
        case (_, let channelEvent as ChannelEvent) where channelEvent == .inputClosed:
            receivedEOF = true
            if side == .client {
                inspector.clientEnded()  // the inspector passes the EOF on once nothing waits for a verdict
            } else {
                partner?.closeOutputAfterWrites()
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Client side: sends a client's request on to the target, noting that the target owes the client its reply.
    func forwardRequest(_ request: Any, wantReply: Bool) {
        guard let partner, let target = partner.context else {
            if wantReply { reply(success: false) }
            return
        }
        if wantReply { owedReplies.append(.target) }
        target.triggerUserOutboundEvent(request, promise: nil)
    }

    /// Client side: Sluice answers a request itself (in its turn among the target's answers).
    func reply(success: Bool) {
        owedReplies.append(.sluice(success: success))
        sendOwedReplies()
    }

    private func targetReplied(success: Bool) {
        guard case .target = owedReplies.first else { return }  // a reply nobody asked for is dropped
        owedReplies.removeFirst()
        context?.triggerUserOutboundEvent(success ? ChannelSuccessEvent() as Any : ChannelFailureEvent() as Any, promise: nil)
        sendOwedReplies()
    }

    private func sendOwedReplies() {
        while case .sluice(let success) = owedReplies.first {
            owedReplies.removeFirst()
            context?.triggerUserOutboundEvent(success ? ChannelSuccessEvent() as Any : ChannelFailureEvent() as Any, promise: nil)
        }
    }

    /// Client side: ends the channel the way a finished command does, without the target: `stderr`, then the exit
    /// status once it is written, then EOF and close (a blocked exec).
    func finishLocally(stderr: ByteBuffer, exitStatus: Int) {
        guard let context, !closing else { return }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(SSHChannelData(type: .stdErr, data: .byteBuffer(stderr)))).whenComplete { _ in
            channel.triggerUserOutboundEvent(SSHChannelRequestEvent.ExitStatus(exitStatus: exitStatus), promise: nil)
            channel.close(mode: .output, promise: nil)
            channel.close(promise: nil)
        }
        closing = true
    }

    // MARK: Ending

    /// EOF on this channel once everything before it is written.
    ///
    /// Not when this side's peer has sent its own EOF already: swift-nio-ssh 0.15.1 refuses to send EOF after
    /// receiving one ("Sent EOF out of sequence", its state machine has the two half-closed states swapped there) and
    /// closes the channel, losing the exit status that OpenSSH's server sends after its EOF. That peer is done
    /// sending anyway; the close that follows tells it the rest.
    func closeOutputAfterWrites() {
        guard let context, !receivedEOF else { return }
        flushWrites()
        let channel = context.channel
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(mode: .output, promise: nil) }
        } else {
            channel.close(mode: .output, promise: nil)
        }
    }

    /// Closes this channel once everything before it is written.
    func closeAfterWrites() {
        guard let context, !closing else { return }
        closing = true
        flushWrites()
        let channel = context.channel
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if side == .client { inspector.channelClosed() }
        partner?.closeAfterWrites()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A channel-level protocol error (nio-ssh closes the channel itself); the connection goes on.
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension SSHChannelRelay: Sendable {}
