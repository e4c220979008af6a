import NIOCore
import Testing

@testable import SluiceCore

/// `StreamCutter` with a toy framing: each message is a length byte and that many bytes.
@Suite struct StreamCutterTests {
    private struct Short: Error {}

    private static func next(_ input: inout ByteBuffer) -> [UInt8]? {
        guard let length = input.getInteger(at: input.readerIndex, as: UInt8.self),
            input.readableBytes >= 1 + Int(length)
        else { return nil }
        input.moveReaderIndex(forwardBy: 1)
        return input.readBytes(length: Int(length))
    }

    private static func passed(_ actions: [RelayAction]) -> [[UInt8]] {
        actions.map { action in
            switch action {
            case .pass(let buffer): return Array(buffer.readableBytesView)
            case .answer(let buffer): return [0xAA] + Array(buffer.readableBytesView)
            default: return [0xEE]
            }
        }
    }

    @Test func unchangedMessagesGoOnAsOneRunAndAReplacedOneBreaksIt() {
        var cutter = StreamCutter()
        var actions: [RelayAction] = []
        // "a", "bb", "x" (replaced by an answer), "c", then half of "dd".
        cutter.cut(ByteBuffer(bytes: [1, 97, 2, 98, 98, 1, 120, 1, 99, 2, 100]), into: &actions) { Self.next(&$0) } handle: {
            message, _ in message == [120] ? [.answer(ByteBuffer(bytes: [0x21]))] : nil
        }
        #expect(Self.passed(actions) == [[1, 97, 2, 98, 98], [0xAA, 0x21], [1, 99]])
        #expect(cutter.bufferedBytes == 2, "the half message waits")
        actions = []
        cutter.cut(ByteBuffer(bytes: [100]), into: &actions) { Self.next(&$0) } handle: { _, _ in nil }
        #expect(Self.passed(actions) == [[2, 100, 100]] && cutter.bufferedBytes == 0)
    }

    @Test func anEndStopsTheCuttingAndAnErrorIsThrown() {
        var cutter = StreamCutter()
        var actions: [RelayAction] = []
        cutter.cut(ByteBuffer(bytes: [1, 97, 1, 98, 1, 99]), into: &actions) { Self.next(&$0) } handle: { message, _ in
            message == [98] ? [.end(RelayEnding())] : nil
        }
        #expect(Self.passed(actions) == [[1, 97], [0xEE]], "nothing after the end")
        #expect(throws: Short.self) {
            try cutter.cut(ByteBuffer(bytes: [1, 97]), into: &actions) { (_: inout ByteBuffer) throws(Short) -> [UInt8]? in throw Short() } handle: {
                (_: [UInt8], _: ByteBuffer) throws(Short) -> [RelayAction]? in nil
            }
        }
    }
}
