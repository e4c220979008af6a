import Foundation
import NIOCore
import SluiceModel
import SluicePolicy
import Yams

/// Everything the engine and the recorder need to run, from `sluice.yaml` and then flags (flags win).
/// The keys are listed in `samples/sluice.yaml`, which documents each one.
public struct Configuration: Sendable, Equatable {
    public var listeners: [ListenSpec] = []
    /// `~/.sluice` unless set.
    public var dataDirectory: String = Configuration.defaultDataDirectory
    /// When false, flows are still stored with their byte counts, but no chunk (message) is recorded.
    public var record: Bool = true
    /// Bytes kept of one message; the rest is counted, not stored.
    public var maxPayloadBytes: Int = 1 << 20
    /// Bytes kept of one flow, both directions together; beyond that messages are counted only.
    public var maxFlowBytes: Int64 = 16 << 20
    /// Bytes kept of each HTTP request and response body; larger bodies stream through and are stored truncated
    /// with their real size.
    public var maxBodyBytes: Int = 4 << 20
    /// Seconds to wait for the target to accept a connection.
    public var connectTimeout: Double = 10
    public var logLevel: String = "info"
    /// The intercept filter at start (the TUI can change it); nil holds nothing.
    public var intercept: Filter?
    /// Seconds a held message waits for a verdict before `holdDefault` applies.
    public var holdTimeout: Double = 60
    /// What happens to a held message nobody decided on: forward it as it was, or drop it.
    public var holdDefault: Verdict = .forward(edited: nil)
    /// TLS interception: hosts (patterns like `*.bank.example`) whose TLS is tunnelled untouched.
    public var tlsPassthrough: [String] = []
    /// Skip verifying servers' certificates (`--insecure-upstream`): for test servers only.
    public var insecureUpstream = false
    /// Extra trusted roots for servers' certificates, a PEM file (beside the system's).
    public var upstreamCA: String?
    /// Source-address lists and proxy credentials.
    public var access = AccessRules()
    /// The TUI's colours: a built-in theme (dark, light, mono) or `<data-dir>/themes/NAME.yaml`.
    public var theme: String = "dark"
    /// How long a peer may keep Sluice waiting, as a reverse proxy ships them (`timeouts:`).
    public var timeouts = Timeouts()
    /// Client connections open at once; at the limit Sluice stops accepting until one closes. nil: half the file
    /// descriptors the process may open (each connection may need two), less a reserve.
    public var maxConnections: Int?

    /// Compare haproxy's `timeout http-request`, `timeout http-keep-alive`, `timeout server` and `timeout tunnel`,
    /// and nginx's `client_header_timeout`, `keepalive_timeout` and `proxy_read_timeout`.
    public struct Timeouts: Sendable, Equatable {
        /// Seconds a client has to send a whole request head, from the connection's start or the first byte of a
        /// later request (slowloris): then `408` and the connection closes. Also a TLS ClientHello after CONNECT.
        public var requestHead: Double = 30
        /// Seconds a kept-alive client connection may wait, idle, for its next request.
        public var keepAlive: Double = 60
        /// Seconds a server may stay silent while it owes a response: `504`, or the connection cut once the
        /// response has begun.
        public var server: Double = 60
        /// Seconds a TCP relay or tunnel may carry nothing either way before both sides close; nil: no limit.
        public var tunnelIdle: Double?

        public init() {}
    }

    /// What happens while the store cannot write (`store.on_full`).
    public var storeOnFull: StoreFullPolicy = .stop
    /// `store.search_bytes`: the most of each message's text the full-text index keeps (16 KiB); 0: no index.
    public var searchBytes = 16 * 1024

    /// WebSocket limits: a frame or a message over its limit ends the WebSocket with 1009 (RFC 6455 §7.4.1).
    public var webSocket = WebSocketLimits()

