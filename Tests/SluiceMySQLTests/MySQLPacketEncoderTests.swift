import NIOCore
import SluiceMySQL
import Testing

@Suite("MySQLPacketEncoder")
struct MySQLPacketEncoderTests {
    @Test("the ERR for a blocked statement, byte for byte")
    func blockedStatement() throws {
        let packet = MySQLPacketEncoder.errorPacket(
            code: 1142, sqlState: "42000", message: "blocked by Sluice policy: drop-table", sequenceID: 1)
        let message = Array("blocked by Sluice policy: drop-table".utf8)
        let expected = Wire.packet(1, [0xFF, 0x76, 0x04], Array("#42000".utf8), message)
        #expect(Array(packet.readableBytesView) == expected)

        var framer = MySQLPacketFramer()
        var input = packet
        let frame = try #require(try framer.next(&input))
        #expect(frame.sequenceID == 1)
        guard case .payload(let payload) = frame.kind else {
            Issue.record("not a payload")
            return
        }
        #expect(
            try MySQLErrorPacket(payload: payload, capabilities: .protocol41)
                == MySQLErrorPacket(code: 1142, sqlState: "42000", message: "blocked by Sluice policy: drop-table"))
    }

    @Test("the encoder writes exactly what MariaDB wrote: ERR 1146, the OK to COM_PING, an OK with info")
    func sameAsMariaDB() {
        let error = MariaDBCaptures.classic[named: "COM_QUERY no such table"].serverPackets.first
        #expect(
            error
                == Array(
                    MySQLPacketEncoder.errorPacket(
                        code: 1146, sqlState: "42S02", message: "Table 'sluice.nosuch' doesn't exist", sequenceID: 1
                    ).readableBytesView))
        let ping = MariaDBCaptures.classic[named: "COM_PING"].serverPackets.first
        #expect(ping == Array(MySQLPacketEncoder.okPacket(status: .autocommit, sequenceID: 1).readableBytesView))
        let insert = MariaDBCaptures.classic[named: "COM_QUERY insert"].serverPackets.first
        #expect(
            insert
                == Array(
                    MySQLPacketEncoder.okPacket(
                        affectedRows: 2, lastInsertID: 1, status: .autocommit,
                        info: "Records: 2  Duplicates: 0  Warnings: 0", sequenceID: 1
                    ).readableBytesView))
        let endOfRows = MariaDBCaptures.deprecateEOF[named: "COM_QUERY select 1"].serverPackets.last
        #expect(
            endOfRows
                == Array(
                    MySQLPacketEncoder.okPacket(status: .autocommit, endsResultSet: true, sequenceID: 4)
                        .readableBytesView))
    }

    @Test("an invalid SQLSTATE becomes HY000; a long message is cut at 512 bytes on a character boundary")
    func sanitised() throws {
        for state in ["4200", "420000", "42 00", "4200é"] {
            let packet = MySQLPacketEncoder.errorPacket(code: 1, sqlState: state, message: "m", sequenceID: 1)
            #expect(Array(packet.readableBytesView)[7...12] == ArraySlice(Array("#HY000".utf8)))
        }
        let message = "a" + String(repeating: "é", count: 300)
        let packet = MySQLPacketEncoder.errorPacket(code: 1, sqlState: "HY000", message: message, sequenceID: 9)
        let payload = buffer(Array(packet.readableBytesView.dropFirst(4)))
        let decoded = try MySQLErrorPacket(payload: payload, capabilities: .protocol41)
        #expect(decoded.message == "a" + String(repeating: "é", count: 255))
        #expect(decoded.message.utf8.count == 511)
    }

    @Test(
        "payloads of 0xFFFFFF bytes and more are split the protocol's way and frame back",
        arguments: [
            0, 1, 0xFF_FFFE, 0xFF_FFFF, 0x100_0000, 2 * 0xFF_FFFF, 2 * 0xFF_FFFF + 5,
        ])
    func splitting(length: Int) throws {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0x5A, count: length)
        var wire = ByteBuffer()
        let next = MySQLPacketEncoder.writePacket(payload: payload, sequenceID: 0xFE, into: &wire)
        let packets = length / 0xFF_FFFF + 1
        #expect(wire.readableBytes == length + 4 * packets)
        #expect(next == UInt8(truncatingIfNeeded: 0xFE + packets))
        // Every header: full packets, then the shorter last one.
        var offset = wire.readerIndex
        for index in 0..<packets {
            let header = try #require(wire.getInteger(at: offset, endianness: .little, as: UInt32.self))
            let expected = index < packets - 1 ? 0xFF_FFFF : length % 0xFF_FFFF
            #expect(Int(header & 0xFF_FFFF) == expected)
            #expect(UInt8(header >> 24) == UInt8(truncatingIfNeeded: 0xFE + index))
            offset += 4 + Int(header & 0xFF_FFFF)
        }
        // Frame it back with a cap above the payload: one payload, equal to the original.
        var framer = MySQLPacketFramer(maxInspectedPayloadBytes: max(length, 4096))
        var input = wire
        let frame = try #require(try framer.next(&input))
        #expect(frame.kind == .payload(payload))
        #expect(frame.sequenceID == 0xFE)
        #expect(frame.lastSequenceID == UInt8(truncatingIfNeeded: 0xFE + packets - 1))
        #expect(input.readableBytes == 0)
    }

    @Test("a rewritten greeting re-framed keeps its sequence id and length")
    func reframe() throws {
        let greeting = buffer(MySQLHandshakeTests.mariaDBGreeting)
        let rewritten = try MySQLHandshake.rewritingCapabilities(of: greeting, clearing: .clearedBySluice)
        var wire = ByteBuffer()
        #expect(MySQLPacketEncoder.writePacket(payload: rewritten, sequenceID: 0, into: &wire) == 1)
        #expect(wire.readableBytes == greeting.readableBytes + 4)
        #expect(wire.getInteger(at: 0, endianness: .little, as: UInt32.self) == UInt32(greeting.readableBytes))
    }
}
