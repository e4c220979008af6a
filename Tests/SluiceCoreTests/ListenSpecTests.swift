import SluiceModel
import Testing

@testable import SluiceCore

/// Schemes as modules declare them: Core's `tcp` and two of SluiceHTTP's shapes.
private let schemes: [ListenScheme] = [
    .tcp, ListenScheme(name: "http", target: .none), ListenScheme(name: "reverse+http", target: .url),
]

@Suite struct ListenSpecTests {
    @Test func fullSpec() throws {
        let spec = try ListenSpec(parsing: "tcp://127.0.0.1:9000=>10.0.0.5:7000", schemes: schemes)
        #expect(spec == ListenSpec(scheme: .tcp, listen: Endpoint(host: "127.0.0.1", port: 9000), target: Endpoint(host: "10.0.0.5", port: 7000)))
        #expect(spec.description == "tcp://127.0.0.1:9000=>10.0.0.5:7000")
    }

    @Test func listenHostDefaultsToLoopback() throws {
        let spec = try ListenSpec(parsing: "tcp://:9000=>db.internal:5432", schemes: schemes)
        #expect(spec.listen == Endpoint(host: "127.0.0.1", port: 9000))
        #expect(spec.target == Endpoint(host: "db.internal", port: 5432))
    }

    @Test func ipv6InBrackets() throws {
        let spec = try ListenSpec(parsing: "TCP://[::1]:9000=>[fe80::1%eth0]:22", schemes: schemes)
        #expect(spec.listen == Endpoint(host: "::1", port: 9000))
        #expect(spec.target == Endpoint(host: "fe80::1%eth0", port: 22))
        #expect(spec.description == "tcp://[::1]:9000=>[fe80::1%eth0]:22")
    }

    @Test func aModuleBringsItsOwnSchemeWithoutEditingCore() throws {
        let database = ListenScheme(name: "db", target: .endpoint)
        let spec = try ListenSpec(parsing: "db://:6432=>db.internal:5432", schemes: schemes + [database])
        #expect(spec.scheme == database && spec.target == Endpoint(host: "db.internal", port: 5432))
        #expect(spec.description == "db://127.0.0.1:6432=>db.internal:5432")
        #expect(throws: ListenSpecError.self) { try ListenSpec(parsing: "db://:6432=>h:1", schemes: schemes) }
    }

    @Test func optionsAreTheSchemesOwnAndReadBack() throws {
        let database = ListenScheme(name: "db", target: .endpoint, options: ["tls": ["intercept", "off"]])
        let spec = try ListenSpec(parsing: "db://:6432=>db.internal:5432?tls=intercept", schemes: [database])
        #expect(spec.options == ["tls": "intercept"] && spec.target == Endpoint(host: "db.internal", port: 5432))
        #expect(spec.description == "db://127.0.0.1:6432=>db.internal:5432?tls=intercept")
        #expect(try ListenSpec(parsing: spec.description, schemes: [database]) == spec)
        for (text, reason) in [
            ("db://:6432=>h:5432?tls=maybe", "tls is one of intercept, off, not 'maybe'"),
            ("db://:6432=>h:5432?color=red", "unknown option 'color' for db (known: tls)"),
            ("db://:6432=>h:5432?tls", "options are NAME=VALUE"),
            ("tcp://:9000=>h:1?tls=intercept", "unknown option 'tls' for tcp (known: none)"),
        ] {
            #expect {
                try ListenSpec(parsing: text, schemes: [database, .tcp])
            } throws: { error in
                (error as? ListenSpecError)?.reason.contains(reason) == true
            }
        }
    }

    @Test func surroundingSpacesAreIgnored() throws {
        #expect(try ListenSpec(parsing: "  tcp://0.0.0.0:1=>h:2 ", schemes: schemes).listen.host == "0.0.0.0")
    }

    @Test(arguments: [
        ("", "expected SCHEME://"),
        ("127.0.0.1:9000", "expected SCHEME://"),
        ("udp://:1=>h:2", "unknown scheme 'udp'"),
        ("transparent://0.0.0.0:8022", "tproxy://HOST:PORT (TPROXY) or redirect://HOST:PORT"),
        ("https://0.0.0.0:8443", "not supported by this build yet"),
        ("http://127.0.0.1:8080=>a:1", "takes no '=>TARGET'"),
        ("reverse+http://127.0.0.1:8080=>a:1", "http://HOST:PORT or https://HOST:PORT"),
        ("tcp://127.0.0.1:9000", "missing '=>TARGET'"),
        ("tcp://:1=>h:2=>h:3", "more than one '=>'"),
        ("tcp://:9000=>", "empty target"),
        ("tcp://=>h:1", "empty listen address"),
        ("tcp://:9000=>host", "needs a port"),
        ("tcp://:9000=>:7000", "needs a host"),
        ("tcp://:0=>h:1", "is not a port"),
        ("tcp://:65536=>h:1", "is not a port"),
        ("tcp://:-1=>h:1", "is not a port"),
        ("tcp://:90x0=>h:1", "is not a port"),
        ("tcp://:９０=>h:1", "is not a port"),
        ("tcp://::1:9000=>h:1", "IPv6 addresses in brackets"),
        ("tcp://[::1:9000=>h:1", "unclosed '['"),
        ("tcp://[::1]9000=>h:1", "needs a port after ']'"),
        ("tcp://[host]:9000=>h:1", "brackets are for IPv6"),
        ("tcp://:9000=>bad host:1", "is not a host name"),
        ("tcp://:9000=>a/b:1", "is not a host name"),
    ])
    func malformedSpecsSayWhatIsWrong(_ text: String, _ reason: String) {
        #expect {
            try ListenSpec(parsing: text, schemes: schemes)
        } throws: { error in
            guard let error = error as? ListenSpecError else { return false }
            return error.reason.contains(reason) && error.description.hasPrefix("bad listen spec '\(text)'")
        }
    }
}
