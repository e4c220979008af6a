import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import SluiceCore

/// Counts the reads that pass it (towards the socket).
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Never
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite struct AcceptGateTests {
    private func gate(admits: NIOLockedValueBox<Bool>, log: NIOLockedValueBox<[String]>) throws -> (EmbeddedChannel, ReadCounter, AcceptGate) {
        let counter = ReadCounter()
        let gate = AcceptGate(
            listener: "tcp://127.0.0.1:9000=>h:1", admits: { admits.withLockedValue { $0 } }, accepted: { _ in },
            log: { message in log.withLockedValue { $0.append(message) } }
        )
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(gate)
        return (channel, counter, gate)
    }

    @Test func atCapacityReadsWaitForRoomAndThePauseIsSaidOnce() throws {
        let admits = NIOLockedValueBox(false)
        let log = NIOLockedValueBox<[String]>([])
        let (channel, counter, gate) = try gate(admits: admits, log: log)
        channel.pipeline.read()
        channel.pipeline.read()
        #expect(counter.reads == 0)
        #expect(log.withLockedValue { $0 }.count == 1)
        admits.withLockedValue { $0 = true }
        gate.roomFreed()
        #expect(counter.reads == 1)
        #expect(log.withLockedValue { $0 }.last?.contains("again") == true)
    }

    @Test func outOfDescriptorsWaitsASecondBeforeAcceptingAgain() throws {
        let admits = NIOLockedValueBox(true)
        let log = NIOLockedValueBox<[String]>([])
        let (channel, counter, _) = try gate(admits: admits, log: log)
        channel.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        channel.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        channel.pipeline.read()
        #expect(counter.reads == 0, "no accept during the backoff")
        #expect(log.withLockedValue { $0 }.count == 1, "said once: \(log.withLockedValue { $0 })")
        #expect(log.withLockedValue { $0 }.first?.contains("open files limit") == true)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(counter.reads == 0)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(counter.reads == 1)
    }

    @Test func otherErrorsPassOn() throws {
        let (channel, _, _) = try gate(admits: NIOLockedValueBox(true), log: NIOLockedValueBox([]))
        channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "x"))
        #expect(throws: IOError.self) { try channel.throwIfErrorCaught() }
    }
}
