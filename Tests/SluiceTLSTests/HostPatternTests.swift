import Testing

@testable import SluiceTLS

@Suite struct HostPatternTests {
    func pattern(_ text: String) throws -> HostPattern {
        try #require(HostPattern(text))
    }

    @Test func wildcardMatchesSubdomainsOnly() throws {
        let wildcard = try pattern("*.example.com")
        for host in ["a.example.com", "a.b.example.com", "WWW.Example.COM", "a.example.com."] {
            #expect(wildcard.matches(host), "\(host)")
        }
        for host in ["example.com", "badexample.com", "example.com.evil.net", "aexample.com", ".example.com", ""] {
            #expect(!wildcard.matches(host), "\(host)")
        }
        #expect(wildcard.description == "*.example.com")
    }

    @Test func exactMatchesOnlyItself() throws {
        let exact = try pattern("Example.com")
        #expect(exact.matches("example.com"))
        #expect(exact.matches("EXAMPLE.COM."))
        #expect(!exact.matches("a.example.com"))
        #expect(!exact.matches("example.co"))
    }

    @Test func starMatchesEverything() throws {
        let star = try pattern("*")
        for host in ["example.com", "127.0.0.1", "::1", "x"] {
            #expect(star.matches(host))
        }
    }

    @Test func ipLiterals() throws {
        #expect(try pattern("[::1]").matches("::1"))
        #expect(try pattern("10.0.0.1").matches("10.0.0.1"))
        #expect(try !pattern("10.0.0.1").matches("10.0.0.10"))
    }

    @Test(arguments: ["", "*.", "foo*.com", "*.*.com", "a.*.com", "**"])
    func patternsThatCouldNeverMatchAreRejected(_ text: String) {
        #expect(HostPattern(text) == nil)
    }

    @Test func matchesAny() throws {
        let list = [try pattern("*.apple.com"), try pattern("bank.example")]
        #expect(HostPattern.matches("itunes.apple.com", any: list))
        #expect(HostPattern.matches("BANK.example", any: list))
        #expect(!HostPattern.matches("apple.com", any: list))
        #expect(!HostPattern.matches("example.com", any: []))
    }
}
