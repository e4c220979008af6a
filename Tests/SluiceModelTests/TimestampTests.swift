import Foundation
import Testing

@testable import SluiceModel

@Suite struct TimestampTests {
    @Test func formatsUTCWithMilliseconds() {
        let date = Date(timeIntervalSince1970: 1_796_080_701.123_4)
        #expect(Timestamp.iso8601(date) == "2026-11-30T23:18:21.123Z")
        #expect(Timestamp.day(date) == "2026-11-30")
        #expect(Timestamp.timeOfDay(date) == "23:18:21.123")
    }

    @Test func agreesWithFoundationsFormatter() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for seconds in stride(from: 0.0, to: 2_000_000_000, by: 123_456_789.987) {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(Timestamp.iso8601(date) == formatter.string(from: date))
        }
    }

    @Test func yearsOutsideFourDigitsAreClampedNotACrash() {
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 1e12)).hasPrefix("9999-"))
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: -1e11)).hasPrefix("0000-"))
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 1e300)).hasPrefix("9999-"))
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: -.infinity)).hasPrefix("0000-"))
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: .nan)) == "1970-01-01T00:00:00.000Z")
    }
}

@Suite struct ByteFormattingTests {
    @Test func timesAgreeWithFoundationAcrossCenturiesAndBeforeTheEpoch() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var seconds = -2_208_988_800.0  // 1900-01-01
        while seconds < 7_258_118_400 {  // 2200-01-01
            let date = Date(timeIntervalSince1970: seconds)
            #expect(Timestamp.iso8601(date) == formatter.string(from: date))
            #expect(Timestamp.dayNumber(date) == Int64((seconds / 86_400).rounded(.down)))
            seconds += 7_654_321.789
        }
        // Around midnight, leap days and the epoch itself.
        for text in ["2024-02-29T23:59:59.999Z", "2000-03-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z",
                     "1969-12-31T23:59:59.001Z", "2100-02-28T12:00:00.500Z"] {
            let date = try #require(formatter.date(from: text) as Date?)
            #expect(Timestamp.iso8601(date) == text)
        }
    }

    @Test func integersOfEveryWidth() {
        for value: Int64 in [0, 7, -1, 10, 99, 100, -12_345, Int64.max, Int64.min] {
            #expect(JSONObject().int("n", value).line == "{\"n\":\(value)}")
        }
    }

    @Test func base64AgreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        for count in Array(0...66) + [1024, 4099] {
            let data = Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let line = JSONObject().base64("b", data).line
            #expect(line == "{\"b\":\"\(data.base64EncodedString())\"}")
        }
    }

    @Test func everyControlCharacterAndNonASCIIRoundTrips() throws {
        let text = String((0..<0x80).map { Character(Unicode.Scalar(UInt8($0))) }) + "é 日本 🙂 \u{2028}"
        let line = JSONObject().string("t", text).json("h", JSONObject.headersJSON([HeaderField(name: "X-\"q\"", value: text)])).line
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(parsed["t"] as? String == text)
        #expect((parsed["h"] as? [[String]])?.first == ["X-\"q\"", text])
        #expect(JSONObject.parseHeaders(String(decoding: JSONObject.headersJSON([HeaderField(name: "a", value: text)]), as: UTF8.self))
            == [HeaderField(name: "a", value: text)])
        #expect(!line.contains("\n"))
    }

    @Test func timeFieldAndLines() {
        var buffer = ByteSink(capacity: 16)
        JSONObject().time("t", Date(timeIntervalSince1970: 0.25)).appendLine(to: &buffer)
        JSONObject().optionalDouble("d", nil).double("e", .infinity).appendLine(to: &buffer)
        #expect(buffer.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } == "{\"t\":\"1970-01-01T00:00:00.250Z\"}\n{\"d\":null,\"e\":null}\n")
    }

    @Test func theWordAtATimeCheckFlagsExactlyTheBytesThatNeedEscaping() {
        for byte in UInt8.min...UInt8.max {
            for position in 0..<8 {
                var word = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                word[position] = byte
                let value = word.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let needs = byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                #expect(JSONObject.mayNeedEscaping(value) == needs, "byte \(byte) at \(position)")
            }
        }
    }

    /// Every length up to a few words, one byte set at every position: the overlapping last word must see it.
    @Test func theWholeStringCheckFindsABadByteAnywhere() {
        let bad: [UInt8] = [0x00, 0x0A, 0x1F, UInt8(ascii: "\""), UInt8(ascii: "\\")]
        let harmless: [UInt8] = [0x20, 0x7F, 0x80, 0xFF, UInt8(ascii: "a")]
        for count in 1...25 {
            let clean = [UInt8](repeating: UInt8(ascii: "x"), count: count)
            #expect(!clean.withUnsafeBufferPointer { JSONObject.needsEscaping($0.baseAddress!, count: count) })
            for position in 0..<count {
                for byte in bad + harmless {
                    var text = clean
                    text[position] = byte
                    let found = text.withUnsafeBufferPointer { JSONObject.needsEscaping($0.baseAddress!, count: count) }
                    #expect(found == bad.contains(byte), "byte \(byte) at \(position) of \(count)")
                }
            }
        }
    }

    @Test func randomStringsQuoteAsFoundationParsesThem() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\u{1}", "\u{1f}", "é", "日", "🙂", "/", "\u{7f}"]
        for _ in 0..<500 {
            let text = (0..<Int.random(in: 0...40, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let line = JSONObject().string("t", text).line
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(parsed["t"] as? String == text)
        }
    }

    @Test func endpointsAreWrittenAsTheirDescription() throws {
        let cases = [
            (Endpoint(host: "127.0.0.1", port: 8080), "127.0.0.1:8080"), (Endpoint(host: "::1", port: 443), "[::1]:443"),
            (Endpoint(host: "example.com", port: 0), "example.com:0"),
        ]
        for (endpoint, text) in cases {
            #expect(endpoint.description == text)
            #expect(Endpoint(parsing: text) == endpoint)
            let line = JSONObject().endpoint("e", endpoint).line
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(parsed["e"] as? String == text)
        }
    }
}

