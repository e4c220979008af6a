import Foundation
import SluiceModel
import Testing

@testable import SluiceCore

private let schemes: [ListenScheme] = Configuration.coreSchemes
private let tlsScheme = ListenScheme(name: "db", target: .endpoint, options: ["tls": ["intercept", "off"]])
private let webScheme = ListenScheme(name: "web", target: .none, options: ["tls": ["intercept", "passthrough"]])
private let protocols: [TransparentProtocol] = [
    TransparentProtocol(scheme: ListenScheme(name: "ssh", target: .endpoint), ports: [22], opening: .clientFirst { _, _ in .noMatch }),
    TransparentProtocol(scheme: tlsScheme, ports: [5432], opening: .clientFirst { _, _ in .noMatch }),
    TransparentProtocol(scheme: webScheme, ports: [80], opening: .clientFirst { _, _ in .noMatch }),
]

private func parse(_ yaml: String) throws(ConfigurationError) -> Configuration {
    try Configuration.parse(yaml: yaml, source: "sluice.yaml", schemes: schemes, protocols: protocols)
}

private func problem(_ yaml: String) -> String? {
    do {
        _ = try parse(yaml)
        return nil
    } catch {
        return error.description
    }
}

@Suite struct TransparentTargetsTests {
    @Test func everyKey() throws {
        let configuration = try parse(
            """
            listen: [tproxy://0.0.0.0:8022, "redirect://[::]:8023"]
            transparent:
              unknown: relay
              sniff_timeout: 0.25
              mark: 0x5c
            targets:
              - name: bastion
                destination: 10.0.0.0/8
                port: 22
                protocol: ssh
              - destination: [192.168.1.7, "fd00::/8"]
                port: [5432, "6000-6009"]
                options: {tls: intercept}
              - destination: any
                action: deny
            """
        )
        #expect(configuration.listeners.map(\.description) == ["tproxy://0.0.0.0:8022", "redirect://[::]:8023"])
        let transparent = configuration.transparent
        #expect(transparent.unknown == .relay && transparent.sniffTimeout == 0.25 && transparent.mark == 0x5c)
        #expect(transparent.targets.count == 3)
        let bastion = transparent.targets[0]
        #expect(bastion.index == 0 && bastion.label == "bastion" && bastion.protocolName == "ssh" && bastion.action == .allow)
        #expect(bastion.destinations.map(\.description) == ["10.0.0.0/8"] && bastion.ports == [PortRange(22, 22)])
        let database = transparent.targets[1]
        #expect(database.label == "targets[1]" && database.protocolName == "auto" && database.options == ["tls": "intercept"])
        #expect(database.ports == [PortRange(5432, 5432), PortRange(6000, 6009)])
        #expect(transparent.targets[2].action == .deny && transparent.targets[2].destinations.count == 2 && transparent.targets[2].ports.isEmpty)
    }

    @Test func aTargetsPolicyIsItsOwnInlineOrFromAFile() throws {
        let file = NSTemporaryDirectory() + "sluice-target-policy-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try "rules:\n  - {name: no-ls, risk: critical, action: block, shell: {program: ls}}\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let configuration = try parse(
            """
            targets:
              - destination: 10.0.0.7
                policy: \(file)
              - destination: 10.0.0.8
                policy:
                  rules:
                    - {name: no-cat, risk: high, action: hold, shell: {program: cat}}
              - destination: 10.0.0.9
            """
        )
        let targets = configuration.transparent.targets
        #expect(targets[0].policy?.source == file)
        #expect(targets[0].policy?.shared.judge("ls -l", kind: .shell).action == .block)
        #expect(targets[1].policy?.shared.judge("cat /etc/passwd", kind: .shell).action == .hold)
        #expect(targets[1].policy?.shared.judge("ls", kind: .shell).action == .allow)
        #expect(targets[2].policy == nil, "no policy of its own: the top-level one")
        #expect(problem("targets:\n  - policy: /no/such/file.yaml\n")?.contains("targets[0].policy: cannot read the policy file") == true)
        #expect(problem("targets:\n  - policy: {rules: 5}\n")?.contains("targets[0].policy:") == true)
    }

