import Yams

/// `ssh:` in sluice.yaml: how the SSH man-in-the-middle trusts targets and what it lets through.
public struct SSHSettings: Sendable, Equatable {
    /// What to do with a target host key that `known_hosts` does not list.
    public enum HostKeyPolicy: String, Sendable, CaseIterable {
        /// Refuse the session (a changed key is always refused).
        case strict
        /// Trust on first use: record the key, and hold the target to it from then on.
        case tofu
    }

    public var hostKeyPolicy: HostKeyPolicy = .strict
    /// The target keys Sluice trusts, OpenSSH format; nil: `<data-dir>/known_hosts`.
    public var knownHosts: String?
    /// `direct-tcpip` channels (ssh -L, -J): refused unless on, then each is its own recorded `tcp` flow.
    public var allowPortForwarding = false
    /// Keystrokes go into the recording as `i` events too (they may hold passwords typed at prompts).
    public var recordInput = false

    public init() {}

    static let keys = "host_key_policy, known_hosts, allow_port_forwarding, record_input"

    static func parse(_ value: Node, source: String, line: Int?) throws(ConfigurationError) -> SSHSettings {
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "ssh: expected a mapping (\(keys))")
        }
        var settings = SSHSettings()
        for (keyNode, item) in mapping {
            let name = keyNode.string ?? ""
            func fail(_ message: String) -> ConfigurationError {
                ConfigurationError(source: source, line: item.mark?.line ?? line, message: "ssh.\(name): \(message)")
            }
            switch name {
            case "host_key_policy":
                guard let text = item.string, let policy = HostKeyPolicy(rawValue: text) else { throw fail("expected strict or tofu") }
                settings.hostKeyPolicy = policy
            case "known_hosts":
                guard let text = item.string, !text.isEmpty else { throw fail("expected a file path") }
                settings.knownHosts = Configuration.expandTilde(text)
            case "allow_port_forwarding":
                guard let flag = item.bool else { throw fail("expected true or false") }
                settings.allowPortForwarding = flag
            case "record_input":
                guard let flag = item.bool else { throw fail("expected true or false") }
                settings.recordInput = flag
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'ssh.\(name)' (known: \(keys))")
            }
        }
        return settings
    }
}
