import NIOCore
import SluiceCore
import Testing

@testable import SluicePostgres

/// How a transparent listener recognises a PostgreSQL client: the head of its untyped startup packet.
@Suite struct PostgresSniffTests {
    private func sniff(_ bytes: [UInt8], port: Int = 5432) -> SniffResult {
        PostgresModule.sniff(ByteBuffer(bytes: bytes).readableBytesView, port: port)
    }

    private static func u32(_ value: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8(value >> $0 & 0xff) } }

    /// What psql 15 sends first with sslmode=disable: a StartupMessage (3.0) with user, database and application name.
    static let startup: [UInt8] = {
        let body = Array("user\0sluice\0database\0sluice\0application_name\0psql\0\0".utf8)
        return u32(8 + body.count) + u32(196_608) + body
    }()
    static let sslRequest: [UInt8] = u32(8) + u32(80_877_103)
    static let gssRequest: [UInt8] = u32(8) + u32(80_877_104)
    static let cancelRequest: [UInt8] = u32(16) + u32(80_877_102) + u32(4242) + u32(0x1234_5678)

    @Test func everyOpeningOnAnyPort() {
        for opening in [Self.startup, Self.sslRequest, Self.gssRequest, Self.cancelRequest] {
            #expect(sniff(opening) == .match)
            #expect(sniff(opening, port: 6543) == .match)
        }
    }

    @Test func byteAtATimeDecidesOnTheEighth() {
        for opening in [Self.startup, Self.sslRequest, Self.cancelRequest] {
            for length in 0..<8 {
                #expect(sniff(Array(opening.prefix(length))) == .needMoreData, "after \(length) bytes")
            }
            for length in 8...opening.count {
                #expect(sniff(Array(opening.prefix(length))) == .match)
            }
        }
    }

    @Test func aFirstByteThatNoStartupPacketHasIsNoMatchAtOnce() {
        #expect(sniff(Array("G".utf8)) == .noMatch)
        #expect(sniff([0x16]) == .noMatch)
        #expect(sniff([0x00, 0x01]) == .noMatch)  // a length of 65536 or more
    }

    @Test(arguments: [
        u32(8) + u32(196_608),  // a StartupMessage with no parameters at all
        u32(10_001) + u32(196_608),  // longer than the server accepts
        u32(7) + u32(196_608),
        u32(100) + u32(131_072),  // protocol 2.0
        u32(100) + u32(262_144),  // protocol 4.0
        u32(12) + u32(80_877_103),  // an SSLRequest of the wrong length
        u32(8) + u32(80_877_102),  // a CancelRequest without its keys
        u32(8) + u32(80_877_105),  // an unknown special request
    ])
    func brokenHeadsAreNot(bytes: [UInt8]) {
        #expect(sniff(bytes) == .noMatch)
    }

    @Test func declaredOnPort5432() {
        #expect(PostgresModule.transparentProtocols.map(\.name) == ["postgres"])
        #expect(PostgresModule.transparentProtocols.first?.ports == [5432])
    }
}
