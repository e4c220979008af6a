import Testing

@testable import SluiceModel

@Suite struct HexdumpTests {
    @Test func fullLineHasOffsetTwoHexGroupsAndAscii() {
        let bytes = Array("Hello, world!\n\u{0}\u{7f}".utf8)
        #expect(
            Hexdump.lines(bytes) == [
                "00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 7f  |Hello, world!...|"
            ]
        )
    }

    @Test func shortLastLineIsPaddedSoTheAsciiColumnLinesUp() {
        let lines = Hexdump.lines(Array(0..<20) as [UInt8], startOffset: 0x100)
        #expect(lines.count == 2)
        #expect(lines[1] == "00000110  10 11 12 13" + String(repeating: " ", count: 39) + "|....|")
        #expect(lines[0].firstIndex(of: "|") == lines[1].firstIndex(of: "|"))
    }

    @Test func emptyInputHasNoLines() {
        #expect(Hexdump.lines([UInt8]()).isEmpty)
        #expect(Hexdump.format([UInt8]()) == "")
    }

    @Test func offsetsContinueFromStartOffset() {
        let lines = Hexdump.lines([UInt8](repeating: 0x41, count: 33), startOffset: 16)
        #expect(lines.map { String($0.prefix(8)) } == ["00000010", "00000020", "00000030"])
    }
}

@Suite struct FormattingTests {
    @Test(arguments: [
        (Int64(0), "0 B"), (512, "512 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (64 << 20, "64.0 MiB"), (3 << 30, "3.0 GiB"),
    ])
    func bytes(_ count: Int64, _ expected: String) {
        #expect(Formatting.bytes(count) == expected)
    }

    @Test(arguments: [(0.0042, "4ms"), (2.345, "2.35s"), (245.0, "4m05s"), (7380.0, "2h03m")])
    func durations(_ seconds: Double, _ expected: String) {
        #expect(Formatting.duration(seconds: seconds) == expected)
    }
}
