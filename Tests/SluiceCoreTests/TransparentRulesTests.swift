import Testing

@testable import SluiceCore

@Suite struct TransparentRulesTests {
    @Test func tproxyRulesWholeForBothFamilies() {
        let rules = TransparentRules(mode: .tproxy, port: 8022, destinationPorts: [PortRange(22, 22), PortRange(8000, 8099)])
        #expect(rules.problem == nil)
        #expect(
            rules.nftScript == """
                add table inet sluice
                add chain inet sluice tproxy_prerouting { type filter hook prerouting priority mangle; policy accept; }
                flush chain inet sluice tproxy_prerouting
                add rule inet sluice tproxy_prerouting meta mark 0x2 return
                add rule inet sluice tproxy_prerouting fib daddr type local return
                add rule inet sluice tproxy_prerouting meta l4proto tcp socket transparent 1 meta mark set 0x1 accept
                add rule inet sluice tproxy_prerouting tcp dport { 22, 8000-8099 } tproxy to :8022 meta mark set 0x1 accept

                """
        )
        #expect(
            rules.applySteps == [
                .nft(rules.nftScript),
                .command(["ip", "-4", "rule", "del", "fwmark", "0x1", "lookup", "100"], ignoreFailure: true),
                .command(["ip", "-4", "rule", "add", "fwmark", "0x1", "lookup", "100"], ignoreFailure: false),
                .command(["ip", "-4", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", "table", "100"], ignoreFailure: false),
                .command(["ip", "-6", "rule", "del", "fwmark", "0x1", "lookup", "100"], ignoreFailure: true),
                .command(["ip", "-6", "rule", "add", "fwmark", "0x1", "lookup", "100"], ignoreFailure: false),
                .command(["ip", "-6", "route", "replace", "local", "::/0", "dev", "lo", "table", "100"], ignoreFailure: false),
            ]
        )
        #expect(
            rules.removeSteps == [
                .command(["nft", "delete", "chain", "inet", "sluice", "tproxy_prerouting"], ignoreFailure: true),
                .command(["ip", "-4", "rule", "del", "fwmark", "0x1", "lookup", "100"], ignoreFailure: true),
                .command(["ip", "-4", "route", "del", "local", "0.0.0.0/0", "dev", "lo", "table", "100"], ignoreFailure: true),
                .command(["ip", "-6", "rule", "del", "fwmark", "0x1", "lookup", "100"], ignoreFailure: true),
                .command(["ip", "-6", "route", "del", "local", "::/0", "dev", "lo", "table", "100"], ignoreFailure: true),
                .deleteTableIfEmpty,
            ]
        )
    }

    @Test func tproxyForOneFamilyOnOneInterfaceWithItsOwnMarksAndTable() {
        var rules = TransparentRules(mode: .tproxy, port: 9000, destinationPorts: [PortRange(443, 443)])
        rules.family = .ipv6
        rules.interface = "eth1"
        rules.mark = 0x100
        rules.routeMark = 0x200
        rules.routeTable = 4242
        #expect(rules.problem == nil)
        #expect(rules.nftScript.contains("add rule inet sluice tproxy_prerouting meta mark 0x100 return\n"))
        #expect(
            rules.nftScript.contains(
                "add rule inet sluice tproxy_prerouting iifname \"eth1\" meta nfproto ipv6 tcp dport 443 tproxy to :9000 meta mark set 0x200 accept\n"
            )
        )
        #expect(rules.applySteps.count == 4)
        #expect(rules.applySteps.last == .command(["ip", "-6", "route", "replace", "local", "::/0", "dev", "lo", "table", "4242"], ignoreFailure: false))
        #expect(!rules.removeSteps.contains { if case .command(let arguments, _) = $0 { arguments.contains("-4") } else { false } })
    }

    @Test func redirectRules() {
        var rules = TransparentRules(mode: .redirect, port: 8023, destinationPorts: [PortRange(80, 80), PortRange(5432, 5432)])
        rules.family = .ipv4
        #expect(rules.problem == nil)
        #expect(
            rules.nftScript == """
                add table inet sluice
                add chain inet sluice redirect_prerouting { type nat hook prerouting priority dstnat; policy accept; }
                flush chain inet sluice redirect_prerouting
                add rule inet sluice redirect_prerouting meta mark 0x2 return
                add rule inet sluice redirect_prerouting fib daddr type local return
                add rule inet sluice redirect_prerouting meta nfproto ipv4 tcp dport { 80, 5432 } redirect to :8023

                """
        )
        // No routing: NAT needs none.
        #expect(rules.applySteps == [.nft(rules.nftScript)])
        // Removal takes both chains, whether or not --local made the second.
        #expect(
            rules.removeSteps == [
                .command(["nft", "delete", "chain", "inet", "sluice", "redirect_prerouting"], ignoreFailure: true),
                .command(["nft", "delete", "chain", "inet", "sluice", "redirect_output"], ignoreFailure: true),
                .deleteTableIfEmpty,
            ]
        )
    }

    /// This host's own connections are redirected too; Sluice's own, marked, go first and untouched.
    @Test func redirectOfLocalTraffic() {
        var rules = TransparentRules(mode: .redirect, port: 8023, destinationPorts: [PortRange(80, 80)])
        rules.local = true
        rules.interface = "r0"
        #expect(rules.problem == nil)
        let lines = rules.nftScript.split(separator: "\n").map(String.init)
        #expect(lines.contains("add chain inet sluice redirect_output { type nat hook output priority -100; policy accept; }"))
        let output = lines.filter { $0.hasPrefix("add rule inet sluice redirect_output ") }
        #expect(
            output == [
                "add rule inet sluice redirect_output meta mark 0x2 return",
                "add rule inet sluice redirect_output fib daddr type local return",
                // Local traffic arrives on no interface: the interface only narrows prerouting.
                "add rule inet sluice redirect_output tcp dport 80 redirect to :8023",
            ]
        )
        #expect(lines.contains("add rule inet sluice redirect_prerouting iifname \"r0\" tcp dport 80 redirect to :8023"))
    }

    @Test func noMarkMeansNoMarkRule() {
        var rules = TransparentRules(mode: .redirect, port: 8023, destinationPorts: [PortRange(80, 80)])
        rules.mark = 0
        #expect(!rules.nftScript.contains("meta mark"))
        #expect(rules.problem == nil)
    }

    @Test(arguments: [
        (TransparentRules(mode: .tproxy, port: 0, destinationPorts: [PortRange(22, 22)]), "is not a port"),
        (TransparentRules(mode: .redirect, port: 70000, destinationPorts: [PortRange(22, 22)]), "is not a port"),
        (TransparentRules(mode: .tproxy, port: 8022, destinationPorts: []), "no destination ports"),
    ])
    func unusable(rules: TransparentRules, expected: String) {
        #expect(rules.problem?.contains(expected) == true, "\(rules.problem ?? "no problem")")
    }

    @Test func unusableCombinations() {
        var rules = TransparentRules(mode: .tproxy, port: 8022, destinationPorts: [PortRange(22, 22)])
        rules.local = true
        #expect(rules.problem?.contains("--redirect --local") == true)
        rules.local = false
        rules.mark = 0x3
        #expect(rules.problem?.contains("shares bits with the routing mark 0x1") == true)
        rules.mark = 0x2
        rules.routeMark = 0
        #expect(rules.problem?.contains("routing mark cannot be 0") == true)
        rules.routeMark = 1
        for table in [0, 253, 254, 255] {
            rules.routeTable = table
            #expect(rules.problem?.contains("not a free table id") == true)
        }
        rules.routeTable = 100
        for name in ["", "eth 0", "a-very-long-interface-name", "eth0\"; flush ruleset; \""] {
            rules.interface = name
            #expect(rules.problem?.contains("is not an interface name") == true, "\(name)")
        }
        rules.interface = "veth0.10@x_y-z"
        #expect(rules.problem == nil)
        var redirect = TransparentRules(mode: .redirect, port: 8023, destinationPorts: [PortRange(80, 80)])
        redirect.local = true
        redirect.mark = 0
        #expect(redirect.problem?.contains("--local needs Sluice's mark") == true)
    }

    @Test func theScriptIsRunnableShellWithTheRemovalAsComments() {
        let rules = TransparentRules(mode: .tproxy, port: 8022, destinationPorts: [PortRange(22, 22)])
        let script = rules.script
        #expect(script.hasPrefix("# Sluice transparent mode (TPROXY): TCP to ports 22 goes to Sluice's tproxy://…:8022 listener.\n"))
        #expect(script.contains("nft -f - <<'EOF'\nadd table inet sluice\n"))
        #expect(script.contains("\nEOF\nip -4 rule del fwmark 0x1 lookup 100 2>/dev/null || true\nip -4 rule add fwmark 0x1 lookup 100\n"))
        #expect(script.contains("# nft delete chain inet sluice tproxy_prerouting 2>/dev/null || true\n"))
        #expect(script.hasSuffix("# nft list table inet sluice 2>/dev/null | grep -q chain || nft delete table inet sluice 2>/dev/null || true\n"))
        // Every line after the marker is a comment: printing the script and running it never removes anything.
        let removal = script.components(separatedBy: "# To remove").last ?? ""
        #expect(removal.split(separator: "\n").dropFirst().allSatisfy { $0.hasPrefix("# ") })
    }
}
