import Foundation
import Testing

@testable import SluiceModel

@Suite struct FilterTests {
    static let tcp = FilterSubject(
        kind: .tcp, client: Endpoint(host: "127.0.0.1", port: 53422), server: Endpoint(host: "db.internal", port: 5432),
        requestPayloads: [Data("SELECT secret FROM users".utf8)], responsePayloads: [Data("\u{0}\u{1}row data".utf8)]
    )
    static let http = FilterSubject(
        kind: .http, client: Endpoint(host: "10.0.0.9", port: 40000), server: Endpoint(host: "example.com", port: 443),
        requestPayloads: [Data("user=alice&password=hunter2".utf8)], responsePayloads: [Data("{\"ok\":true}".utf8)],
        method: "POST", url: "https://example.com/login?next=/home",
        requestHeaders: [
            HeaderField(name: "Host", value: "example.com"),
            HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"),
        ],
        statusCode: 302,
        responseHeaders: [
            HeaderField(name: "Set-Cookie", value: "session=abc"),
            HeaderField(name: "Content-Type", value: "application/json; charset=utf-8"),
        ],
        isMarked: true
    )
    static let pendingRequest = FilterSubject(
        kind: .http, requestPayloads: [Data()], method: "GET", url: "http://a.test/",
        requestHeaders: [HeaderField(name: "Host", value: "a.test")], isHeld: true
    )
    static let ssh = FilterSubject(
        kind: .ssh, server: Endpoint(host: "10.0.0.7", port: 22), hasError: true, risk: .high, commands: ["ls -la", "sudo rm -rf /var/log"]
    )
    /// A replayed request for a stylesheet, from an IPv6 client.
    static let asset = FilterSubject(
        kind: .http, client: Endpoint(host: "::1", port: 50000), server: Endpoint(host: "cdn.test", port: 8080),
        requestPayloads: [Data()], responsePayloads: [Data("body { color: red }".utf8)], method: "GET",
        url: "http://cdn.test:8080/site.css", requestHeaders: [HeaderField(name: "Host", value: "static.cdn.test:8080")],
        statusCode: 200, responseHeaders: [HeaderField(name: "Content-Type", value: "text/css")], isReplay: true
    )
    static let webSocket = FilterSubject(
        kind: .websocket, client: Endpoint(host: "127.0.0.1", port: 41000), server: Endpoint(host: "chat.test", port: 80),
        requestPayloads: [Data(), Data("hello".utf8)], responsePayloads: [Data(), Data("echo:hello".utf8)], method: "GET",
        url: "http://chat.test/ws", requestHeaders: [HeaderField(name: "Upgrade", value: "websocket")], statusCode: 101,
        responseHeaders: [HeaderField(name: "Upgrade", value: "websocket")]
    )

    private func matches(_ text: String, _ subject: FilterSubject) throws -> Bool {
        try Filter(text).matches(subject)
    }

