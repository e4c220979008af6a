import SluiceModel
import Testing

@testable import SluiceCore

@Suite struct ConfigurationTests {
    @Test func everyKey() throws {
        let configuration = try Configuration.parse(
            yaml: """
                # a comment
                listen:
                  - tcp://127.0.0.1:9000=>10.0.0.5:7000
                  - tcp://:9001=>10.0.0.6:7000
                data_dir: /var/lib/sluice
                record: false
                max_payload_bytes: 4096
                max_flow_bytes: 1048576
                connect_timeout: 2.5
                log_level: debug
                """,
            source: "sluice.yaml"
        )
        #expect(configuration.listeners.map(\.description) == ["tcp://127.0.0.1:9000=>10.0.0.5:7000", "tcp://127.0.0.1:9001=>10.0.0.6:7000"])
        #expect(configuration.dataDirectory == "/var/lib/sluice")
        #expect(configuration.record == false)
        #expect(configuration.maxPayloadBytes == 4096)
        #expect(configuration.maxFlowBytes == 1_048_576)
        #expect(configuration.connectTimeout == 2.5)
        #expect(configuration.logLevel == "debug")
    }

    @Test func theSampleConfigReadsAsTheDefaults() throws {
        let path = #filePath.replacingOccurrences(of: "Tests/SluiceCoreTests/ConfigurationTests.swift", with: "samples/sluice.yaml")
        // The sample's listeners are SluiceHTTP's; their shapes are enough to read them here.
        let schemes: [ListenScheme] = [.tcp, ListenScheme(name: "http", target: .none), ListenScheme(name: "reverse+http", target: .url)]
        var sample = try Configuration.load(path: path, schemes: schemes)
        sample.listeners = []
        #expect(sample.webSocket == Configuration.WebSocketLimits())
        #expect(sample.connectTimeout == Configuration().connectTimeout)
    }

    @Test func timeoutsAndMaxConnections() throws {
        let configuration = try Configuration.parse(
            yaml: "timeouts:\n  request_head: 5\n  keep_alive: 7.5\n  server: 90\n  tunnel_idle: 300\nmax_connections: 42\n", source: "x"
        )
        #expect(configuration.timeouts.requestHead == 5)
        #expect(configuration.timeouts.keepAlive == 7.5)
        #expect(configuration.timeouts.server == 90)
        #expect(configuration.timeouts.tunnelIdle == 300)
        #expect(configuration.maxConnections == 42)
        #expect(try Configuration.parse(yaml: "timeouts:\n  tunnel_idle: 0\n", source: "x").timeouts.tunnelIdle == nil)
    }

    @Test func webSocketLimits() throws {
        let configuration = try Configuration.parse(
            yaml: "websocket:\n  max_frame_bytes: 1024\n  max_message_bytes: 4096\n  max_buffered_bytes: 65536\n", source: "x"
        )
        #expect(configuration.webSocket.maxFrameBytes == 1024)
        #expect(configuration.webSocket.maxMessageBytes == 4096)
        #expect(configuration.webSocket.maxBufferedBytes == 65536)
    }

