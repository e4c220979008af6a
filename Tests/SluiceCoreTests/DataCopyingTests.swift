import Foundation
import NIOCore
import SluiceCore
import Testing

@Suite struct DataCopyingTests {
    @Test func copiesExactlyTheReadableBytes() {
        var buffer = ByteBuffer(bytes: Array(0...255))
        buffer.moveReaderIndex(forwardBy: 10)
        buffer.moveWriterIndex(to: 200)
        #expect(Data(copying: buffer.readableBytesView) == Data(Array(10..<200).map(UInt8.init)))
        let view = buffer.readableBytesView
        #expect(Data(copying: view.prefix(3)) == Data([10, 11, 12]), "a prefix of the view")
        #expect(Data(copying: view.dropFirst(187)) == Data([197, 198, 199]), "a slice that starts inside the view")
        #expect(Data(copying: ByteBuffer().readableBytesView).isEmpty)
    }

    @Test func theCopyOutlivesChangesToTheBuffer() {
        var buffer = ByteBuffer(bytes: [1, 2, 3])
        let copy = Data(copying: buffer.readableBytesView)
        buffer.setBytes([9, 9, 9], at: buffer.readerIndex)
        #expect(copy == Data([1, 2, 3]))
    }
}
