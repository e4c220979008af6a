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
}

@Suite struct JSONObjectTests {
    @Test func escapesAndParsesBack() throws {
        let line = JSONObject()
            .string("text", "quote \" backslash \\ newline \n tab \t bell \u{7} é")
            .int("n", -42).bool("ok", true).optionalString("none", nil).optionalInt("m", 7).double("d", 1.5)
            .line
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(parsed["text"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{7} é")
        #expect(parsed["n"] as? Int == -42)
        #expect(parsed["ok"] as? Bool == true)
        #expect(parsed["none"] is NSNull)
        #expect(parsed["m"] as? Int == 7)
        #expect(parsed["d"] as? Double == 1.5)
        #expect(!line.contains("\n"))
    }

    @Test func emptyObject() {
        #expect(JSONObject().line == "{}")
    }
}
