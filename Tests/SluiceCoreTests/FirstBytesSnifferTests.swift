import NIOCore
import NIOEmbedded
import SluiceTestSupport
import Testing

@testable import SluiceCore

private let greet = TransparentProtocol(
    scheme: ListenScheme(name: "greet", target: .endpoint), ports: [7000],
    opening: .clientFirst { bytes, _ in
        let expected = Array("HELLO".utf8)
        if bytes.starts(with: expected) { return .match }
        return expected.starts(with: bytes) ? .needMoreData : .noMatch
    }
)

/// The sniffer in an embedded pipeline, and what it decided; on a decision it hands over, as the transparent module
/// does, and a collecting handler behind the new `EarlyInput` shows what a module would read.
private final class Harness {
    let channel = EmbeddedChannel()
    let sniffer: FirstBytesSniffer
    private let verdictBox = Verdicts()

    init(timeout: TimeAmount = .seconds(1)) throws {
        let verdicts = verdictBox
        let channel = self.channel
        sniffer = FirstBytesSniffer(sniffer: ProtocolSniffer(protocols: [greet]), port: 7000, timeout: timeout) { verdict in
            verdicts.list.append(verdict)
            let operations = channel.pipeline.syncOperations
            try? operations.handler(type: FirstBytesSniffer.self).handOver()
        }
        try channel.pipeline.syncOperations.addHandler(sniffer)
    }

    var decided: [ProtocolSniffer.Verdict] { verdictBox.list }

    final class Verdicts {
        var list: [ProtocolSniffer.Verdict] = []
    }

    /// What a module gets once it releases the `EarlyInput`: the bytes (as one string) and whether the input closed.
    func release() throws -> (String, Bool) {
        let early = try channel.pipeline.syncOperations.handler(type: EarlyInput.self)
        let collector = Collector()
        try channel.pipeline.syncOperations.addHandler(collector)
        early.release()
        return (collector.text, collector.inputClosed)
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var text = ""
        var inputClosed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, case .inputClosed = event { inputClosed = true }
        }
    }
}

@Suite(.ownThread) struct FirstBytesSnifferTests {
    @Test func byteAtATimeThenHandsEveryByteOver() throws {
        let harness = try Harness()
        harness.sniffer.start()
        #expect(harness.decided.isEmpty)
        for byte in "HELL".utf8 {
            try harness.channel.writeInbound(ByteBuffer(bytes: [byte]))
            #expect(harness.decided.isEmpty)
        }
        try harness.channel.writeInbound(ByteBuffer(string: "O, and more"))
        #expect(harness.decided == [.protocolNamed("greet")])
        // The sniffer left; the bytes wait in an `EarlyInput`, in order, whole.
        #expect(throws: Error.self) { try harness.channel.pipeline.syncOperations.handler(type: FirstBytesSniffer.self) }
        let (text, closed) = try harness.release()
        #expect(text == "HELLO, and more" && !closed)
        // Bytes after the hand-over reach the module too.
        try harness.channel.writeInbound(ByteBuffer(string: "!"))
        #expect(try harness.channel.pipeline.syncOperations.handler(type: Harness.Collector.self).text == "HELLO, and more!")
        _ = try harness.channel.finish()
    }

    @Test func somethingElseIsTCPAtTheFirstByteThatDoesNotFit() throws {
        let harness = try Harness()
        harness.sniffer.start()
        try harness.channel.writeInbound(ByteBuffer(string: "HEX"))
        #expect(harness.decided == [.tcp])
        #expect(try harness.release().0 == "HEX")
        _ = try harness.channel.finish()
    }

    @Test func aSilentClientIsTCPWhenTheTimeIsUp() throws {
        let harness = try Harness(timeout: .milliseconds(500))
        harness.sniffer.start()
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(harness.decided.isEmpty)
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(harness.decided == [.tcp])
        #expect(try harness.release().0 == "")
        _ = try harness.channel.finish()
    }

    @Test func aPartialOpeningIsDecidedWhenTheTimeIsUpAndKept() throws {
        let harness = try Harness(timeout: .milliseconds(500))
        harness.sniffer.start()
        try harness.channel.writeInbound(ByteBuffer(string: "HEL"))
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(harness.decided == [.tcp])
        #expect(try harness.release().0 == "HEL")
        _ = try harness.channel.finish()
    }

    @Test func aHalfCloseDecidesAndIsHandedOverBehindTheBytes() throws {
        let harness = try Harness()
        harness.sniffer.start()
        try harness.channel.writeInbound(ByteBuffer(string: "HELL"))
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(harness.decided == [.tcp])
        let (text, closed) = try harness.release()
        #expect(text == "HELL" && closed)
        // The timer was cancelled: nothing more is decided.
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(harness.decided.count == 1)
        _ = try harness.channel.finish()
    }

    @Test func bytesThatCameBeforeTheStartCount() throws {
        let harness = try Harness()
        harness.channel.pipeline.fireChannelRead(ByteBuffer(string: "HELLO"))
        #expect(harness.decided.isEmpty)
        harness.sniffer.start()
        #expect(harness.decided == [.protocolNamed("greet")])
        _ = try harness.channel.finish()
    }

    @Test func aClientGoneBeforeItSpokeIsNotHandedOver() throws {
        let harness = try Harness()
        try harness.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        harness.sniffer.start()
        try harness.channel.writeInbound(ByteBuffer(string: "HE"))
        _ = try harness.channel.finish()
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(harness.decided.isEmpty)
    }

    /// `maxBytes` of an opening that still fits is as far as it goes: decided then, and nothing more is asked for.
    @Test func neverHoldsMoreThanTheLimitAndARead() throws {
        let endless = TransparentProtocol(scheme: ListenScheme(name: "endless", target: .endpoint), ports: [], opening: .clientFirst { _, _ in .needMoreData })
        let channel = EmbeddedChannel()
        var decided: [ProtocolSniffer.Verdict] = []
        let sniffer = FirstBytesSniffer(sniffer: ProtocolSniffer(protocols: [endless]), port: 1, timeout: .seconds(60)) { decided.append($0) }
        try channel.pipeline.syncOperations.addHandler(sniffer)
        sniffer.start()
        let chunk = ByteBuffer(repeating: 0x41, count: 1000)
        var sent = 0
        while decided.isEmpty && sent < 10 * ProtocolSniffer.maxBytes {
            try channel.writeInbound(chunk)
            sent += chunk.readableBytes
        }
        #expect(decided == [.tcp])
        #expect(sent >= ProtocolSniffer.maxBytes && sent < ProtocolSniffer.maxBytes + chunk.readableBytes)
        _ = try channel.finish()
    }
}
