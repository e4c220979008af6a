import Foundation
import Testing

@testable import SluiceModel

@Suite struct FilterTests {
    static let tcp = FilterSubject(
        kind: .tcp, client: Endpoint(host: "127.0.0.1", port: 53422), server: Endpoint(host: "db.internal", port: 5432),
        requestPayload: Data("SELECT secret FROM users".utf8), responsePayload: Data("\u{0}\u{1}row data".utf8)
    )
    static let http = FilterSubject(
        kind: .http, client: Endpoint(host: "10.0.0.9", port: 40000), server: Endpoint(host: "example.com", port: 443),
        requestPayload: Data("user=alice&password=hunter2".utf8), responsePayload: Data("{\"ok\":true}".utf8), method: "POST",
        url: "https://example.com/login?next=/home", statusCode: 302, headers: ["Host: example.com", "Set-Cookie: session=abc"],
        contentType: "application/json; charset=utf-8", hasResponse: true, hasError: false, isMarked: true
    )
    static let pendingRequest = FilterSubject(kind: .http, method: "GET", url: "http://a.test/", hasResponse: false, isHeld: true)
    static let ssh = FilterSubject(
        kind: .ssh, server: Endpoint(host: "10.0.0.7", port: 22), hasError: true, risk: .high, commands: ["ls -la", "sudo rm -rf /var/log"]
    )

    private func matches(_ text: String, _ subject: FilterSubject) throws -> Bool {
        try Filter(text).matches(subject)
    }

    @Test(arguments: [
        ("~k tcp", [true, false, false, false]),
        ("~k http", [false, true, true, false]),
        ("~k SSH", [false, false, false, true]),
        ("~src 127.0.0.1", [true, false, false, false]),
        ("~src :40000", [false, true, false, false]),
        ("~dst db.internal:5432", [true, false, false, false]),
        ("~dst :22", [false, false, false, true]),
        ("~dst EXAMPLE.com", [false, true, false, false]),
        ("~b secret", [true, false, false, false]),
        ("~b row", [true, false, false, false]),
        ("~bq row", [false, false, false, false]),
        ("~bs row", [true, false, false, false]),
        ("~bq hunter2", [false, true, false, false]),
        ("~bs '\"ok\"'", [false, true, false, false]),
        ("~m post", [false, true, false, false]),
        ("~m GET", [false, false, true, false]),
        ("~u /login", [false, true, false, false]),
        ("~c 302", [false, true, false, false]),
        ("~h set-cookie", [false, true, false, false]),
        ("~t json", [false, true, false, false]),
        ("~q", [false, false, true, false]),
        ("~s", [false, true, false, false]),
        ("~e", [false, false, false, true]),
        ("~marked", [false, true, false, false]),
        ("~held", [false, false, true, false]),
        ("~risk medium", [false, false, false, true]),
        ("~risk high", [false, false, false, true]),
        ("~risk critical", [false, false, false, false]),
        ("~cmd 'rm -rf'", [false, false, false, true]),
        ("login", [false, true, false, false]),
        ("SELECT", [true, false, false, false]),
    ])
    func everyOperator(_ text: String, _ expected: [Bool]) throws {
        let subjects = [Self.tcp, Self.http, Self.pendingRequest, Self.ssh]
        #expect(try subjects.map { try matches(text, $0) } == expected, "\(text)")
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
        #expect(try matches("\"a&p\"", FilterSubject(kind: .tcp, requestPayload: Data("a&p".utf8))))
        #expect(try matches("~b 'it\\'s'", FilterSubject(kind: .tcp, requestPayload: Data("it's".utf8))))
        #expect(try matches("'(x)'", FilterSubject(kind: .tcp, requestPayload: Data("(x)".utf8))), "quoted parentheses are a regex group")
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
        ("~c abc", 4, "expected a status code (100-599), got 'abc'"),
        ("~c 700", 4, "expected a status code (100-599), got '700'"),
        ("~m G3T", 4, "expected an HTTP method, got 'G3T'"),
        ("~risk extreme", 7, "expected a risk level (low, medium, high, critical), got 'extreme'"),
        ("~dst :99999", 6, "expected a port (1-65535) in ':99999'"),
        ("~dst :", 6, "expected a port (1-65535) in ':'"),
        ("~src ~k", 6, "expected an address (host, :port or host:port) after ~src"),
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