    // Subjects in order: tcp, http, pendingRequest, ssh, asset, webSocket.
    @Test(arguments: [
        // mitmproxy's operators
        ("~all", [true, true, true, true, true, true]),
        ("~http", [false, true, true, false, true, true]),
        ("~websocket", [false, false, false, false, false, true]),
        ("~tcp", [true, false, false, false, false, false]),
        ("~udp", [false, false, false, false, false, false]),
        ("~dns", [false, false, false, false, false, false]),
        ("~q", [false, false, true, false, false, false]),
        ("~s", [false, true, false, false, true, true]),
        ("~e", [false, false, false, true, false, false]),
        ("~marked", [false, true, false, false, false, false]),
        ("~replay", [false, false, false, false, true, false]),
        ("~replayq", [false, false, false, false, true, false]),
        ("~replays", [false, false, false, false, false, false]),
        ("~a", [false, false, false, false, true, false]),
        ("~c 302", [false, true, false, false, false, false]),
        ("~c 101", [false, false, false, false, false, true]),
        ("~b secret", [true, false, false, false, false, false]),
        ("~b row", [true, false, false, false, false, false]),
        ("~b hello", [false, false, false, false, false, true]),
        ("~bq row", [false, false, false, false, false, false]),
        ("~bs row", [true, false, false, false, false, false]),
        ("~bq hunter2", [false, true, false, false, false, false]),
        ("~bs '\"ok\"'", [false, true, false, false, false, false]),
        ("~bq ^hello$", [false, false, false, false, false, true]),
        ("~bs ^echo", [false, false, false, false, false, true]),
        ("~h set-cookie", [false, true, false, false, false, false]),
        ("~h '^host: a'", [false, false, true, false, false, false]),
        ("~hq set-cookie", [false, false, false, false, false, false]),
        ("~hs set-cookie", [false, true, false, false, false, false]),
        ("~hq upgrade", [false, false, false, false, false, true]),
        ("~hs '^content-type: text/css'", [false, false, false, false, true, false]),
        ("~t json", [false, true, false, false, false, false]),
        ("~t form", [false, true, false, false, false, false]),
        ("~tq form", [false, true, false, false, false, false]),
        ("~tq json", [false, false, false, false, false, false]),
        ("~ts json", [false, true, false, false, false, false]),
        ("~ts form", [false, false, false, false, false, false]),
        ("~ts css", [false, false, false, false, true, false]),
        ("~m post", [false, true, false, false, false, false]),
        ("~m GET", [false, false, true, false, true, true]),
        ("~m ^P", [false, true, false, false, false, false]),
        ("~d example", [false, true, false, false, false, false]),
        ("~d ^cdn.test$", [false, false, false, false, true, false]),
        ("~d static.cdn", [false, false, false, false, true, false]),
        ("~d a.test", [false, false, true, false, false, false]),
        ("~u /login", [false, true, false, false, false, false]),
        ("~u 'site\\.css$'", [false, false, false, false, true, false]),
        ("~src 127.0.0.1", [true, false, false, false, false, true]),
        ("~src :40000", [false, true, false, false, false, false]),
        ("~src '^::1:50000$'", [false, false, false, false, true, false]),
        ("~dst db.internal:5432", [true, false, false, false, false, false]),
        ("~dst ':22$'", [false, false, false, true, false, false]),
        ("~dst EXAMPLE.com", [false, true, false, false, false, false]),
        ("~dst ':80'", [false, false, false, false, true, true]),
        // Sluice's own
        ("~k tcp", [true, false, false, false, false, false]),
        ("~k http", [false, true, true, false, true, false]),
        ("~k ws", [false, false, false, false, false, true]),
        ("~k SSH", [false, false, false, true, false, false]),
        ("~held", [false, false, true, false, false, false]),
        ("~risk medium", [false, false, false, true, false, false]),
        ("~risk high", [false, false, false, true, false, false]),
        ("~risk critical", [false, false, false, false, false, false]),
        ("~cmd 'rm -rf'", [false, false, false, true, false, false]),
        ("login", [false, true, false, false, false, false]),
        ("SELECT", [true, false, false, false, false, false]),
        // combined
        ("~http & !~websocket & ~s", [false, true, false, false, true, false]),
        ("~tcp | ~websocket", [true, false, false, false, false, true]),
        ("!(~q | ~s)", [true, false, false, true, false, false]),
    ])
    func everyOperator(_ text: String, _ expected: [Bool]) throws {
        let subjects = [Self.tcp, Self.http, Self.pendingRequest, Self.ssh, Self.asset, Self.webSocket]
        #expect(try subjects.map { try matches(text, $0) } == expected, "\(text)")
    }

    @Test func plainBareWordsAreWhatAnIndexCanLookUp() throws {
        #expect(try Filter("~m POST & password | !example.com").plainWords == ["password", "example.com"])
        #expect(try Filter("foo.*bar | ~b secret | (a|b) | user@host:22/x").plainWords == ["a", "b", "user@host:22/x"])
        #expect(try Filter("~k tcp").plainWords.isEmpty)
    }

    @Test func aWordTheIndexFoundMatchesThoughTheSubjectDoesNotHoldIt() throws {
        var subject = Self.tcp
        let filter = try Filter("~k tcp & zanzibar")
        #expect(!filter.matches(subject))
        subject.indexedWords = ["zanzibar"]
        #expect(filter.matches(subject))
        #expect(try !Filter("!zanzibar").matches(subject))
        #expect(try !Filter("~b zanzibar").matches(subject), "only bare words look at the index")
    }

