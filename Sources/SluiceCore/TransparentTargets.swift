import SluiceModel
import SluicePolicy
import Yams

/// `transparent:` and `targets:` in sluice.yaml: what transparent listeners (`tproxy://`, `redirect://`) do with the
/// connections they accept, by where each was going.
public struct TransparentSettings: Sendable, Equatable {
    /// What happens to a connection whose original destination no target lists.
    public enum Unknown: String, Sendable, CaseIterable {
        /// Closed at once (the default): a transparent Sluice relays only what it was told to.
        case refuse
        /// Relayed as bytes, a `tcp` flow, with an alert that says it was unknown.
        case relay
    }

    public var unknown: Unknown = .refuse
    /// Seconds to wait for a client's first bytes before deciding without them (a protocol whose server speaks first
    /// on a port no module claims): then the connection is relayed as `tcp`.
    public var sniffTimeout: Double = 1
    /// `SO_MARK` on the connections Sluice makes to the original destinations, so that the rules never send them back
    /// to Sluice (`sluice transparent rules` matches it); 0: none. Setting it needs `CAP_NET_ADMIN`.
    public var mark: UInt32 = TransparentSettings.defaultMark
    /// The target table, first match wins.
    public var targets: [TransparentTarget] = []

    public static let defaultMark: UInt32 = 0x2

    public init() {}

    /// The first target whose destinations and ports cover `host:port`; nil when none does (or `host` is no address).
    public func target(for host: String, port: Int) -> TransparentTarget? {
        guard let address = CIDR.addressBytes(host) else { return nil }
        return targets.first { $0.covers(address: address, port: port) }
    }

    static let keys = "unknown, sniff_timeout, mark"

    static func parse(_ value: Node, into settings: inout TransparentSettings, source: String, line: Int?) throws(ConfigurationError) {
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "transparent: expected a mapping (\(keys))")
        }
        for (keyNode, item) in mapping {
            let name = keyNode.string ?? ""
            func fail(_ message: String) -> ConfigurationError {
                ConfigurationError(source: source, line: item.mark?.line ?? line, message: "transparent.\(name): \(message)")
            }
            switch name {
            case "unknown":
                guard let text = item.string, let unknown = Unknown(rawValue: text) else { throw fail("expected refuse or relay") }
                settings.unknown = unknown
            case "sniff_timeout":
                guard let seconds = item.float else { throw fail("expected a positive number of seconds") }
                if let problem = Configuration.secondsProblem(seconds) { throw fail(problem) }
                settings.sniffTimeout = seconds
            case "mark":
                guard let text = item.string, let mark = parseMark(text) else { throw fail("expected a firewall mark, 0 to 0xffffffff (0: none)") }
                settings.mark = mark
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'transparent.\(name)' (known: \(keys))")
            }
        }
    }

    /// A firewall mark as nftables and `ip rule` write it: decimal or `0x` hexadecimal, 32 bits.
    public static func parseMark(_ text: String) -> UInt32? {
        let lowered = text.lowercased()
        if lowered.hasPrefix("0x") { return UInt32(lowered.dropFirst(2), radix: 16) }
        return UInt32(lowered)
    }
}

/// One row of the target table: original destinations (addresses or CIDR ranges, ports or port ranges), whether they
/// may be reached, and how: the protocol (or `auto`: the port and the first bytes decide), the listener options of
/// that protocol's scheme (`tls: intercept`), and SSH settings of their own (`target_login`, `host_key_policy`...).
public struct TransparentTarget: Sendable, Equatable {
    public enum Action: String, Sendable, CaseIterable {
        case allow
        /// Refused, and recorded as refused.
        case deny
    }

    /// The row's position in the table, from 0: how modules find what they prepared for it.
    public var index: Int
    public var name: String?
    /// Empty: any address.
    public var destinations: [CIDR] = []
    /// Empty: any port.
    public var ports: [PortRange] = []
    public var action: Action = .allow
    /// `auto`, `tcp`, or a protocol a module serves (`ssh`, `postgres`, `mysql`, `http`).
    public var protocolName: String = TransparentProtocol.autoName
    /// Listener options for the protocol's scheme, as `?NAME=VALUE` would give them.
    public var options: [String: String] = [:]
    /// `ssh:` for this target, over the top-level `ssh:`; nil: the top-level one.
    public var ssh: SSHSettings?
    /// `policy:` for this target's commands and statements (a file, or rules inline), instead of the top-level one;
    /// nil: the top-level one.
    public var policy: TargetPolicy?