    /// `sql.record_bytes`: store a database session's raw protocol bytes (result rows included) as messages too.
    /// Off by default: its statements are recorded as commands with their parameters and outcomes, and its bytes
    /// only counted, which keeps result sets (often personal data) out of the store and costs a fraction.
    public var sqlRecordBytes = false
    /// Where the control API listens (`127.0.0.1:PORT` or `unix:PATH`); nil: no API, the default.
    public var apiListen: String?
    /// The ports the control API opens a session's proxies on (`api.proxy_ports`).
    public var apiProxyPorts = PortRange(10000, 20000)
    /// The address a session's proxies bind to (`api.proxy_host`): loopback unless the operator opens them wider.
    public var apiProxyHost = "127.0.0.1"

    public struct WebSocketLimits: Sendable, Equatable {
        public var maxFrameBytes = 16 << 20
        public var maxMessageBytes = 64 << 20
        /// Bytes of unfinished messages all WebSockets together may hold (`ByteBudget`).
        public var maxBufferedBytes = 256 << 20

        public init() {}
    }

    /// `ssh:` settings: target host keys, port forwarding, input recording.
    public var ssh = SSHSettings()

    /// `transparent:` and `targets:`: what `tproxy://` and `redirect://` listeners do with each connection.
    public var transparent = TransparentSettings()

    /// The risk policy for shell commands and SQL statements (`policy:`: a mapping, or the path of a policy file).
    public var policy: Policy = .builtIn
    /// Where `policy` was read from, when a file: reloading reads it again.
    public var policyFile: String?

    public init() {}

    public static func == (lhs: Configuration, rhs: Configuration) -> Bool {
        lhs.listeners == rhs.listeners && lhs.dataDirectory == rhs.dataDirectory && lhs.record == rhs.record
            && lhs.maxPayloadBytes == rhs.maxPayloadBytes && lhs.maxFlowBytes == rhs.maxFlowBytes
            && lhs.maxBodyBytes == rhs.maxBodyBytes
            && lhs.connectTimeout == rhs.connectTimeout && lhs.logLevel == rhs.logLevel
            && lhs.intercept?.text == rhs.intercept?.text && lhs.holdTimeout == rhs.holdTimeout && lhs.holdDefault == rhs.holdDefault
            && lhs.theme == rhs.theme && lhs.tlsPassthrough == rhs.tlsPassthrough && lhs.insecureUpstream == rhs.insecureUpstream
            && lhs.upstreamCA == rhs.upstreamCA && lhs.access == rhs.access && lhs.webSocket == rhs.webSocket
            && lhs.timeouts == rhs.timeouts && lhs.maxConnections == rhs.maxConnections && lhs.storeOnFull == rhs.storeOnFull
            && lhs.ssh == rhs.ssh && lhs.policyFile == rhs.policyFile && lhs.sqlRecordBytes == rhs.sqlRecordBytes
            && lhs.searchBytes == rhs.searchBytes
            && lhs.apiListen == rhs.apiListen && lhs.apiProxyPorts == rhs.apiProxyPorts && lhs.apiProxyHost == rhs.apiProxyHost
            && lhs.transparent == rhs.transparent
    }

    /// Parses `hold_default` / `--hold-default`.
    public static func verdict(named name: String) -> Verdict? {
        switch name {
        case "forward": return .forward(edited: nil)
        case "drop": return .drop
        default: return nil
        }
    }

