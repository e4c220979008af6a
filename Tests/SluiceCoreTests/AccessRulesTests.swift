import Foundation
import Testing

@testable import SluiceCore

@Suite struct AccessRulesTests {
    @Test func cidrMatchesIPv4AndIPv6AndMappedAddresses() throws {
        let ten = try #require(CIDR("10.0.0.0/8"))
        #expect(ten.contains(try #require(CIDR.addressBytes("10.200.3.4"))))
        #expect(!ten.contains(try #require(CIDR.addressBytes("11.0.0.1"))))
        #expect(ten.contains(try #require(CIDR.addressBytes("::ffff:10.1.2.3"))))
        let odd = try #require(CIDR("192.168.1.64/26"))
        #expect(odd.contains(try #require(CIDR.addressBytes("192.168.1.127"))))
        #expect(!odd.contains(try #require(CIDR.addressBytes("192.168.1.128"))))
        let v6 = try #require(CIDR("fd00::/8"))
        #expect(v6.contains(try #require(CIDR.addressBytes("fd12:3456::1"))))
        #expect(!v6.contains(try #require(CIDR.addressBytes("10.0.0.1"))))
        #expect(try #require(CIDR("::1")).contains(try #require(CIDR.addressBytes("::1"))))
    }

    @Test(arguments: ["", "10.0.0.0/33", "10.0.0/8", "host.example", "10.0.0.0/8/1", "::1/129", "10.0.0.0/-1"])
    func badRangesAreRejected(_ text: String) {
        #expect(CIDR(text) == nil)
    }

    @Test func denyWinsOverAllow() throws {
        var rules = AccessRules()
        rules.allow = [try #require(CIDR("10.0.0.0/8"))]
        rules.deny = [try #require(CIDR("10.0.0.66"))]
        #expect(rules.refusal(for: "10.0.0.5") == nil)
        #expect(rules.refusal(for: "10.0.0.66")?.contains("denied") == true)
        #expect(rules.refusal(for: "192.0.2.1")?.contains("allow list") == true)
        #expect(AccessRules().refusal(for: "192.0.2.1") == nil)
    }

    @Test func proxyCredentials() {
        var rules = AccessRules()
        #expect(rules.authenticationFailure(nil) == nil, "no rules, no authentication")
        rules.users = ["alice:pw"]
        rules.token = "tok"
        func basic(_ pair: String) -> String { "Basic " + Data(pair.utf8).base64EncodedString() }
        #expect(rules.authenticationFailure(nil) == "proxy authentication required")
        #expect(rules.authenticationFailure(basic("alice:pw")) == nil)
        #expect(rules.authenticationFailure(basic("bob:tok")) == nil)
        #expect(rules.authenticationFailure("Bearer tok") == nil)
        #expect(rules.authenticationFailure(basic("alice:nope"))?.contains("alice") == true)
        #expect(rules.authenticationFailure(basic("alice:nope"))?.contains("nope") == false, "never the password")
        #expect(rules.authenticationFailure("Basic !!!") == "malformed Basic credentials")
        #expect(rules.authenticationFailure("Digest x")?.contains("unsupported") == true)
    }
}
