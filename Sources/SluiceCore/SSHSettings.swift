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
    /// Sluice's own login on targets; nil: the client's password passes through.
    public var targetLogin: TargetLogin?
    /// With `targetLogin`: who may log in to Sluice, user name → a file of their public keys (authorized_keys form).
    public var users: [String: String] = [:]

    /// `ssh.target_login`: what Sluice logs in to targets with.
    public struct TargetLogin: Sendable, Equatable {
        /// The target user; nil: the name the client logged in to Sluice with.
        public var user: String?
        /// An OpenSSH private key (Ed25519 or ECDSA, unencrypted), or a file holding the password.
        public var keyFile: String?
        public var passwordFile: String?

        public init(user: String? = nil, keyFile: String? = nil, passwordFile: String? = nil) {
            self.user = user
            self.keyFile = keyFile
            self.passwordFile = passwordFile
        }
    }

    public init() {}

    static let keys = "host_key_policy, known_hosts, allow_port_forwarding, record_input, target_login, users"

    /// - Parameter base: what the keys not given keep (a target's `ssh:` refines the top-level one).
    static func parse(_ value: Node, source: String, line: Int?, over base: SSHSettings = SSHSettings()) throws(ConfigurationError) -> SSHSettings {
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "ssh: expected a mapping (\(keys))")
        }
        var settings = base
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
            case "target_login":
                guard let login = item.mapping else { throw fail("expected a mapping (user, key_file or password_file)") }
                var parsed = TargetLogin()
                for (loginKey, loginValue) in login {
                    let field = loginKey.string ?? ""
                    guard let text = loginValue.string, !text.isEmpty else { throw fail("\(field): expected text") }
                    switch field {
                    case "user": parsed.user = text
                    case "key_file": parsed.keyFile = Configuration.resolve(text, beside: source)
                    case "password_file": parsed.passwordFile = Configuration.resolve(text, beside: source)
                    default: throw fail("unknown key '\(field)' (known: user, key_file, password_file)")
                    }
                }
                guard (parsed.keyFile == nil) != (parsed.passwordFile == nil) else { throw fail("give key_file or password_file (one of them)") }
                settings.targetLogin = parsed
            case "users":
                guard let users = item.mapping else { throw fail("expected a mapping of user name to a public keys file") }
                for (userKey, file) in users {
                    guard let name = userKey.string, !name.isEmpty, let path = file.string, !path.isEmpty else {
                        throw fail("expected NAME: FILE-OF-PUBLIC-KEYS")
                    }
                    settings.users[name] = Configuration.resolve(path, beside: source)
                }
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'ssh.\(name)' (known: \(keys))")
            }
        }
        return settings
    }
}