    public static var defaultDataDirectory: String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".sluice")
    }

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The top-level keys a config file may hold.
    public static let keys = [
        "listen", "data_dir", "record", "max_payload_bytes", "max_flow_bytes", "max_body_bytes", "connect_timeout", "log_level", "intercept",
        "hold_timeout", "hold_default", "theme", "tls", "access", "websocket",
        "timeouts", "max_connections", "store", "ssh", "policy", "sql", "api", "transparent", "targets",
    ]

    /// Reads a YAML document over the defaults. `source` names the file in error messages.
    /// - Parameters:
    ///   - schemes: the listen schemes the specs may use (every module's); Core's own when not given.
    ///   - protocols: the protocols a target's `protocol:` may name (every module's `transparentProtocols`).
    public static func parse(
        yaml: String, source: String, schemes: [ListenScheme] = Configuration.coreSchemes, protocols: [TransparentProtocol] = []
    ) throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationError(source: source, line: Self.line(of: error), message: Self.describe(error))
        }
        guard let root else { return configuration }  // an empty file is the defaults
        guard let mapping = root.mapping else {
            throw ConfigurationError(source: source, line: root.mark?.line, message: "expected a mapping of keys (listen:, data_dir:, ...)")
        }
        // Read last: a target's `ssh:` refines the top-level one, wherever that stands in the file.
        var targets: (node: Node, line: Int?)?
        for (keyNode, value) in mapping {
            let line = keyNode.mark?.line
            guard let key = keyNode.string else {
                throw ConfigurationError(source: source, line: line, message: "keys must be plain words")
            }
            func fail(_ message: String) -> ConfigurationError {
                ConfigurationError(source: source, line: value.mark?.line ?? line, message: "\(key): \(message)")
            }
            switch key {
            case "listen":
                let items: [Node]
                if let sequence = value.sequence {
                    items = Array(sequence)
                } else if value.scalar != nil {
                    items = [value]
                } else {
                    throw fail("expected a list of listen specs")
                }
                configuration.listeners = []
                for item in items {
                    guard let text = item.scalar?.string else {
                        throw ConfigurationError(source: source, line: item.mark?.line, message: "listen: expected a spec string")
                    }
                    do {
                        configuration.listeners.append(try ListenSpec(parsing: text, schemes: schemes))
                    } catch {
                        throw ConfigurationError(source: source, line: item.mark?.line, message: error.description)
                    }
                }
            case "data_dir":
                guard let text = value.scalar?.string, !text.isEmpty else { throw fail("expected a directory path") }
                configuration.dataDirectory = expandTilde(text)
            case "record":
                guard let flag = value.bool else { throw fail("expected true or false") }
                configuration.record = flag
            case "max_payload_bytes":
                guard let number = value.int, number >= 0 else { throw fail("expected a non-negative whole number of bytes") }
                configuration.maxPayloadBytes = number
            case "max_flow_bytes":
                guard let number = value.int, number >= 0 else { throw fail("expected a non-negative whole number of bytes") }
                configuration.maxFlowBytes = Int64(number)
            case "max_body_bytes":
                guard let number = value.int, number >= 0 else { throw fail("expected a non-negative whole number of bytes") }
                configuration.maxBodyBytes = number
            case "connect_timeout":
                configuration.connectTimeout = try seconds(value, fail)
            case "log_level":
                guard let level = value.string, logLevels.contains(level) else {
                    throw fail("expected one of \(logLevels.joined(separator: ", "))")
                }
                configuration.logLevel = level
            case "intercept":
                guard let text = value.scalar?.string else { throw fail("expected a filter expression") }
                do {
                    configuration.intercept = text.isEmpty ? nil : try Filter(text)
                } catch {
                    throw fail("\(error)")
                }
            case "hold_timeout":
                configuration.holdTimeout = try seconds(value, fail)
            case "theme":
                guard let name = value.string, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                    throw fail("expected a theme name (dark, light, mono or a file in <data-dir>/themes/)")
                }
                configuration.theme = name
            case "tls":
                guard let tls = value.mapping else { throw fail("expected a mapping (passthrough:, insecure_upstream:, upstream_ca:)") }
                for (tlsKey, tlsValue) in tls {
                    let name = tlsKey.string ?? ""
                    func tlsFail(_ message: String) -> ConfigurationError {
                        ConfigurationError(source: source, line: tlsValue.mark?.line ?? line, message: "tls.\(name): \(message)")
                    }
                    switch name {
                    case "passthrough":
                        let items = tlsValue.sequence.map(Array.init) ?? (tlsValue.scalar != nil ? [tlsValue] : [])
                        guard !items.isEmpty || tlsValue.sequence != nil else { throw tlsFail("expected a list of host patterns") }
                        configuration.tlsPassthrough = try items.map { item throws(ConfigurationError) in
                            guard let text = item.scalar?.string, !text.isEmpty else { throw tlsFail("expected host patterns like *.example.com") }
                            return text
                        }
                    case "insecure_upstream":
                        guard let flag = tlsValue.bool else { throw tlsFail("expected true or false") }
                        configuration.insecureUpstream = flag
                    case "upstream_ca":
                        guard let text = tlsValue.string, !text.isEmpty else { throw tlsFail("expected a PEM file path") }
                        configuration.upstreamCA = expandTilde(text)
                    default:
                        throw ConfigurationError(
                            source: source, line: tlsKey.mark?.line, message: "unknown key 'tls.\(name)' (known: passthrough, insecure_upstream, upstream_ca)"
                        )
                    }
                }
            case "access":
                configuration.access = try parseAccess(value, source: source, line: line)
            case "websocket":
                configuration.webSocket = try parseWebSocket(value, source: source, line: line)
            case "timeouts":
                configuration.timeouts = try parseTimeouts(value, source: source, line: line)
            case "ssh":
                configuration.ssh = try SSHSettings.parse(value, source: source, line: line)
            case "transparent":
                try TransparentSettings.parse(value, into: &configuration.transparent, source: source, line: line)
            case "targets":
                targets = (value, line)
            case "sql":
                guard let mapping = value.mapping else { throw fail("expected a mapping (record_bytes)") }
                for (name, item) in mapping {
                    guard name.string == "record_bytes" else {
                        throw ConfigurationError(source: source, line: name.mark?.line, message: "unknown key 'sql.\(name.string ?? "")' (known: record_bytes)")
                    }
                    guard let flag = item.bool else {
                        throw ConfigurationError(source: source, line: item.mark?.line, message: "sql.record_bytes: expected true or false")
                    }
                    configuration.sqlRecordBytes = flag
                }
            case "api":
                guard let mapping = value.mapping else { throw fail("expected a mapping (listen, proxy_ports, proxy_host)") }
                for (name, item) in mapping {
                    func problem(_ message: String) -> ConfigurationError {
                        ConfigurationError(source: source, line: item.mark?.line, message: "api.\(name.string ?? ""): \(message)")
                    }
                    switch name.string {
                    case "listen":
                        guard let address = item.string, !address.isEmpty else { throw problem("expected HOST:PORT or unix:PATH") }
                        configuration.apiListen = address
                    case "proxy_ports":
                        // YAML reads `12000` as a number and `10000-20000` as text: both are the scalar's text.
                        guard let text = item.scalar?.string, let range = PortRange(parsing: text) else {
                            throw problem("\(PortRange.expected), got '\(item.scalar?.string ?? "a non-scalar")'")
                        }
                        configuration.apiProxyPorts = range
                    case "proxy_host":
                        let host = item.string ?? ""
                        if let message = proxyHostProblem(host) { throw problem(message) }
                        configuration.apiProxyHost = host
                    default:
                        throw ConfigurationError(
                            source: source, line: name.mark?.line,
                            message: "unknown key 'api.\(name.string ?? "")' (known: listen, proxy_ports, proxy_host)"
                        )
                    }
                }
            case "policy":
                if let path = value.scalar?.string {
                    guard !path.isEmpty else { throw fail("expected a policy file's path or the rules themselves") }
                    let file = resolve(path, beside: source)
                    configuration.policy = try loadPolicy(file: file)
                    configuration.policyFile = file
                } else {
                    do {
                        configuration.policy = try Policy.parse(node: value, source: source)
                    } catch {
                        throw ConfigurationError(source: error.source, line: error.line, message: "policy: \(error.message)")
                    }
                }
            case "store":
                guard let store = value.mapping else { throw fail("expected a mapping (on_full:)") }
                for (storeKey, storeValue) in store {
                    switch storeKey.string {
                    case "on_full":
                        guard let name = storeValue.string, let policy = StoreFullPolicy(rawValue: name) else {
                            throw ConfigurationError(
                                source: source, line: storeValue.mark?.line ?? line, message: "store.on_full: expected stop or relay"
                            )
                        }
                        configuration.storeOnFull = policy
                    case "search_bytes":
                        guard let bytes = storeValue.int, bytes >= 0, bytes <= 1 << 24 else {
                            throw ConfigurationError(
                                source: source, line: storeValue.mark?.line ?? line,
                                message: "store.search_bytes: expected 0 (no full-text index) to 16777216 bytes"
                            )
                        }
                        configuration.searchBytes = bytes
                    default:
                        throw ConfigurationError(
                            source: source, line: storeKey.mark?.line,
                            message: "unknown key 'store.\(storeKey.string ?? "")' (known: on_full, search_bytes)"
                        )
                    }
                }
            case "max_connections":
                guard let number = value.int, number > 0 else { throw fail("expected a positive whole number of connections") }
                configuration.maxConnections = number
            case "hold_default":
                guard let name = value.string, let verdict = verdict(named: name) else { throw fail("expected forward or drop") }
                configuration.holdDefault = verdict
            default:
                throw ConfigurationError(source: source, line: line, message: "unknown key '\(key)' (known: \(keys.joined(separator: ", ")))")
            }
        }
        if let targets {
            configuration.transparent.targets = try TransparentTarget.parseTable(
                targets.node, source: source, line: targets.line, protocols: protocols, ssh: configuration.ssh
            )
        }
        return configuration
    }

    /// Core's own listen schemes: the TCP relay and the transparent listeners.
    public static let coreSchemes: [ListenScheme] = [.tcp, .tproxy, .redirect]

    /// The longest time any timeout may be set to: 30 days. Timers count in 64-bit nanoseconds, which a number like
    /// 1e16 seconds overflows, so the bound is checked where the number is read, not where a timer is armed.
    public static let maxSeconds: Double = 30 * 86_400

    /// Why `value` is not a usable number of seconds (positive, finite, at most `maxSeconds`), or nil when it is.
    public static func secondsProblem(_ value: Double) -> String? {
        guard value > 0, value.isFinite else { return "expected a positive number of seconds" }
        guard value <= maxSeconds else { return "\(value) seconds is more than the 30 days (2592000 s) a timeout may be" }
        return nil
    }

    private static func seconds(_ value: Node, _ fail: (String) -> ConfigurationError) throws(ConfigurationError) -> Double {
        guard let number = value.float else { throw fail("expected a positive number of seconds") }
        if let problem = secondsProblem(number) { throw fail(problem) }
        return number
    }

    /// `access: {allow: [CIDR...], deny: [CIDR...], users: ["user:password"...], token: "..."}`
    static func parseAccess(_ value: Node, source: String, line: Int?) throws(ConfigurationError) -> AccessRules {
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "access: expected a mapping (allow:, deny:, users:, token:)")
        }
        var rules = AccessRules()
        for (keyNode, item) in mapping {
            let name = keyNode.string ?? ""
            func fail(_ message: String) -> ConfigurationError {
                ConfigurationError(source: source, line: item.mark?.line ?? line, message: "access.\(name): \(message)")
            }
            let list = item.sequence.map { Array($0).compactMap { $0.scalar?.string } } ?? item.scalar.map { [$0.string] } ?? []
            switch name {
            case "allow", "deny":
                var ranges: [CIDR] = []
                for text in list {
                    guard let range = CIDR(text) else { throw fail("'\(text)' is not an address or CIDR range (10.0.0.0/8, fd00::/8)") }
                    ranges.append(range)
                }
                if name == "allow" { rules.allow = ranges } else { rules.deny = ranges }
            case "users":
                guard list.allSatisfy({ $0.contains(":") && !$0.hasPrefix(":") }) else { throw fail("expected user:password entries") }
                rules.users = list
            case "token":
                guard let token = item.string, !token.isEmpty else { throw fail("expected a token string") }
                rules.token = token
            case "users_file":
                guard let path = item.string, !path.isEmpty else { throw fail("expected a file path") }
                rules.users = try AccessRules.readUsers(file: expandTilde(path))
            case "token_file":
                guard let path = item.string, !path.isEmpty else { throw fail("expected a file path") }
                rules.token = try AccessRules.readToken(file: expandTilde(path))
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'access.\(name)' (known: allow, deny, users, token, users_file, token_file)")
            }
        }
        return rules
    }

    /// `timeouts: {request_head: S, keep_alive: S, server: S, tunnel_idle: S}`; `tunnel_idle: 0` is no limit.
    static func parseTimeouts(_ value: Node, source: String, line: Int?) throws(ConfigurationError) -> Timeouts {
        let known = "request_head, keep_alive, server, tunnel_idle"
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "timeouts: expected a mapping (\(known))")
        }
        var timeouts = Timeouts()
        for (keyNode, item) in mapping {
            let name = keyNode.string ?? ""
            func fail(_ message: String) -> ConfigurationError {
                ConfigurationError(source: source, line: item.mark?.line ?? line, message: "timeouts.\(name): \(message)")
            }
            switch name {
            case "request_head": timeouts.requestHead = try seconds(item, fail)
            case "keep_alive": timeouts.keepAlive = try seconds(item, fail)
            case "server": timeouts.server = try seconds(item, fail)
            case "tunnel_idle":
                if item.float == 0 { timeouts.tunnelIdle = nil } else { timeouts.tunnelIdle = try seconds(item, fail) }
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'timeouts.\(name)' (known: \(known))")
            }
        }
        return timeouts
    }

    /// `websocket: {max_frame_bytes: N, max_message_bytes: N, max_buffered_bytes: N}`
    static func parseWebSocket(_ value: Node, source: String, line: Int?) throws(ConfigurationError) -> WebSocketLimits {
        let known = "max_frame_bytes, max_message_bytes, max_buffered_bytes"
        guard let mapping = value.mapping else {
            throw ConfigurationError(source: source, line: value.mark?.line ?? line, message: "websocket: expected a mapping (\(known))")
        }
        var limits = WebSocketLimits()
        for (keyNode, item) in mapping {
            let name = keyNode.string ?? ""
            guard let number = item.int, number > 0 else {
                throw ConfigurationError(
                    source: source, line: item.mark?.line ?? line, message: "websocket.\(name): expected a positive whole number of bytes"
                )
            }
            switch name {
            case "max_frame_bytes": limits.maxFrameBytes = number
            case "max_message_bytes": limits.maxMessageBytes = number
            case "max_buffered_bytes": limits.maxBufferedBytes = number
            default:
                throw ConfigurationError(source: source, line: keyNode.mark?.line, message: "unknown key 'websocket.\(name)' (known: \(known))")
            }
        }
        return limits
    }

    /// Reads a policy file (`policy: FILE`, `--policy FILE`).
    public static func loadPolicy(file: String) throws(ConfigurationError) -> Policy {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigurationError(source: file, line: nil, message: "cannot read the policy file: \(describeFileError(error))")
        }
        do {
            return try Policy.parse(yaml: text, source: file)
        } catch {
            throw ConfigurationError(source: error.source, line: error.line, message: error.message)
        }
    }

    /// A path in a config file: `~` expanded, and relative to the config file's directory.
    static func resolve(_ path: String, beside source: String) -> String {
        let expanded = expandTilde(path)
        guard !expanded.hasPrefix("/"), source.contains("/") else { return expanded }
        return ((source as NSString).deletingLastPathComponent as NSString).appendingPathComponent(expanded)
    }

    /// Reads a config file; a missing or unreadable file is an error naming the path.
    /// - Parameters:
    ///   - schemes: the listen schemes the specs may use (every module's); Core's own when not given.
    ///   - protocols: the protocols a target's `protocol:` may name (every module's `transparentProtocols`).
    public static func load(
        path: String, schemes: [ListenScheme] = Configuration.coreSchemes, protocols: [TransparentProtocol] = []
    ) throws(ConfigurationError) -> Configuration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(source: path, line: nil, message: "cannot read: \(describeFileError(error))")
        }
        return try parse(yaml: text, source: path, schemes: schemes, protocols: protocols)
    }

    /// Checks values that only make sense together, after flags are applied.
    public func validate() throws(ConfigurationError) {
        if !Self.logLevels.contains(logLevel) {
            throw ConfigurationError(source: "log_level", line: nil, message: "expected one of \(Self.logLevels.joined(separator: ", ")), got '\(logLevel)'")
        }
        for (key, value) in [
            ("websocket.max_frame_bytes", webSocket.maxFrameBytes), ("websocket.max_message_bytes", webSocket.maxMessageBytes),
            ("websocket.max_buffered_bytes", webSocket.maxBufferedBytes),
        ] where value <= 0 {
            throw ConfigurationError(source: key, line: nil, message: "expected a positive whole number of bytes")
        }
        let timeouts = [
            ("connect_timeout", connectTimeout), ("hold_timeout", holdTimeout), ("timeouts.request_head", self.timeouts.requestHead),
            ("timeouts.keep_alive", self.timeouts.keepAlive), ("timeouts.server", self.timeouts.server),
            ("transparent.sniff_timeout", transparent.sniffTimeout),
        ] + (self.timeouts.tunnelIdle.map { [("timeouts.tunnel_idle", $0)] } ?? [])
        for (key, value) in timeouts {
            if let problem = Self.secondsProblem(value) { throw ConfigurationError(source: key, line: nil, message: problem) }
        }
        if let maxConnections, maxConnections <= 0 {
            throw ConfigurationError(source: "max_connections", line: nil, message: "expected a positive whole number of connections")
        }
        if let problem = Self.proxyHostProblem(apiProxyHost) {
            throw ConfigurationError(source: "api.proxy_host", line: nil, message: problem)
        }
        var seen = Set<Endpoint>()
        for spec in listeners where !seen.insert(spec.listen).inserted {
            throw ConfigurationError(source: "listen", line: nil, message: "\(spec.listen) is given twice")
        }
    }

    public static func expandTilde(_ path: String) -> String {
        (path as NSString).expandingTildeInPath
    }

    static func line(of error: Error) -> Int? {
        guard let yamlError = error as? YamlError else { return nil }
        switch yamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    static func describe(_ error: Error) -> String {
        guard let yamlError = error as? YamlError else { return "not valid YAML" }
        switch yamlError {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            return "not valid YAML: " + [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        case .reader(let problem, _, _, _):
            return "cannot read YAML: \(problem)"
        default:
            return "not valid YAML"
        }
    }
}

/// One line naming the file, the line when known, and what is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var line: Int?
    public var message: String

    public init(source: String, line: Int?, message: String) {
        self.source = source
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(source):\(line): \(message)" }
        return "\(source): \(message)"
    }
}

extension TimeAmount {
    /// A configured number of seconds as a timer's duration. Only for values `Configuration.validate` accepted
    /// (at most `Configuration.maxSeconds`), which fit a timer's 64-bit nanoseconds.
    public static func fromSeconds(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(seconds * 1_000_000_000))
    }
}