    @Test func theDefaults() throws {
        let transparent = try parse("").transparent
        #expect(transparent.unknown == .refuse && transparent.sniffTimeout == 1 && transparent.mark == 0x2 && transparent.targets.isEmpty)
        #expect(try parse("transparent:\n  mark: 0\n").transparent.mark == 0)
        #expect(try parse("transparent:\n  mark: 4294967295\n").transparent.mark == 0xffff_ffff)
    }

    @Test func theFirstTargetThatCoversADestinationWins() throws {
        let transparent = try parse(
            """
            targets:
              - {name: one-host, destination: 10.1.2.3, port: 80, action: deny}
              - {name: subnet, destination: 10.1.0.0/16, port: "80-89"}
              - {name: v6, destination: "fd00::/8"}
              - {name: anywhere-ssh, port: 22}
            """
        ).transparent
        #expect(transparent.target(for: "10.1.2.3", port: 80)?.label == "one-host")
        #expect(transparent.target(for: "10.1.2.4", port: 80)?.label == "subnet")
        #expect(transparent.target(for: "10.1.2.3", port: 89)?.label == "subnet")
        #expect(transparent.target(for: "10.1.2.3", port: 90) == nil)
        #expect(transparent.target(for: "10.2.0.1", port: 80) == nil)
        #expect(transparent.target(for: "fd12::1", port: 9)?.label == "v6")
        #expect(transparent.target(for: "fe80::1", port: 9) == nil)
        #expect(transparent.target(for: "8.8.8.8", port: 22)?.label == "anywhere-ssh")
        #expect(transparent.target(for: "2001:db8::1", port: 22)?.label == "anywhere-ssh")
        // A dual-stack listener's view of an IPv4 address.
        #expect(transparent.target(for: "::ffff:10.1.2.4", port: 81)?.label == "subnet")
        #expect(transparent.target(for: "not-an-address", port: 22) == nil)
    }

    @Test func aTargetsSSHRefinesTheTopLevelOne() throws {
        let configuration = try parse(
            """
            targets:
              - destination: 10.0.0.1
                ssh: {host_key_policy: tofu, record_input: true}
            ssh:
              allow_port_forwarding: true
            """
        )
        let ssh = try #require(configuration.transparent.targets[0].ssh)
        #expect(ssh.hostKeyPolicy == .tofu && ssh.recordInput && ssh.allowPortForwarding)
        #expect(configuration.ssh.hostKeyPolicy == .strict && !configuration.ssh.recordInput)
    }

    @Test func optionsUnderAutoGoOnlyToTheSchemesThatTakeThem() throws {
        let target = try parse("targets:\n  - {destination: any, options: {tls: passthrough}}\n").transparent.targets[0]
        #expect(target.options(for: webScheme) == ["tls": "passthrough"])
        #expect(target.options(for: tlsScheme).isEmpty)
        let both = try parse("targets:\n  - {destination: any, options: {tls: intercept}}\n").transparent.targets[0]
        #expect(both.options(for: webScheme) == ["tls": "intercept"] && both.options(for: tlsScheme) == ["tls": "intercept"])
        #expect(both.options(for: .tcp).isEmpty)
    }

