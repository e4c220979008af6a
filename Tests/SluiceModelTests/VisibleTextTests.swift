import SluiceModel
import Testing

@Suite struct VisibleTextTests {
    @Test(arguments: [
        ("plain text, ünïcödé ✓", "plain text, ünïcödé ✓"),
        ("a\u{1B}[2Jb", "a\\e[2Jb"),
        ("user\nforged 12:00:00 #1 line", "user\\nforged 12:00:00 #1 line"),
        ("\r\t\u{00}\u{07}\u{7F}", "\\r\\t\\x00\\x07\\x7F"),
        ("\u{9B}31m", "\\x9B31m"),  // C1 CSI
        ("abc\u{202E}cba", "abc\\u{202E}cba"),  // right-to-left override
        ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
    ])
    func controlCharactersAreWrittenOut(_ text: String, _ expected: String) {
        #expect(text.visible == expected)
    }
}
