import Testing

@testable import SluicePolicy

/// The patterns rules use for programs, arguments and redirections.
@Suite struct GlobTests {
    @Test(arguments: [
        ("rm", "rm", true),
        ("rm", "rmdir", false),
        ("mkfs.*", "mkfs.ext4", true),
        ("mkfs.*", "mkfs", false),
        ("python*", "python3.11", true),
        ("of=/dev/sd*", "of=/dev/sda1", true),
        ("of=/dev/sd*", "of=/dev/null", false),
        ("/*", "/etc", true),
        ("/*", "/tmp/x", false),
        ("/\\*", "/*", true),
        ("/\\*", "/etc", false),
        ("?", "a", true),
        ("?", "/", false),
        ("[0-9]", "7", true),
        ("[!0-9]", "7", false),
        ("[abc", "[abc", true),
        ("*a*b*c*", "xxaxxbxxcxx", true),
        ("*a*b*c*", "xxaxxcxxbxx", false),
        ("", "", true),
        ("*", "", true),
    ])
    func matches(_ pattern: String, _ text: String, _ expected: Bool) {
        #expect(Glob(pattern).matches(text) == expected)
    }

    @Test func manyStarsAgainstALongTextStayLinear() {
        let pattern = Glob(String(repeating: "*a", count: 50) + "b")
        let text = String(repeating: "a", count: 60_000)
        var matched = true
        let seconds = cpuSeconds { matched = pattern.matches(text) }
        #expect(!matched)
        #expect(seconds < 5, "\(seconds) s of CPU")
    }
}