    @Test(arguments: [
        ("transparent: yes", "transparent: expected a mapping"),
        ("transparent:\n  unknown: maybe", "transparent.unknown: expected refuse or relay"),
        ("transparent:\n  sniff_timeout: 0", "transparent.sniff_timeout: expected a positive number"),
        ("transparent:\n  sniff_timeout: 99999999", "more than the 30 days"),
        ("transparent:\n  mark: 0x1ffffffff", "transparent.mark: expected a firewall mark"),
        ("transparent:\n  mark: -1", "transparent.mark: expected a firewall mark"),
        ("transparent:\n  color: red", "unknown key 'transparent.color'"),
        ("targets: 10.0.0.1", "targets: expected a list"),
        ("targets:\n  - 10.0.0.1", "targets[0]: expected a mapping"),
        ("targets:\n  - {destination: 10.0.0.0/33}", "targets[0].destination: '10.0.0.0/33' is not an address"),
        ("targets:\n  - {destination: db.internal}", "targets[0].destination: 'db.internal' is not an address"),
        ("targets:\n  - {destination: []}", "targets[0].destination: expected an address"),
        ("targets:\n  - {port: 0}", "targets[0].port: '0' is not a port"),
        ("targets:\n  - {port: 70000}", "targets[0].port: '70000' is not a port"),
        ("targets:\n  - {port: 90-80}", "targets[0].port: '90-80' is not a port"),
        ("targets:\n  - {port: ssh}", "targets[0].port: 'ssh' is not a port"),
        ("targets:\n  - {action: maybe}", "targets[0].action: expected allow or deny"),
        ("targets:\n  - {protocol: gopher}", "targets[0].protocol: expected one of auto, tcp, ssh, db, web"),
        ("targets:\n  - {color: red}", "unknown key 'targets[0].color'"),
        ("targets:\n  - {protocol: ssh, options: {tls: intercept}}", "unknown option 'tls' for protocol ssh (known: none)"),
        ("targets:\n  - {protocol: tcp, options: {tls: intercept}}", "unknown option 'tls' for protocol tcp"),
        ("targets:\n  - {protocol: db, options: {tls: passthrough}}", "targets[0].options.tls is one of intercept, off, not 'passthrough'"),
        ("targets:\n  - {options: {tls: sometimes}}", "targets[0].options.tls is one of intercept, off, passthrough"),
        ("targets:\n  - {options: [tls]}", "targets[0].options: expected a mapping"),
        ("targets:\n  - {protocol: db, ssh: {record_input: true}}", "targets[0].ssh: only for protocol ssh or auto"),
        ("targets:\n  - {ssh: {color: red}}", "targets[0]: unknown key 'ssh.color'"),
        ("targets:\n  - {}\n  - {port: x}", "targets[1].port"),
    ])
    func mistakesSayWhereAndWhat(yaml: String, expected: String) {
        let message = problem(yaml)
        #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
        #expect(message?.hasPrefix("sluice.yaml:") == true)
    }

    @Test(arguments: [
        ("22", PortRange(22, 22)), ("1", PortRange(1, 1)), ("65535", PortRange(65535, 65535)), ("8000-8099", PortRange(8000, 8099)),
        (" 80 - 81 ", PortRange(80, 81)), ("5-5", PortRange(5, 5)),
    ])
    func portRanges(text: String, range: PortRange) {
        #expect(PortRange(parsing: text) == range)
    }

    @Test(arguments: ["", "0", "65536", "-1", "1-", "-1-2", "a", "1-b", "２２", "+22", "2-1", "1-2-3", "0x16", "000022"])
    func notPortRanges(text: String) {
        #expect(PortRange(parsing: text) == nil)
    }

    @Test func portRangeContainsItsEnds() {
        let range = PortRange(8000, 8099)
        #expect(range.contains(8000) && range.contains(8099) && !range.contains(7999) && !range.contains(8100))
        #expect(range.description == "8000-8099" && PortRange(22, 22).description == "22")
    }

    @Test(arguments: [("2", 2), ("0x2", 2), ("0X5C", 0x5c), ("0", 0), ("0xffffffff", 0xffff_ffff)] as [(String, UInt32)])
    func marks(text: String, value: UInt32) {
        #expect(TransparentSettings.parseMark(text) == value)
    }

    @Test(arguments: ["", "0x", "x2", "-1", "4294967296", "0x100000000", "two"])
    func notMarks(text: String) {
        #expect(TransparentSettings.parseMark(text) == nil)
    }

    @Test func transparentListenersTakeNoTarget() throws {
        for text in ["tproxy://0.0.0.0:8022=>10.0.0.1:22", "redirect://:8023=>h:1"] {
            #expect {
                try ListenSpec(parsing: text, schemes: schemes)
            } throws: { error in
                (error as? ListenSpecError)?.reason.contains("a transparent listener takes no '=>TARGET'") == true
            }
        }
        #expect(try ListenSpec(parsing: "tproxy://[::]:8022", schemes: schemes).scheme == .tproxy)
        #expect(ListenScheme.tproxy.isTransparent && ListenScheme.redirect.isTransparent && !ListenScheme.tcp.isTransparent)
    }

    @Test func sniffTimeoutIsValidatedAfterFlags() {
        var configuration = Configuration()
        configuration.transparent.sniffTimeout = 0
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }
}