    @Test func assetIsTheResponsesContentTypeCaseSensitively() throws {
        func response(_ type: String) -> FilterSubject {
            FilterSubject(
                kind: .http, requestHeaders: [HeaderField(name: "Content-Type", value: "image/png")], statusCode: 200,
                responseHeaders: [HeaderField(name: "content-type", value: type)]
            )
        }
        for type in [
            "text/javascript", "application/x-javascript", "application/javascript; charset=utf-8", "text/css",
            "image/svg+xml", "font/woff2", "application/font-woff",
        ] {
            #expect(try matches("~a", response(type)), "\(type)")
        }
        for type in ["text/html", "application/json", "TEXT/CSS", "Image/PNG"] {
            #expect(try !matches("~a", response(type)), "\(type)")
        }
        // The request's type does not count.
        #expect(try !matches("~a", FilterSubject(kind: .http, requestHeaders: [HeaderField(name: "Content-Type", value: "text/css")])))
    }

    @Test func bodiesAreSearchedAsBytesAcrossLinesOneMessageAtATime() throws {
        let binary = FilterSubject(kind: .tcp, requestPayloads: [Data([0x00, 0xff, 0x41, 0x0a, 0x42]), Data("tail".utf8)])
        #expect(try matches("~bq \\xff", binary), "a byte, as a bytes regex finds it")
        #expect(try matches("~bq A.B", binary), "DOTALL: . crosses a line end")
        #expect(try !matches("~bq ^tail", FilterSubject(kind: .tcp, requestPayloads: [Data("head tail".utf8)])))
        #expect(try matches("~bq ^tail", binary), "each message is searched on its own")
        #expect(try !matches("~bq B.tail", binary), "not the messages joined")
        let utf8 = FilterSubject(kind: .tcp, requestPayloads: [Data("café".utf8)])
        #expect(try matches("~b café", utf8))
        #expect(try matches("~b 'caf..$'", utf8), "é is two bytes")
        // An empty body is still a body, as in mitmproxy: a pattern that matches nothing at all finds it.
        #expect(try matches("~bq ^$", Self.pendingRequest))
        #expect(try !matches("~bs ^$", Self.pendingRequest), "no response, no response body")
    }

    @Test func headerLinesAreMultilineAndEndWithCRLF() throws {
        #expect(try matches("~hq '^content-type: application/x-www'", Self.http))
        #expect(try matches("~hs session=abc\\r$", Self.http), "lines end with CR LF, and only LF ends a line")
        #expect(try !matches("~hs 'session=abc$'", Self.http))
        #expect(try !matches("~hs .", Self.pendingRequest), "no response, no response headers")
    }

    @Test func domainIsTheURLsHostOrTheHostHeaders() throws {
        let v6 = FilterSubject(kind: .http, method: "GET", url: "http://[::1]:8080/x", requestHeaders: [HeaderField(name: "Host", value: "[::1]:8080")])
        #expect(try matches("~d '^::1$'", v6))
        #expect(try !matches("~d 8080", v6))
        #expect(try !matches("~d example", Self.tcp))
    }

    @Test func urlIsThePrettyURLWithTheHostHeadersHostAndPort() throws {
        #expect(try matches("~u '^http://static.cdn.test:8080/site'", Self.asset))
        #expect(try !matches("~u //cdn.test", Self.asset), "the Host header names the host")
        #expect(try matches("cdn.test:8080/site", Self.asset), "a bare word still sees the URL as recorded")
        let defaultPort = FilterSubject(
            kind: .http, method: "GET", url: "http://A.test:80/x?q=1", requestHeaders: [HeaderField(name: "Host", value: "a.test")]
        )
        #expect(try matches("~u ^http://a.test/x\\?q=1$", defaultPort))
        #expect(try !matches("~u :80", defaultPort))
        let noHost = FilterSubject(kind: .http, method: "GET", url: "https://b.test:443/")
        #expect(try matches("~u '^https://b.test/$'", noHost))
        let connect = FilterSubject(kind: .http, method: "CONNECT", url: "c.test:443", requestHeaders: [HeaderField(name: "Host", value: "c.test:443")])
        #expect(try matches("~u '^c.test:443$'", connect))
    }

    @Test func addressesAreHostColonPortAndPortZeroIsNone() throws {
        let refused = FilterSubject(kind: .http, client: Endpoint(host: "127.0.0.1", port: 1), server: Endpoint(host: "-", port: 0))
        #expect(try !matches("~dst .", refused))
        #expect(try matches("~src '^127.0.0.1:1$'", refused))
        #expect(try !matches("~src .", FilterSubject(kind: .tcp)))
    }

