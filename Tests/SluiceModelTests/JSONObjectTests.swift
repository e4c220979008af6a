import Foundation
import SluiceModel
import Testing

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

    @Test func linesAppendedInPlaceAreWholeObjectsEach() throws {
        var lines = ByteSink(capacity: 16)  // small: the objects make it grow
        JSONObject.appendLine(to: &lines) { $0.string("event", "open").int("flow", 1) }
        JSONObject.appendLine(to: &lines) { $0.int("flow", 2).string("text", "a \"quoted\" line\n").bool("ok", true) }
        JSONObject.appendLine(to: &lines) { $0 }
        let text = lines.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        #expect(text == "{\"event\":\"open\",\"flow\":1}\n{\"flow\":2,\"text\":\"a \\\"quoted\\\" line\\n\",\"ok\":true}\n{}\n")
        let parsed = try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(parsed.count == 3)
        #expect(parsed[1]?["text"] as? String == "a \"quoted\" line\n")
    }

    @Test func anObjectOfItsOwnIsTheSameAsOneAppendedInPlace() {
        var lines = ByteSink()
        JSONObject.appendLine(to: &lines) { $0.string("a", "b").int("c", -3) }
        var own = ByteSink()
        JSONObject().string("a", "b").int("c", -3).appendLine(to: &own)
        #expect(lines.array == own.array)
    }
}
