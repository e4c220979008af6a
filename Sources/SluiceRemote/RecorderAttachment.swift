import Dispatch
import NIOConcurrencyHelpers
import SluiceAPI
import SluiceModel
import SluiceTUI

/// A TUI attached to a running recorder: the engine controls (`RemoteEngine`) and the live feed, filled from the
/// recorder's event stream. The held queue is updated from the stream before the event reaches the feed, so the
/// screen that shows a hold finds it in the queue. A poll once a second refreshes what the stream does not carry
/// (connections and their bytes, listeners) and makes up for anything missed while the stream was down.
public final class RecorderAttachment {
    public let engine: RemoteEngine
    public let feed = LiveFeed()
    private let stream: EventStream
    private var poll: DispatchSourceTimer?
    private let lost = NIOLockedValueBox<String?>(nil)

    public init(client: APIClient) {
        let engine = RemoteEngine(client: client)
        let feed = feed
        let lost = lost
        self.engine = engine
        self.stream = EventStream(
            client: client,
            onOpen: {
                lost.withLockedValue { $0 = nil }
                // Off the client's event loop, which the request's reply needs.
                DispatchQueue.global().async { try? engine.queue.reload() }
            },
            onEvent: { name, data in
                guard let event = APIEventCoding.decode(name: name, json: data) else { return }
                switch event {
                case .messageHeld(let held): engine.queue.noteHeld(held)
                case .messageReleased(let released): engine.queue.noteReleased(released.holdID)
                case .commandDecided(let decided): engine.queue.noteDecided(flowID: decided.flowID, index: decided.index)
                default: break
                }
                feed.receive(event)
            },
            onLost: { why in lost.withLockedValue { $0 = why } }
        )
    }

    /// Reads the recorder once (so a wrong address or token fails here, in one line), then opens the stream and
    /// starts the poll.
    public func start() throws(RemoteError) {
        try engine.refresh()
        stream.start()
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "sluice-attach-poll"))
        timer.schedule(deadline: .now() + 1, repeating: 1)
        let engine = engine
        timer.setEventHandler { try? engine.refresh() }
        timer.resume()
        poll = timer
    }

    public func stop() {
        poll?.cancel()
        poll = nil
        stream.stop()
        engine.client.shutdown()
    }

    /// What is wrong with the connection to the recorder now, for the status line; nil while all is well.
    public var problem: String? {
        engine.problem ?? lost.withLockedValue { $0 }
    }
}