@Suite struct ByteSinkTests {
    @Test func growsAndKeepsEveryByteInOrder() {
        var sink = ByteSink(capacity: 1)
        var expected: [UInt8] = []
        for round in 0..<200 {
            sink.append(UInt8(truncatingIfNeeded: round))
            expected.append(UInt8(truncatingIfNeeded: round))
            let run = [UInt8](repeating: UInt8(truncatingIfNeeded: round * 7), count: round % 37)
            sink.append(run)
            expected += run
        }
        sink.append("é;")
        sink.append(StaticString("end"))
        let scalar: StaticString = StaticString(unicodeScalarLiteral: "ü")
        sink.append(scalar)
        expected += Array("é;endü".utf8)
        #expect(sink.count == expected.count)
        #expect(sink.array == expected)
        var buffer: [UInt8] = [9]
        sink.append(to: &buffer)
        #expect(buffer == [9] + expected)
    }

    @Test func parsesWhatItWrites() {
        for seconds in stride(from: -2_000_000_000.0, to: 4_000_000_000, by: 98_765_432.123) {
            let date = Date(timeIntervalSince1970: (seconds * 1000).rounded() / 1000)
            let parsed = Timestamp.parseISO8601(Timestamp.iso8601(date))
            #expect(parsed.map { abs($0.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_5 } == true, "\(date)")
        }
        #expect(Timestamp.parseISO8601("2026-11-30T23:18:21Z") == Date(timeIntervalSince1970: 1_796_080_701))
        #expect(Timestamp.parseISO8601("2000-02-29T00:00:00.000Z") == Date(timeIntervalSince1970: 951_782_400))
    }

    @Test func refusesWhatIsNotItsFormat() {
        for text in ["", "2026-11-30", "2026-11-30T23:18:21.123", "2026-13-30T23:18:21.123Z", "2026-11-30T24:18:21.123Z",
            "2026-11-30 23:18:21.123Z", "2026-11-30T23:18:21.12aZ", "+026-11-30T23:18:21.123Z", "2026-11-30T23:18:21.1234Z"]
        {
            #expect(Timestamp.parseISO8601(text) == nil, "\(text)")
        }
    }
}