    @Test func theAPIsProxyPortsAndHost() throws {
        #expect(Configuration().apiProxyPorts == PortRange(10000, 20000))
        #expect(Configuration().apiProxyHost == "127.0.0.1")
        let configuration = try Configuration.parse(
            yaml: "api:\n  listen: 127.0.0.1:8081\n  proxy_ports: 30000-30099\n  proxy_host: ::1\n", source: "x"
        )
        #expect(configuration.apiListen == "127.0.0.1:8081")
        #expect(configuration.apiProxyPorts == PortRange(30000, 30099))
        #expect(configuration.apiProxyHost == "::1")
        #expect(try Configuration.parse(yaml: "api:\n  proxy_ports: 12000\n", source: "x").apiProxyPorts == PortRange(12000, 12000))
        let bad: [(String, String)] = [
            ("proxy_ports: 20000-10000", "api.proxy_ports: expected LOW-HIGH"), ("proxy_ports: -5-100", "api.proxy_ports"),
            ("proxy_ports: 0-100", "api.proxy_ports"), ("proxy_ports: 10000-70000", "api.proxy_ports"),
            ("proxy_ports: ten-twenty", "api.proxy_ports"), ("proxy_ports: [1, 2]", "api.proxy_ports"), ("proxy_ports: +5-9", "api.proxy_ports"),
            ("proxy_host: localhost", "api.proxy_host: expected an IP address"), ("proxy_host: 10.0.0", "api.proxy_host"),
            ("proxy_range: 1-2", "unknown key 'api.proxy_range'"),
        ]
        for (line, expected) in bad {
            #expect {
                try Configuration.parse(yaml: "api:\n  \(line)\n", source: "sluice.yaml")
            } throws: { error in
                "\(error)".contains(expected) && "\(error)".contains("sluice.yaml:2")
            }
        }
    }

    @Test func portRanges() {
        #expect(PortRange(parsing: "10000-20000") == PortRange(10000, 20000))
        #expect(PortRange(parsing: " 80 ") == PortRange(80, 80))
        #expect(PortRange(parsing: "1-65535")?.count == 65535)
        for text in ["", "-", "5-", "-5", "0", "65536", "5-4", "1-2-3", "a-b", "+5", "5--6", "000001-2"] {
            #expect(PortRange(parsing: text) == nil, "\(text)")
        }
        #expect(PortRange(10, 12).contains(12) && !PortRange(10, 12).contains(13))
        #expect(PortRange(10, 12).description == "10-12" && PortRange(10, 10).description == "10")
    }

    @Test func emptyFileIsTheDefaults() throws {
        #expect(try Configuration.parse(yaml: "", source: "x") == Configuration())
        #expect(try Configuration.parse(yaml: "# only a comment\n", source: "x") == Configuration())
    }

    @Test func singleListenSpecMayBeAScalar() throws {
        let configuration = try Configuration.parse(yaml: "listen: tcp://:9000=>h:1\n", source: "x")
        #expect(configuration.listeners.count == 1)
    }

    @Test func tildeIsExpanded() throws {
        let configuration = try Configuration.parse(yaml: "data_dir: ~/recordings\n", source: "x")
        #expect(!configuration.dataDirectory.hasPrefix("~"))
        #expect(configuration.dataDirectory.hasSuffix("/recordings"))
    }

    @Test(arguments: [
        ("record: true\nlisten_on: x\n", "sluice.yaml:2: unknown key 'listen_on'"),
        ("record: maybe\n", "sluice.yaml:1: record: expected true or false"),
        ("max_payload_bytes: -1\n", "sluice.yaml:1: max_payload_bytes: expected a non-negative"),
        ("max_flow_bytes: lots\n", "sluice.yaml:1: max_flow_bytes: expected a non-negative"),
        ("connect_timeout: 0\n", "sluice.yaml:1: connect_timeout: expected a positive number"),
        ("connect_timeout: 1e16\n", "sluice.yaml:1: connect_timeout: 1e+16 seconds is more than the 30 days"),
        ("hold_timeout: .inf\n", "sluice.yaml:1: hold_timeout: expected a positive number"),
        ("timeouts:\n  server: 1e16\n", "sluice.yaml:2: timeouts.server: 1e+16 seconds is more than the 30 days"),
        ("timeouts:\n  server: -1\n", "sluice.yaml:2: timeouts.server: expected a positive number"),
        ("timeouts:\n  client: 1\n", "sluice.yaml:2: unknown key 'timeouts.client'"),
        ("max_connections: 0\n", "sluice.yaml:1: max_connections: expected a positive whole number"),
        ("websocket:\n  max_frame_bytes: 0\n", "sluice.yaml:2: websocket.max_frame_bytes: expected a positive whole number"),
        ("websocket:\n  max_frames: 1\n", "sluice.yaml:2: unknown key 'websocket.max_frames'"),
        ("log_level: loud\n", "sluice.yaml:1: log_level: expected one of"),
        ("listen:\n  - tcp://:9000\n", "sluice.yaml:2: bad listen spec 'tcp://:9000': missing '=>TARGET'"),
        ("listen:\n  nested: map\n", "sluice.yaml:2: listen: expected a list"),
        ("listen:\n  - [a, b]\n", "sluice.yaml:2: listen: expected a spec string"),
        ("- just\n- a list\n", "sluice.yaml:1: expected a mapping"),
        ("record: [unclosed\n", "sluice.yaml:2: not valid YAML"),
        ("data_dir: \"\"\n", "sluice.yaml:1: data_dir: expected a directory path"),
        ("? [complex, key]\n: 1\n", "sluice.yaml:1: keys must be plain words"),
    ])
    func malformedConfigNamesLineAndProblem(_ yaml: String, _ expected: String) {
        #expect {
            try Configuration.parse(yaml: yaml, source: "sluice.yaml")
        } throws: { error in
            let text = (error as? ConfigurationError)?.description ?? ""
            return text.hasPrefix(expected) && !text.contains("\n")
        }
    }

    @Test func missingFileIsOneLine() {
        #expect {
            try Configuration.load(path: "/nonexistent/sluice.yaml")
        } throws: { error in
            (error as? ConfigurationError)?.description == "/nonexistent/sluice.yaml: cannot read: no such file or directory"
        }
    }

    /// A policy file that is not there is said to be missing, not "not valid YAML" (what the message was until the
    /// config fuzzer named such a file).
    @Test func missingPolicyFileIsSaidToBeMissing() {
        #expect {
            try Configuration.parse(yaml: "policy: /nonexistent/policy.yaml\n", source: "sluice.yaml")
        } throws: { error in
            (error as? ConfigurationError)?.description
                == "/nonexistent/policy.yaml: cannot read the policy file: no such file or directory"
        }
    }

    /// `policy:` with nothing after it names no file (it read as the path "", a file Foundation called "invalid").
    @Test func anEmptyPolicyIsAnErrorOfTheConfig() {
        let expected = "expected a policy file's path or the rules themselves"
        for (yaml, error) in [
            ("policy:\n", "sluice.yaml:1: policy: \(expected)"), ("policy: \"\"\n", "sluice.yaml:1: policy: \(expected)"),
            ("targets:\n  - policy:\n", "sluice.yaml:2: targets[0].policy: \(expected)"),
        ] {
            #expect {
                try Configuration.parse(yaml: yaml, source: "sluice.yaml")
            } throws: { thrown in
                (thrown as? ConfigurationError)?.description == error
            }
        }
    }

    @Test func sameListenAddressTwiceIsRejected() throws {
        var configuration = Configuration()
        configuration.listeners = [try ListenSpec(parsing: "tcp://:9000=>a:1", schemes: [.tcp]), try ListenSpec(parsing: "tcp://127.0.0.1:9000=>b:1", schemes: [.tcp])]
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }
}
