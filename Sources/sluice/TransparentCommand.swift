import ArgumentParser
import Foundation
import SluiceCore

/// `sluice transparent`: what transparent mode needs outside Sluice.
struct TransparentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transparent", abstract: "Set up transparent mode: the firewall rules that send traffic to Sluice.",
        subcommands: [TransparentRulesCommand.self]
    )
}

/// `sluice transparent rules`: prints, applies or removes the nftables rules, `ip rule` and route of one mode.
struct TransparentRulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Print (or apply, or remove) the rules that send traffic to a transparent listener.",
        discussion: """
            Prints a shell script of the nftables rules (table inet sluice, one chain per mode), and for --tproxy the \
            ip rule and local route, that send TCP traffic to --dports to Sluice's tproxy:// or redirect:// listener on \
            --port. --apply runs them (root or CAP_NET_ADMIN; applying again replaces them); --remove deletes exactly \
            what --apply added, and the table once no chain is left (give --remove the --fwmark, --route-table and \
            --family --apply had, for the TPROXY ip rule and route).

            Loop protection: every chain first lets through packets with Sluice's own mark (transparent.mark, which \
            Sluice sets on its connections to the original destinations), and never touches traffic addressed to \
            this host. The mode, the port and the mark default to the config's (--config, else <data-dir>/sluice.yaml) \
            transparent listeners and transparent.mark; --dports to the target table's ports, else to the ports the \
            protocols usually run on.

            Examples:
              sluice transparent rules --tproxy --port 8022 --dports 22
              sluice transparent rules --redirect --port 8023 --dports 80,443,5432 --interface eth1 --apply
              sluice transparent rules --redirect --port 8023 --dports 80 --local --apply
              sluice transparent rules --redirect --port 8023 --remove
            """
    )

    enum Mode: String, EnumerableFlag {
        case tproxy
        case redirect

        static func help(for value: Mode) -> ArgumentHelp? {
            switch value {
            case .tproxy: "TPROXY (forwarded traffic; the listener needs CAP_NET_ADMIN)."
            case .redirect: "NAT redirect (forwarded traffic, and with --local this host's own)."
            }
        }
    }

    @OptionGroup var store: StoreOptions

    @Flag(exclusivity: .exclusive) var mode: Mode?

    @Option(name: .long, help: "The port of Sluice's listener of this mode (default: the configured one's).")
    var port: Int?

    @Option(name: .long, help: ArgumentHelp("Destination ports to intercept, e.g. 22,80,443 or 8000-8099.", valueName: "ports"))
    var dports: String?

    @Option(name: .long, help: "Sluice's own SO_MARK, let through first (default: transparent.mark, 0x2; 0: none).")
    var mark: String?

    @Option(name: .long, help: "TPROXY: the mark that routes intercepted packets locally (default 0x1).")
    var fwmark: String?

    @Option(name: .customLong("route-table"), help: "TPROXY: the routing table of the local route (default 100).")
    var routeTable: Int?

    @Option(name: .long, help: "both (default), ipv4 or ipv6.")
    var family: String?

    @Option(name: .long, help: "Intercept only traffic arriving on this interface.")
    var interface: String?

    @Flag(name: .long, help: "Redirect: also this host's own outgoing connections (Sluice's own are let through by their mark).")
    var local = false

    @Flag(name: .long, help: "Apply the rules now.")
    var apply = false

    @Flag(name: .long, help: "Remove the rules of this mode.")
    var remove = false

    func validate() throws {
        if apply && remove { throw ValidationError("--apply and --remove exclude each other") }
    }

    func run() throws {
        let rules: TransparentRules
        do {
            rules = try makeRules()
        } catch {
            throw fail(error, status: 2)
        }
        if let problem = rules.problem, !remove { throw fail(problem, status: 2) }
        if apply {
            try run(rules.applySteps, what: "apply")
            let ports = rules.destinationPorts.map(\.description).joined(separator: ",")
            print("applied the \(rules.mode.rawValue) rules: TCP to ports \(ports) goes to port \(rules.port)")
        } else if remove {
            try run(rules.removeSteps, what: "remove")
            print("removed the \(rules.mode.rawValue) rules")
        } else {
            print(rules.script, terminator: "")
        }
    }

    /// The rules from the flags, with the config's listeners, targets and mark for what they leave out.
    private func makeRules() throws -> TransparentRules {
        let configuration = try store.loadConfiguration()
        let transparent = configuration.listeners.filter(\.scheme.isTransparent)
        let mode: TransparentRules.Mode
        if let chosen = self.mode {
            mode = chosen == .tproxy ? .tproxy : .redirect
        } else if let only = Set(transparent.map(\.scheme.name)).first, Set(transparent.map(\.scheme.name)).count == 1,
            let configured = TransparentRules.Mode(rawValue: only)
        {
            mode = configured
        } else {
            throw ValidationError("give --tproxy or --redirect")
        }
        // Removing needs no port: the chains are found by name.
        guard let port = port ?? transparent.first(where: { $0.scheme.name == mode.rawValue })?.listen.port ?? (remove ? 1 : nil) else {
            throw ValidationError("give --port: no \(mode.rawValue):// listener is configured")
        }
        var rules = TransparentRules(mode: mode, port: port, destinationPorts: try destinationPorts(configuration))
        rules.mark = configuration.transparent.mark
        if let mark {
            guard let value = TransparentSettings.parseMark(mark) else { throw ValidationError("--mark: '\(mark)' is not a firewall mark") }
            rules.mark = value
        }
        if let fwmark {
            guard let value = TransparentSettings.parseMark(fwmark) else { throw ValidationError("--fwmark: '\(fwmark)' is not a firewall mark") }
            rules.routeMark = value
        }
        if let routeTable { rules.routeTable = routeTable }
        if let family {
            guard let value = TransparentRules.Family(rawValue: family) else { throw ValidationError("--family is both, ipv4 or ipv6, not '\(family)'") }
            rules.family = value
        }
        rules.interface = interface
        rules.local = local
        return rules
    }

    private func destinationPorts(_ configuration: Configuration) throws -> [PortRange] {
        if let dports {
            var ranges: [PortRange] = []
            for text in dports.split(separator: ",", omittingEmptySubsequences: false) {
                guard let range = PortRange(parsing: String(text)) else { throw ValidationError("--dports: '\(text)' is not a port or a range (8000-8099)") }
                ranges.append(range)
            }
            return ranges
        }
        let allowed = configuration.transparent.targets.filter { $0.action == .allow }
        if !allowed.isEmpty, allowed.allSatisfy({ !$0.ports.isEmpty }) {
            return allowed.flatMap(\.ports)
        }
        return Set(ListenSchemes.protocols.flatMap(\.ports)).sorted().map { PortRange($0, $0) }
    }

    private func run(_ steps: [TransparentRules.Step], what: String) throws {
        for step in steps {
            switch step {
            case .nft(let batch):
                let result = try execute(["nft", "-f", "-"], input: batch)
                guard result.status == 0 else { throw fail("cannot \(what) the rules: nft: \(result.errors)") }
            case .command(let arguments, let ignoreFailure):
                let result = try execute(arguments)
                guard result.status == 0 || ignoreFailure else {
                    throw fail("cannot \(what) the rules: \(arguments.joined(separator: " ")): \(result.errors)")
                }
            case .deleteTableIfEmpty:
                let table = ["inet", TransparentRules.table]
                let listing = try execute(["nft", "list", "table"] + table)
                if listing.status == 0, !listing.output.contains("chain ") {
                    _ = try execute(["nft", "delete", "table"] + table)
                }
            }
        }
    }

    /// Runs a program found on PATH; returns its exit status, standard output and standard error (trimmed).
    private func execute(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        let standardInput = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = standardInput
        do {
            try process.run()
        } catch {
            throw fail("cannot run \(arguments[0]): \(error.localizedDescription)")
        }
        if let input { standardInput.fileHandleForWriting.write(Data(input.utf8)) }
        try? standardInput.fileHandleForWriting.close()
        // Small outputs (a table's listing, one error line): read after the exit would do, but reading first cannot
        // deadlock on a full pipe.
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = { (data: Data) in String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        if process.terminationStatus == 127 { throw fail("cannot run \(arguments[0]): not installed (apt-get install nftables iproute2)") }
        return (process.terminationStatus, text(out), text(err))
    }
}
