import Testing

@testable import SluiceModel

@Suite struct JSONIndenterTests {
    func laidOut(_ text: String) -> [String]? {
        JSONIndenter.lines(Array(text.utf8))
    }

    @Test func anObjectIsOneMemberPerLineInTheOrderSent() {
        #expect(
            laidOut(#"{"user":"alice","password":"hunter2","items":[1,2,3]}"#) == [
                "{",
                #"  "user": "alice","#,
                #"  "password": "hunter2","#,
                #"  "items": ["#,
                "    1,",
                "    2,",
                "    3",
                "  ]",
                "}",
            ]
        )
    }

    @Test func everyTokenIsKeptAsItTravelled() {
        // Two equal keys, a number JSONSerialization would rewrite, escapes it would change: all shown as sent.
        let lines = laidOut(#"{"role":"user","role":"admin","x":1.0,"big":12345678901234567890,"u":"a\/b","e":"caf\u00e9","n":-0.5E+3}"#)
        #expect(
            lines == [
                "{",
                #"  "role": "user","#,
                #"  "role": "admin","#,
                #"  "x": 1.0,"#,
                #"  "big": 12345678901234567890,"#,
                #"  "u": "a\/b","#,
                #"  "e": "caf\u00e9","#,
                #"  "n": -0.5E+3"#,
                "}",
            ]
        )
    }

    @Test func emptyContainersStayOnTheirLineAndWhiteSpaceIsReplaced() {
        #expect(laidOut("  [ {} , [ ] , { \"a\" :\n\t{ } } ]\r\n") == ["[", "  {},", "  [],", "  {", #"    "a": {}"#, "  }", "]"])
        #expect(laidOut("{}") == ["{}"])
        #expect(laidOut("[true,false,null]") == ["[", "  true,", "  false,", "  null", "]"])
    }

    @Test func aStringKeepsWhatLooksLikeStructure() {
        #expect(laidOut(#"{"a":"{[,:]}\"\\"}"#) == ["{", #"  "a": "{[,:]}\"\\""#, "}"])
    }

    @Test func anythingButOneObjectOrArrayIsNotLaidOut() {
        for text in [
            "", "   ", #""text""#, "42", "true", "{", "[1,2", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "[1 2]",
            "{} {}", "{}x", "[01]", "[1.]", "[-]", "[1e]", "[.5]", "[tru]", "[truex]", "[\"a\u{1}\"]", #"["\x"]"#,
            #"["\u12"]"#, #"["abc"#, "{\"a\":}", "[}", "{]", "hello, world",
        ] {
            #expect(laidOut(text) == nil, "\(text.debugDescription)")
        }
    }

    @Test func bytesThatAreNotUTF8AreNotLaidOut() {
        #expect(JSONIndenter.lines(Array(#"{"a":""#.utf8) + [0xFF] + Array(#""}"#.utf8)) == nil)
    }

    @Test func nestingIsBoundedWithoutRecursion() {
        let deepest = String(repeating: "[", count: JSONIndenter.maxDepth) + String(repeating: "]", count: JSONIndenter.maxDepth)
        #expect(laidOut(deepest)?.count == 2 * JSONIndenter.maxDepth - 1)
        let tooDeep = "[" + deepest + "]"
        #expect(laidOut(tooDeep) == nil)
        // A hostile body nested far deeper: refused quickly, no stack used.
        #expect(laidOut(String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)) == nil)
    }
}
