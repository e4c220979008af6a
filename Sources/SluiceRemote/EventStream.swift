import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SluiceAPI

/// The recorder's live event stream (`GET /api/events`), kept open: each event goes to `onEvent` (on the client's
/// event loop) as it arrives. When the stream ends (the recorder restarted, a slow reader was cut off), it says so
/// through `onLost` and connects again a second later; `onOpen` runs on every (re)connection, so the caller can read
/// again what it may have missed.
public final class EventStream: Sendable {
    private let client: APIClient
    private let onOpen: @Sendable () -> Void
    private let onEvent: @Sendable (_ name: String, _ data: String) -> Void
    private let onLost: @Sendable (_ why: String) -> Void
    private let state = NIOLockedValueBox(State())

    private struct State {
        var stopped = false
        var channel: Channel?
    }

    static let retryDelay = TimeAmount.seconds(1)

    public init(
        client: APIClient, onOpen: @escaping @Sendable () -> Void, onEvent: @escaping @Sendable (String, String) -> Void,
        onLost: @escaping @Sendable (String) -> Void
    ) {
        self.client = client
        self.onOpen = onOpen
        self.onEvent = onEvent
        self.onLost = onLost
    }

    public func start() {
        connect()
    }

    /// Closes the stream for good.
    public func stop() {
        let channel = state.withLockedValue { state -> Channel? in
            state.stopped = true
            return state.channel
        }
        channel?.close(promise: nil)
    }

    private func connect() {
        guard !state.withLockedValue({ $0.stopped }) else { return }
        let handler = EventStreamHandler(stream: self)
        client.connect { channel in try channel.pipeline.syncOperations.addHandler(handler) }.whenComplete { result in
            switch result {
            case .success(let channel):
                let stopped = self.state.withLockedValue { state -> Bool in
                    state.channel = channel
                    return state.stopped
                }
                if stopped {
                    channel.close(promise: nil)
                    return
                }
                self.client.write(.GET, "/api/events", json: nil, accept: "text/event-stream", on: channel)
            case .failure(let error):
                self.lost("cannot reach the recorder's API at \(self.client.address): \(error)")
            }
        }
    }

    fileprivate func opened() {
        onOpen()
    }

    fileprivate func received(_ event: ServerSentEventParser.Event) {
        onEvent(event.name, event.data)
    }

    /// The stream ended: say why, and try again unless stopped.
    fileprivate func lost(_ why: String) {
        guard !state.withLockedValue({ state -> Bool in
            state.channel = nil
            return state.stopped
        })
        else { return }
        onLost(why)
        client.group.next().scheduleTask(in: Self.retryDelay) { self.connect() }
    }
}

/// Reads the stream's reply: a 200 opens it, then its body is parsed into events.
private final class EventStreamHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop.
    typealias InboundIn = HTTPClientResponsePart

    private let stream: EventStream
    private var parser = ServerSentEventParser()
    private var failure: String?

    init(stream: EventStream) {
        self.stream = stream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard head.status == .ok else {
                failure = "the recorder refused its event stream: HTTP \(head.status.code)"
                    + (head.status == .unauthorized ? " (is the token right?)" : "")
                context.close(promise: nil)
                return
            }
            stream.opened()
        case .body(let buffer):
            guard failure == nil else { return }
            do {
                for event in try parser.feed(buffer.readableBytesView) { stream.received(event) }
            } catch {
                failure = "an event of the recorder's stream is over \(error.limit >> 20) MiB"
                context.close(promise: nil)
            }
        case .end:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream.lost(failure ?? "the recorder's event stream ended")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if failure == nil { failure = "the recorder's event stream failed: \(error)" }
        context.close(promise: nil)
    }
}
