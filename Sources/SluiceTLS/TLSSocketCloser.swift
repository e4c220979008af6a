import NIOCore

/// Sits between the socket and a TLS handler so that the socket can be closed without TLS's leave.
///
/// Closing a TLS connection sends close_notify and then waits for the peer's own close_notify, up to the TLS
/// handler's shutdown timeout. Most clients never send one: curl, browsers and load generators read Sluice's
/// close_notify as the end and just close their socket. Once that end of stream has come, nothing more can arrive,
/// and the wait only held the socket in CLOSE-WAIT (half a second per connection, hundreds of sockets at a few
/// hundred new connections a second). `closeSocket` closes from below the TLS handler, which then ends as on any
/// closed connection.
public final class TLSSocketCloser: ChannelOutboundHandler, RemovableChannelHandler {
    /// Whatever the TLS handler writes passes by untouched (NIO's pipeline admits only inbound or outbound handlers).
    public typealias OutboundIn = Any

    private var context: ChannelHandlerContext?

    public init() {}

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Closes the socket now. Only for a connection whose TLS close was already asked for and whose peer has
    /// closed its side: before that, it would cut off what the TLS handler has yet to write.
    public func closeSocket() {
        context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension TLSSocketCloser: Sendable {}