    @Test func operatorsForAnotherKindAreFalseNotErrors() throws {
        #expect(try !matches("~m GET", Self.tcp))
        #expect(try !matches("~c 200", Self.ssh))
        #expect(try !matches("~cmd ls", Self.http))
        #expect(try matches("!~m GET", Self.tcp))
    }

    @Test func precedenceNotThenAndThenOr() throws {
        // a | b & c  ==  a | (b & c)
        #expect(try matches("~k tcp | ~k http & ~c 404", Self.tcp))
        #expect(try !matches("~k ssh | ~k http & ~c 404", Self.http))
        // !a & b == (!a) & b
        #expect(try matches("!~k tcp & ~k http", Self.http))
        #expect(try !matches("!(~k tcp | ~k http)", Self.http))
        // parentheses override
        #expect(try !matches("(~k tcp | ~k http) & ~c 404", Self.http))
        #expect(try matches("(~k tcp | ~k http) & ~c 302", Self.http))
        // juxtaposition is and
        #expect(try matches("~m POST ~u login", Self.http))
        #expect(try !matches("~m POST ~u logout", Self.http))
        #expect(try matches("!!~k tcp", Self.tcp))
    }

    @Test func quotingAllowsSpacesOperatorsAndEscapes() throws {
        #expect(try matches("~b \"secret FROM\"", Self.tcp))
        #expect(try matches("~b 'secret FROM'", Self.tcp))
        #expect(try !matches("~b 'secret  FROM'", Self.tcp))
        #expect(try matches("\"a&p\"", FilterSubject(kind: .tcp, requestPayloads: [Data("a&p".utf8)])))
        #expect(try matches("~b 'it\\'s'", FilterSubject(kind: .tcp, requestPayloads: [Data("it's".utf8)])))
        #expect(try matches("'(x)'", FilterSubject(kind: .tcp, requestPayloads: [Data("(x)".utf8)])), "quoted parentheses are a regex group")
    }

    @Test func regexesAreCaseInsensitive() throws {
        #expect(try matches("~u LOGIN\\?next", Self.http))
        #expect(try matches("~b ^select", Self.tcp))
    }

    @Test(arguments: [
        ("", 1, "expected an expression"),
        ("   ", 1, "expected an expression"),
        ("~k", 3, "expected a flow kind (tcp, http, ws, ssh, pg, mysql) after ~k"),
        ("~k ftp", 4, "expected a flow kind (tcp, http, ws, ssh, pg, mysql), got 'ftp'"),
        ("~zz foo", 1, "unknown operator ~zz"),
        ("~k tcp &", 9, "expected an expression after '&'"),
        ("~k tcp | ", 10, "expected an expression after '|'"),
        ("& ~k tcp", 1, "expected an expression before '&'"),
        ("(~k tcp", 8, "expected ')' to close '(' at column 1"),
        ("~k tcp)", 7, "unmatched ')'"),
        ("()", 2, "expected an expression inside '( )'"),
        ("!", 2, "expected an expression after '!'"),
        ("~b '(unclosed", 4, "unclosed quote '"),
        ("~b (", 4, "expected a regular expression after ~b"),
        ("~b [a-", 4, "'[a-' is not a valid regular expression"),
        ("~c abc", 4, "expected a status code, got 'abc'"),
        ("~c -1", 4, "expected a status code, got '-1'"),
        ("~c", 3, "expected a status code after ~c"),
        ("~m", 3, "expected a regular expression after ~m"),
        ("~d (", 4, "expected a regular expression after ~d"),
        ("~hq [", 5, "'[' is not a valid regular expression"),
        ("~tq", 4, "expected a regular expression after ~tq"),
        ("~u ~q", 4, "expected a regular expression after ~u"),
        ("~comment x", 1, "unknown operator ~comment"),
        ("~risk extreme", 7, "expected a risk level (low, medium, high, critical), got 'extreme'"),
        ("~dst", 5, "expected a regular expression after ~dst"),
        ("~src ~k", 6, "expected a regular expression after ~src"),
        ("~k tcp | | ~k ws", 10, "expected an expression after '|'"),
    ])
    func badInputNamesColumnAndExpectation(_ text: String, _ column: Int, _ message: String) {
        #expect(throws: FilterError(column: column, message: message)) { try Filter(text) }
    }

    @Test func errorDescriptionReadsInAPrompt() {
        #expect(throws: FilterError.self) { try Filter("~k") }
        do {
            _ = try Filter("~k tcp &")
        } catch {
            #expect(error.description == "column 9: expected an expression after '&'")
        }
    }
}
