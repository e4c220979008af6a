import Testing

@testable import SluiceHTTP

@Suite struct RequestTargetTests {
    @Test func absoluteFormGivesHostPortAndOriginFormPath() throws {
        let target = try RequestTarget.absolute("http://Example.com:8080/a/b?q=1#frag")
        #expect(target == RequestTarget(scheme: "http", host: "example.com", port: 8080, path: "/a/b?q=1"))
        #expect(target.url == "http://example.com:8080/a/b?q=1")
        #expect(target.authority == "example.com:8080")
    }

    @Test func defaultPortAndEmptyPath() throws {
        let target = try RequestTarget.absolute("http://example.com")
        #expect(target.port == 80)
        #expect(target.path == "/")
        #expect(target.authority == "example.com")
        #expect(try RequestTarget.absolute("http://example.com?x=1").path == "/?x=1")
    }

    @Test func userinfoIsNeverForwarded() throws {
        let target = try RequestTarget.absolute("http://user:secret@example.com/x")
        #expect(target.host == "example.com")
        #expect(!target.url.contains("secret"))
    }

    @Test func ipv6Literal() throws {
        let target = try RequestTarget.absolute("http://[::1]:9000/")
        #expect(target.host == "::1")
        #expect(target.port == 9000)
        #expect(target.authority == "[::1]:9000")
    }

    @Test func connectAuthorityNeedsAPort() throws {
        #expect(try RequestTarget.authorityForm("example.com:443").endpoint.port == 443)
        #expect(throws: RequestTargetError.self) { try RequestTarget.authorityForm("example.com") }
    }

    @Test(arguments: [
        "/just/a/path", "ftp://example.com/", "https://example.com/", "http://", "http://:80/", "http://exa mple.com/",
        "http://example.com:99999/", "http://example.com:8o/", "http://[::1/",
    ])
    func rejectsWhatCannotBeProxied(_ uri: String) {
        #expect(throws: RequestTargetError.self) { try RequestTarget.absolute(uri) }
    }
}
