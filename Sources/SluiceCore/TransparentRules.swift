/// The nftables rules, `ip rule` and routes that send traffic to a transparent listener (PROTOCOLS.md §7), as text and
/// as the steps `sluice transparent rules --apply` / `--remove` run. Pure: nothing here touches the system.
///
/// Everything nftables gets lives in one table of its own, `inet sluice`, its chains named by mode and hook
/// (`tproxy_prerouting`, `redirect_prerouting`, `redirect_output`), so that removing a mode deletes exactly its
/// chains, and the table once no chain is left. Applying again replaces a mode's rules (each chain is flushed first)
/// rather than adding a second copy.
///
/// Loop protection: Sluice marks its own connections to the original destinations (`transparent.mark`, `SO_MARK`),
/// and every chain lets marked packets through first, so they are never sent back to Sluice. Traffic addressed to this
/// host itself is never intercepted (`fib daddr type local`).
public struct TransparentRules: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// TPROXY in prerouting: the packets keep their destination and reach Sluice's `IP_TRANSPARENT` socket through
        /// a routing table that delivers marked packets locally. Forwarded traffic only.
        case tproxy
        /// NAT redirect in prerouting (and, with `local`, in output): the destination is rewritten to Sluice's port;
        /// conntrack remembers the original.
        case redirect
    }

    public enum Family: String, Sendable, CaseIterable {
        case both
        case ipv4
        case ipv6

        var ip: [String] {
            switch self {
            case .both: ["-4", "-6"]
            case .ipv4: ["-4"]
            case .ipv6: ["-6"]
            }
        }
    }

    /// One thing `--apply` or `--remove` does.
    public enum Step: Sendable, Equatable {
        /// A batch for `nft -f -` (atomic: all of it or nothing).
        case nft(String)
        /// A command (`ip ...`); a failure stops the run unless `ignoreFailure` (deleting what may not be there).
        case command([String], ignoreFailure: Bool)
        /// Deletes the table if it holds no chain any more.
        case deleteTableIfEmpty
    }

    public var mode: Mode
    /// The port Sluice's transparent listener of this mode listens on.
    public var port: Int
    /// The original destination ports to intercept.
    public var destinationPorts: [PortRange]
    /// Sluice's own `SO_MARK` (`transparent.mark`); 0: none, and no loop protection by mark.
    public var mark: UInt32 = TransparentSettings.defaultMark
    /// TPROXY: the mark that routes intercepted packets to the local table.
    public var routeMark: UInt32 = 0x1
    /// TPROXY: the routing table with the `local` route.
    public var routeTable: Int = 100
    public var family: Family = .both
    /// Only traffic arriving on this interface (prerouting) is intercepted; nil: any.
    public var interface: String?
    /// Redirect: also this host's own outgoing connections (an output chain).
    public var local = false

    /// The nftables table, family `inet` (IPv4 and IPv6 in one).
    public static let table = "sluice"

    public init(mode: Mode, port: Int, destinationPorts: [PortRange]) {
        self.mode = mode
        self.port = port
        self.destinationPorts = destinationPorts
    }

    /// What makes these rules unusable, or nil.
    public var problem: String? {
        guard (1...65535).contains(port) else { return "the listener port \(port) is not a port (1-65535)" }
        guard !destinationPorts.isEmpty else { return "no destination ports to intercept (--dports 22,80,443)" }
        if let interface {
            guard !interface.isEmpty, interface.utf8.count <= 15,
                interface.utf8.allSatisfy({ Self.isNameByte($0) })
            else { return "'\(interface)' is not an interface name" }
        }
        switch mode {
        case .tproxy:
            if local { return "tproxy intercepts forwarded traffic only (prerouting); --redirect --local catches this host's own" }
            guard routeMark != 0 else { return "the routing mark cannot be 0" }
            if mark & routeMark != 0 {
                return "Sluice's mark 0x\(hex(mark)) shares bits with the routing mark 0x\(hex(routeMark)): its own connections would be routed back to it"
            }
            guard (1...0xffff_ffff).contains(routeTable), ![253, 254, 255].contains(routeTable) else {
                return "routing table \(routeTable) is not a free table id (1-252, 256-4294967295)"
            }
        case .redirect:
            if local && mark == 0 { return "--local needs Sluice's mark (transparent.mark): without it Sluice's own connections would be redirected back to it" }
        }
        return nil
    }

    /// Every chain this mode may have made: removing takes them all, whatever `local` was when they were applied.
    var chains: [String] {
        switch mode {
        case .tproxy: ["tproxy_prerouting"]
        case .redirect: ["redirect_prerouting", "redirect_output"]
        }
    }

    /// The nftables batch that (re)creates this mode's chains.
    public var nftScript: String {
        let table = "inet \(Self.table)"
        var lines = ["add table \(table)"]
        func chain(_ name: String, _ definition: String, _ rules: [String]) {
            lines.append("add chain \(table) \(name) { \(definition) }")
            lines.append("flush chain \(table) \(name)")
            lines += rules.map { "add rule \(table) \(name) \($0)" }
        }
        var protect: [String] = []
        if mark != 0 { protect.append("meta mark 0x\(hex(mark)) return") }
        protect.append("fib daddr type local return")
        let family: String =
            switch self.family {
            case .both: ""
            case .ipv4: "meta nfproto ipv4 "
            case .ipv6: "meta nfproto ipv6 "
            }
        let incoming = interface.map { "iifname \"\($0)\" " } ?? ""
        let ports = destinationPorts.count == 1 ? destinationPorts[0].description : "{ \(destinationPorts.map(\.description).joined(separator: ", ")) }"
        switch mode {
        case .tproxy:
            chain(
                "tproxy_prerouting", "type filter hook prerouting priority mangle; policy accept;",
                protect + [
                    "meta l4proto tcp socket transparent 1 meta mark set 0x\(hex(routeMark)) accept",
                    "\(incoming)\(family)tcp dport \(ports) tproxy to :\(port) meta mark set 0x\(hex(routeMark)) accept",
                ]
            )
        case .redirect:
            chain(
                "redirect_prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                protect + ["\(incoming)\(family)tcp dport \(ports) redirect to :\(port)"]
            )
            if local {
                chain(
                    "redirect_output", "type nat hook output priority -100; policy accept;",
                    protect + ["\(family)tcp dport \(ports) redirect to :\(port)"]
                )
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What `--apply` runs, in order.
    public var applySteps: [Step] {
        var steps: [Step] = [.nft(nftScript)]
        guard mode == .tproxy else { return steps }
        for ip in family.ip {
            let rule = ["ip", ip, "rule"]
            let selector = ["fwmark", "0x\(hex(routeMark))", "lookup", "\(routeTable)"]
            steps.append(.command(rule + ["del"] + selector, ignoreFailure: true))
            steps.append(.command(rule + ["add"] + selector, ignoreFailure: false))
            steps.append(.command(["ip", ip, "route", "replace"] + localRoute(ip), ignoreFailure: false))
        }
        return steps
    }

    /// What `--remove` runs, in order: each deletion may find nothing to delete.
    public var removeSteps: [Step] {
        var steps: [Step] = chains.map { .command(["nft", "delete", "chain", "inet", Self.table, $0], ignoreFailure: true) }
        if mode == .tproxy {
            for ip in family.ip {
                steps.append(.command(["ip", ip, "rule", "del", "fwmark", "0x\(hex(routeMark))", "lookup", "\(routeTable)"], ignoreFailure: true))
                steps.append(.command(["ip", ip, "route", "del"] + localRoute(ip), ignoreFailure: true))
            }
        }
        steps.append(.deleteTableIfEmpty)
        return steps
    }

    private func localRoute(_ ip: String) -> [String] {
        ["local", ip == "-6" ? "::/0" : "0.0.0.0/0", "dev", "lo", "table", "\(routeTable)"]
    }

    /// The apply steps as a shell script to read or run, with the removal as comments after it.
    public var script: String {
        let what = mode == .tproxy ? "TPROXY" : "NAT redirect"
        let ports = destinationPorts.map(\.description).joined(separator: ",")
        var text = """
            # Sluice transparent mode (\(what)): TCP to ports \(ports) goes to Sluice's \(mode.rawValue)://…:\(port) listener.
            # Run as root (CAP_NET_ADMIN), or let `sluice transparent rules … --apply` run it.

            """
        text += render(applySteps)
        text += "\n# To remove (`sluice transparent rules … --remove`):\n"
        text += render(removeSteps).split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "# \($0)" }.joined(separator: "\n")
        return text
    }

    private func render(_ steps: [Step]) -> String {
        var text = ""
        for step in steps {
            switch step {
            case .nft(let batch):
                text += "nft -f - <<'EOF'\n\(batch)EOF\n"
            case .command(let arguments, let ignoreFailure):
                text += arguments.joined(separator: " ") + (ignoreFailure ? " 2>/dev/null || true" : "") + "\n"
            case .deleteTableIfEmpty:
                text += "nft list table inet \(Self.table) 2>/dev/null | grep -q chain || nft delete table inet \(Self.table) 2>/dev/null || true\n"
            }
        }
        return text
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "@")
    }
}

private func hex(_ value: UInt32) -> String { String(value, radix: 16) }
