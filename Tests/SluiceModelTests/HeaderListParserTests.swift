import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceModel

struct HeaderListParserTests {
    /// What Foundation's JSON parser makes of the text, as fields: the reference the hand-written parser replaced.
    private func reference(_ json: String) -> [HeaderField]? {
        guard let pairs = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String]] else { return nil }
        guard pairs.allSatisfy({ $0.count == 2 }) else { return nil }
        return pairs.map { HeaderField(name: $0[0], value: $0[1]) }
    }

    @Test func readsWhatTheWriterWrites() {
        let text = String((0..<0x80).map { Character(Unicode.Scalar(UInt8($0))) }) + "é 日本 🙂 \u{2028}"
        for fields in [
            [],
            [HeaderField(name: "Host", value: "example.com")],
            [HeaderField(name: "X-\"q\"", value: text), HeaderField(name: "a", value: ""), HeaderField(name: "a", value: "b\\c")],
        ] {
            let json = String(decoding: JSONObject.headersJSON(fields), as: UTF8.self)
            #expect(HeaderListParser.parse(json) == fields)
        }
    }

    @Test func acceptsAnyJSONOfTheShape() {
        #expect(HeaderListParser.parse(" [ [ \"a\" , \"b\" ] ,\n[\"c\",\"d\"] ]\r\n\t") == [
            HeaderField(name: "a", value: "b"), HeaderField(name: "c", value: "d"),
        ])
        #expect(HeaderListParser.parse(#"[["\/\b\f\n\r\t\"\\","\u00e9\u65E5\ud83d\ude42"]]"#) == [
            HeaderField(name: "/\u{8}\u{C}\n\r\t\"\\", value: "é日🙂")
        ])
        #expect(HeaderListParser.parse("[]") == [])
    }

    /// A header value can be made of nothing but characters that need escaping; it reads back whole.
    @Test func aValueOfManyEscapesReadsBackWhole() {
        let value = String(repeating: "\"\\\u{1}", count: 20_000)
        let json = String(decoding: JSONObject.headersJSON([HeaderField(name: "x", value: value)]), as: UTF8.self)
        #expect(HeaderListParser.parse(json) == [HeaderField(name: "x", value: value)])
    }

    @Test func refusesEverythingElse() {
        for json in [
            "", "[", "]", "[[]]", "[[\"a\"]]", "[[\"a\",\"b\",\"c\"]]", "[[\"a\",1]]", "[[\"a\",\"b\"],]", "[[\"a\",\"b\"]] x",
            "{}", "[[\"a\" \"b\"]]", "[[\"a\",\"b\"", "[[\"a\",\"b]]", "[[\"a\",\"\u{1}\"]]", #"[["\x","b"]]"#,
            #"[["\u12","b"]]"#, #"[["\u12G4","b"]]"#, #"[["\ud83d","b"]]"#, #"[["\ude42","b"]]"#, #"[["\ud83d\u0041","b"]]"#,
            #"[["\ud83d \ude42","b"]]"#, "[[\"a\",\"b\"]][]", "null",
        ] {
            #expect(HeaderListParser.parse(json) == nil, "\(json)")
        }
    }

    /// Every proper prefix of a list is incomplete, cut anywhere, escapes included.
    @Test func everyTruncationIsRefused() {
        let json = String(
            decoding: JSONObject.headersJSON([HeaderField(name: "a\u{1}", value: "\"é\" 🙂"), HeaderField(name: "b", value: "c")]),
            as: UTF8.self)
        let utf8 = Array(json.utf8)
        for end in 0..<utf8.count {
            let prefix = String(decoding: utf8[..<end], as: UTF8.self)
            // Cutting inside a multi-byte character makes a replacement character, a different string: still no list.
            #expect(HeaderListParser.parse(prefix) == nil, "\(prefix)")
        }
    }

    /// Random lists and random damage to them: the parser agrees with Foundation's JSON parser on every one.
    @Test func agreesWithFoundationOnRandomInput() {
        var generator = SplitMix(seed: 0x5EED_4EAD)
        let alphabet: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{7F}", "é", "日", "🙂", ",", "[", "]"]
        let damage: [String] = ["[", "]", ",", "\"", "\\", "\\u", "\\ud83d", "u", " ", "x", "00"]
        for _ in 0..<3000 {
            let fields = (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                HeaderField(
                    name: (0..<Int.random(in: 0...5, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined(),
                    value: (0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
                )
            }
            var json = Array(String(decoding: JSONObject.headersJSON(fields), as: UTF8.self))
            #expect(HeaderListParser.parse(String(json)) == fields)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0...json.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where at < json.count: json.remove(at: at)
                case 1: json.insert(contentsOf: damage.randomElement(using: &generator)!, at: at)
                default: if at < json.count { json[at] = Character(damage.randomElement(using: &generator)!.prefix(1).description) }
                }
            }
            let damaged = String(json)
            let parsed = HeaderListParser.parse(damaged)
            let expected = reference(damaged)
            // Foundation also takes a trailing comma (`[["a","b"],]`), which JSON does not allow; nor does the parser.
            if parsed == nil, expected != nil, damaged.replacingOccurrences(of: " ", with: "").contains(",]") { continue }
            #expect(parsed == expected, "\(damaged.debugDescription)")
        }
    }
}