    public init(index: Int) {
        self.index = index
    }

    /// How logs and refusals name the row: its `name`, else its position.
    public var label: String { name ?? "targets[\(index)]" }

    func covers(address: [UInt8], port: Int) -> Bool {
        (destinations.isEmpty || destinations.contains { $0.contains(address) }) && (ports.isEmpty || ports.contains { $0.contains(port) })
    }

    static let keys = "name, destination, port, action, protocol, options, ssh, policy"

    /// `targets:`, a list of rows.
    /// - Parameters:
    ///   - protocols: the protocols the modules serve, for `protocol:` and `options:`.
    ///   - ssh: the top-level `ssh:` settings, which a row's own `ssh:` refines.
    static func parseTable(
        _ value: Node, source: String, line: Int?, protocols: [TransparentProtocol], ssh: SSHSettings
    ) throws(ConfigurationError) -> [TransparentTarget] {
        guard let sequence = value.sequence else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "targets: expected a list of targets (- destination: ...)")
        }
        var targets: [TransparentTarget] = []
        for (index, item) in sequence.enumerated() {
            targets.append(try parse(item, index: index, source: source, protocols: protocols, ssh: ssh))
        }
        return targets
    }

    static func parse(
        _ item: Node, index: Int, source: String, protocols: [TransparentProtocol], ssh: SSHSettings
    ) throws(ConfigurationError) -> TransparentTarget {
        guard let mapping = item.mapping else {
            throw ConfigurationError(source: source, line: item.mark?.line, message: "targets[\(index)]: expected a mapping (\(keys))")
        }
        var target = TransparentTarget(index: index)
        var sshNode: Node?
        var optionsNode: Node?
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            func fail(_ message: String) -> ConfigurationError {
                ConfigurationError(source: source, line: value.mark?.line ?? keyNode.mark?.line, message: "targets[\(index)].\(key): \(message)")
            }
            let list = value.sequence.map { Array($0).map { $0.scalar?.string } } ?? [value.scalar?.string]
            switch key {
            case "name":
                guard let name = value.string, !name.isEmpty else { throw fail("expected a name") }
                target.name = name
            case "destination":
                var ranges: [CIDR] = []
                for text in list {
                    if text == "any" {
                        ranges += [CIDR("0.0.0.0/0"), CIDR("::/0")].compactMap { $0 }
                    } else if let text, let range = CIDR(text) {
                        ranges.append(range)
                    } else {
                        throw fail("'\(text ?? "")' is not an address, a CIDR range (10.0.0.0/8, fd00::/8) or any")
                    }
                }
                guard !ranges.isEmpty else { throw fail("expected an address, a CIDR range or a list of them") }
                target.destinations = ranges
            case "port":
                var ranges: [PortRange] = []
                for text in list {
                    guard let text, let range = PortRange(parsing: text) else {
                        throw fail("'\(text ?? "")' is not a port (1-65535) or a range of them (8000-8099)")
                    }
                    ranges.append(range)
                }
                guard !ranges.isEmpty else { throw fail("expected a port, a range or a list of them") }
                target.ports = ranges
            case "action":
                guard let text = value.string, let action = Action(rawValue: text) else { throw fail("expected allow or deny") }
                target.action = action
            case "protocol":
                let names = [TransparentProtocol.autoName, TransparentProtocol.tcpName] + protocols.map(\.name)
                guard let text = value.string, names.contains(text) else { throw fail("expected one of \(names.joined(separator: ", "))") }
                target.protocolName = text
            case "options":
                optionsNode = value
            case "ssh":
                sshNode = value
            case "policy":
                do {
                    if let path = value.scalar?.string {
                        guard !path.isEmpty else {
                            throw ConfigurationError(
                                source: source, line: value.mark?.line, message: "expected a policy file's path or the rules themselves")
                        }
                        let file = Configuration.resolve(path, beside: source)
                        target.policy = TargetPolicy(SharedPolicy(try Configuration.loadPolicy(file: file)), source: file)
                    } else {
                        target.policy = TargetPolicy(SharedPolicy(try Policy.parse(node: value, source: source)), source: "inline")
                    }
                } catch let error as ConfigurationError {
                    throw ConfigurationError(source: error.source, line: error.line, message: "targets[\(index)].policy: \(error.message)")
                } catch let error as PolicyError {
                    throw ConfigurationError(source: error.source, line: error.line, message: "targets[\(index)].policy: \(error.message)")
                } catch {
                    throw fail("\(error)")
                }
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'targets[\(index)].\(key)' (known: \(keys))")
            }
        }
        if let optionsNode {
            target.options = try parseOptions(optionsNode, of: target, source: source, protocols: protocols)
        }
        if let sshNode {
            guard [TransparentProtocol.autoName, "ssh"].contains(target.protocolName) else {
                throw ConfigurationError(
                    source: source, line: sshNode.mark?.line, message: "targets[\(index)].ssh: only for protocol ssh or auto, not \(target.protocolName)"
                )
            }
            do {
                target.ssh = try SSHSettings.parse(sshNode, source: source, line: sshNode.mark?.line, over: ssh)
            } catch {
                throw ConfigurationError(source: error.source, line: error.line, message: "targets[\(index)]: \(error.message)")
            }
        }
        return target
    }

    /// A row's `options:`, each checked against the scheme of its protocol; under `auto`, against every protocol's
    /// (and given only to those whose scheme takes it).
    private static func parseOptions(
        _ value: Node, of target: TransparentTarget, source: String, protocols: [TransparentProtocol]
    ) throws(ConfigurationError) -> [String: String] {
        let prefix = "targets[\(target.index)].options"
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line, message: "\(prefix): expected a mapping (NAME: VALUE)")
        }
        let schemes: [ListenScheme] =
            switch target.protocolName {
            case TransparentProtocol.autoName: protocols.map(\.scheme)
            case TransparentProtocol.tcpName: []
            default: protocols.filter { $0.name == target.protocolName }.map(\.scheme)
            }
        var options: [String: String] = [:]
        for (keyNode, item) in mapping {
            let name = (keyNode.string ?? "").lowercased()
            guard let text = item.string?.lowercased(), !text.isEmpty else {
                throw ConfigurationError(source: source, line: item.mark?.line, message: "\(prefix).\(name): expected a value")
            }
            let takers = schemes.filter { $0.options[name] != nil }
            guard !takers.isEmpty else {
                let known = Set(schemes.flatMap(\.options.keys)).sorted().joined(separator: ", ")
                throw ConfigurationError(
                    source: source, line: keyNode.mark?.line,
                    message: "\(prefix): unknown option '\(name)' for protocol \(target.protocolName) (known: \(known.isEmpty ? "none" : known))"
                )
            }
            guard takers.contains(where: { $0.options[name]?.contains(text) == true }) else {
                let values = Set(takers.flatMap { $0.options[name] ?? [] }).sorted().joined(separator: ", ")
                throw ConfigurationError(source: source, line: item.mark?.line, message: "\(prefix).\(name) is one of \(values), not '\(text)'")
            }
            options[name] = text
        }
        return options
    }

    /// The row's options that `scheme` takes: a row under `auto` may name options of several protocols.
    public func options(for scheme: ListenScheme) -> [String: String] {
        options.filter { scheme.options[$0.key]?.contains($0.value) == true }
    }
}

/// A target's own risk policy, shared by every connection to it. Two are the same when they are the same object: a
/// policy is rules, which are not compared.
public final class TargetPolicy: Sendable, Equatable {
    public let shared: SharedPolicy
    /// The file it was read from, or `inline`.
    public let source: String

    public init(_ shared: SharedPolicy, source: String) {
        self.shared = shared
        self.source = source
    }

    public static func == (lhs: TargetPolicy, rhs: TargetPolicy) -> Bool { lhs === rhs }
}
