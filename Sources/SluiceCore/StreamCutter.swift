import NIOCore

/// One direction of a relayed stream cut into a protocol's messages, for inspectors whose protocols frame their own
/// messages (PostgreSQL, MySQL): it keeps what arrived of a message not yet complete, and turns runs of messages that
/// pass unchanged into one `pass` of the input, a slice with no copy. A message the inspector answers, holds or
/// rewrites breaks the run.
public struct StreamCutter {
    /// What arrived of a message not yet complete; nil when nothing waits (the common case: a read is then cut
    /// where it lies).
    private var pending: ByteBuffer?

    public init() {}

    /// Bytes kept for a message still arriving.
    public var bufferedBytes: Int { pending?.readableBytes ?? 0 }

    public mutating func reset() {
        pending = nil
    }

    /// Cuts `buffer` (after what was pending) into messages and appends what the relay should do with them.
    /// - Parameters:
    ///   - next: cuts the next message off the front of the input, or returns nil, consuming nothing, when it has
    ///     not all come.
    ///   - handle: what becomes of a message, given the input after it: nil passes it as it came; actions replace
    ///     it. Actions ending in `.end` stop the cutting (the connection is ending), and so do actions ending in
    ///     `.secureSender` (the rest of the input goes to the new handler, as the action's `unread`).
    /// - Throws: what `next` or `handle` throw (the peer broke the protocol); the connection must then end.
    public mutating func cut<Message, Failure: Error>(
        _ buffer: ByteBuffer, into actions: inout [RelayAction], next: (inout ByteBuffer) throws(Failure) -> Message?,
        handle: (Message, ByteBuffer) throws(Failure) -> [RelayAction]?
    ) throws(Failure) {
        var input: ByteBuffer
        if var waiting = pending {
            var buffer = buffer
            waiting.writeBuffer(&buffer)
            input = waiting
        } else {
            input = buffer
        }
        pending = nil
        // Runs are sliced from this view: a buffer hands out slices of its readable bytes only, and `next` consumes
        // them.
        let whole = input
        var runStart = input.readerIndex
        while true {
            let messageStart = input.readerIndex
            guard let message = try next(&input) else { break }
            guard let replacement = try handle(message, input) else { continue }
            if messageStart > runStart, let run = whole.getSlice(at: runStart, length: messageStart - runStart) {
                actions.append(.pass(run))
            }
            actions.append(contentsOf: replacement)
            runStart = input.readerIndex
            // An end stops cutting, and so does a new handler in front of the sender: what follows belongs to it.
            switch replacement.last {
            case .end?, .secureSender?: return
            default: break
            }
        }
        if input.readerIndex > runStart, let run = whole.getSlice(at: runStart, length: input.readerIndex - runStart) {
            actions.append(.pass(run))
        }
        if input.readableBytes > 0 {
            input.discardReadBytes()
            pending = input
        }
    }
}
