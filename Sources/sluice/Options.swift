import ArgumentParser
import Foundation
import SluiceCore
import SluiceModel
import SluicePolicy
import SluiceStore

/// Where the store and config live; shared by every command.
struct StoreOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("data-dir"), help: "Data directory (store, logs). Default: ~/.sluice")
    var dataDir: String?

    @Option(name: .long, help: "Config file (YAML). Default: <data-dir>/sluice.yaml when it exists.")
    var config: String?

    /// The config file's contents, or the defaults when none is given or present.
    func loadConfiguration() throws(ConfigurationError) -> Configuration {
        guard let path = configurationPath else { return Configuration() }
        return try Configuration.load(path: path, schemes: ListenSchemes.all, protocols: ListenSchemes.protocols)
    }

    /// The config file the commands read: `--config`, else `<data-dir>/sluice.yaml` when it exists.
    var configurationPath: String? {
        if let config { return Configuration.expandTilde(config) }
        let directory = dataDir.map(Configuration.expandTilde) ?? Configuration.defaultDataDirectory
        let implicit = (directory as NSString).appendingPathComponent("sluice.yaml")
        return FileManager.default.fileExists(atPath: implicit) ? implicit : nil
    }

    func dataDirectory(_ configuration: Configuration) -> DataDirectory {
        DataDirectory(path: dataDir.map(Configuration.expandTilde) ?? configuration.dataDirectory)
    }
}

/// Every config key as a flag; a flag wins over the file.
struct EngineOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Listener, repeatable: http://HOST:PORT (explicit proxy), reverse+http://HOST:PORT=>http(s)://BACKEND:PORT, tcp://, ssh://, postgres:// or mysql://HOST:PORT=>HOST:PORT, tproxy:// or redirect://HOST:PORT (transparent; see targets: in sluice.yaml). Default: http://127.0.0.1:8080.",
            valueName: "spec"
        )
    )
    var listen: [String] = []

    @Flag(inversion: .prefixedNo, help: "Record each chunk's bytes (flows are always recorded).")
    var record: Bool?

    @Option(name: .customLong("max-payload-bytes"), help: "Bytes stored per message (default 1 MiB).")
    var maxPayloadBytes: Int?

    @Option(name: .customLong("max-flow-bytes"), help: "Bytes stored per flow (default 16 MiB).")
    var maxFlowBytes: Int64?

    @Option(name: .customLong("max-body-bytes"), help: "Bytes stored of each HTTP body (default 4 MiB).")
    var maxBodyBytes: Int?

    @Option(name: .customLong("connect-timeout"), help: "Seconds to wait for a target to accept (default 10).")
    var connectTimeout: Double?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Risk policy file for commands (over the config's policy:); SIGHUP reloads it.", valueName: "file")
    )
    var policy: String?

    @Option(name: .long, help: "Intercept filter: hold matching messages (e.g. '~k tcp & ~b password').")
    var intercept: String?

    @Option(name: .customLong("hold-timeout"), help: "Seconds a held message waits for a verdict (default 60).")
    var holdTimeout: Double?

    @Option(name: .customLong("hold-default"), help: "Verdict when a hold times out: forward (default) or drop.")
    var holdDefault: String?

    @Option(name: .customLong("tls-passthrough"), help: "Tunnel TLS to hosts matching this pattern untouched (repeatable), e.g. '*.bank.example'.")
    var tlsPassthrough: [String] = []

    @Flag(name: .customLong("insecure-upstream"), help: "Do not verify servers' certificates (test servers only).")
    var insecureUpstream = false

    @Option(name: .customLong("upstream-ca"), help: "PEM file of extra roots to trust for servers' certificates.")
    var upstreamCA: String?

    @Option(name: .customLong("allow"), help: "Accept clients only from this address or CIDR range (repeatable).")
    var allow: [String] = []

    @Option(name: .customLong("deny"), help: "Refuse clients from this address or CIDR range (repeatable).")
    var deny: [String] = []

    @Option(name: .customLong("proxy-user"), help: "USER:PASSWORD the explicit proxy requires (Proxy-Authorization Basic; repeatable).")
    var proxyUsers: [String] = []

    @Option(name: .customLong("proxy-token"), help: "A token the explicit proxy accepts (Bearer, or as any Basic user's password).")
    var proxyToken: String?

    @Option(name: .customLong("proxy-users-file"), help: "A file of USER:PASSWORD lines the explicit proxy accepts (keeps them out of ps).")
    var proxyUsersFile: String?

    @Option(name: .customLong("proxy-token-file"), help: "A file holding the proxy token (keeps it out of ps). Also: SLUICE_PROXY_TOKEN.")
    var proxyTokenFile: String?

    @Option(name: .customLong("request-head-timeout"), help: "Seconds a client has to send a whole request head (default 30; then 408).")
    var requestHeadTimeout: Double?

    @Option(name: .customLong("keep-alive-timeout"), help: "Seconds an idle kept-alive client connection stays open (default 60).")
    var keepAliveTimeout: Double?

    @Option(name: .customLong("server-timeout"), help: "Seconds a server may stay silent while it owes a response (default 60; then 504).")
    var serverTimeout: Double?

    @Option(name: .customLong("tunnel-idle-timeout"), help: "Seconds a TCP relay or tunnel may carry nothing before it closes (default: no limit).")
    var tunnelIdleTimeout: Double?

    @Option(name: .customLong("store-on-full"), help: "While the store cannot write (disk full): stop (refuse new connections; default) or relay (without recording).")
    var storeOnFull: String?

    @Option(name: .customLong("max-connections"), help: "Client connections at once; at the limit accepting pauses (default: from ulimit -n).")
    var maxConnections: Int?

    @Option(name: .customLong("websocket-max-frame-bytes"), help: "Largest WebSocket frame (default 16 MiB); larger ends it with 1009.")
    var webSocketMaxFrameBytes: Int?

    @Option(name: .customLong("websocket-max-message-bytes"), help: "Largest WebSocket message (default 64 MiB).")
    var webSocketMaxMessageBytes: Int?

    @Option(
        name: .customLong("websocket-max-buffered-bytes"),
        help: "Unfinished WebSocket messages all connections together may hold (default 256 MiB)."
    )
    var webSocketMaxBufferedBytes: Int?

    @Option(name: .customLong("ssh-host-key-policy"), help: "A target host key not in known_hosts: strict (refuse; default) or tofu (record it).")
    var sshHostKeyPolicy: String?

    @Option(name: .customLong("ssh-known-hosts"), help: "The target host keys to trust (OpenSSH format; default <data-dir>/known_hosts).")
    var sshKnownHosts: String?

    @Option(
        name: .customLong("transparent-unknown"),
        help: "A transparent connection to a destination no target lists: refuse (default) or relay (as tcp, with an alert)."
    )
    var transparentUnknown: String?

    @Option(
        name: .customLong("transparent-mark"),
        help: "SO_MARK on Sluice's connections for transparent clients, which the rules let through (default 0x2; 0: none)."
    )
    var transparentMark: String?

    @Option(
        name: .customLong("api"),
        help: ArgumentHelp(
            "Serve the control API on HOST:PORT (127.0.0.1:8081) or unix:PATH (api.listen); its token is <data-dir>/api-token.",
            valueName: "ADDRESS"
        )
    )
    var api: String?

    @Option(
        name: .customLong("api-proxy-ports"),
        help: ArgumentHelp("Ports the control API opens session proxies on (api.proxy_ports; default 10000-20000).", valueName: "LOW-HIGH")
    )
    var apiProxyPorts: String?

    @Option(
        name: .customLong("api-proxy-host"),
        help: ArgumentHelp("The IP address session proxies bind to (api.proxy_host; default 127.0.0.1).", valueName: "ADDRESS")
    )
    var apiProxyHost: String?

    @Flag(
        name: .customLong("sql-record-bytes"),
        help: "Store database sessions' raw bytes (result rows included) too, not only their statements (sql.record_bytes)."
    )
    var sqlRecordBytes = false

    @Flag(name: .shortAndLong, help: "Headless: no event lines on stderr (diagnostics still go there).")
    var quiet = false

    func configuration() throws -> Configuration {
        var configuration = try store.loadConfiguration()
        if !listen.isEmpty {
            configuration.listeners = try listen.map { text throws(ListenSpecError) in try ListenSpec(parsing: text, schemes: ListenSchemes.all) }
        }
        if configuration.listeners.isEmpty {
            // DESIGN: with no listener configured, Sluice is an explicit HTTP(S) proxy on loopback, like mitmproxy.
            configuration.listeners = [ListenSchemes.defaultListener]
        }
        if let dataDir = store.dataDir { configuration.dataDirectory = Configuration.expandTilde(dataDir) }
        if let record { configuration.record = record }
        if let maxPayloadBytes { configuration.maxPayloadBytes = maxPayloadBytes }
        if let maxFlowBytes { configuration.maxFlowBytes = maxFlowBytes }
        if let maxBodyBytes { configuration.maxBodyBytes = maxBodyBytes }
        if let connectTimeout { configuration.connectTimeout = connectTimeout }
        if let logLevel { configuration.logLevel = logLevel }
        if let intercept {
            do {
                configuration.intercept = intercept.isEmpty ? nil : try Filter(intercept)
            } catch {
                throw ConfigurationError(source: "--intercept", line: nil, message: "\(error)")
            }
        }
        if let policy {
            let file = Configuration.expandTilde(policy)
            configuration.policy = try Configuration.loadPolicy(file: file)
            configuration.policyFile = file
        }
        if let holdTimeout { configuration.holdTimeout = holdTimeout }
        if let requestHeadTimeout { configuration.timeouts.requestHead = requestHeadTimeout }
        if let keepAliveTimeout { configuration.timeouts.keepAlive = keepAliveTimeout }
        if let serverTimeout { configuration.timeouts.server = serverTimeout }
        if let tunnelIdleTimeout { configuration.timeouts.tunnelIdle = tunnelIdleTimeout == 0 ? nil : tunnelIdleTimeout }
        if let maxConnections { configuration.maxConnections = maxConnections }
        if let storeOnFull {
            guard let policy = StoreFullPolicy(rawValue: storeOnFull) else {
                throw ConfigurationError(source: "--store-on-full", line: nil, message: "expected stop or relay, got '\(storeOnFull)'")
            }
            configuration.storeOnFull = policy
        }
        if let webSocketMaxFrameBytes { configuration.webSocket.maxFrameBytes = webSocketMaxFrameBytes }
        if let webSocketMaxMessageBytes { configuration.webSocket.maxMessageBytes = webSocketMaxMessageBytes }
        if let webSocketMaxBufferedBytes { configuration.webSocket.maxBufferedBytes = webSocketMaxBufferedBytes }
        if let sshHostKeyPolicy {
            guard let policy = SSHSettings.HostKeyPolicy(rawValue: sshHostKeyPolicy) else {
                throw ConfigurationError(source: "--ssh-host-key-policy", line: nil, message: "expected strict or tofu, got '\(sshHostKeyPolicy)'")
            }
            configuration.ssh.hostKeyPolicy = policy
        }
        if let sshKnownHosts { configuration.ssh.knownHosts = Configuration.expandTilde(sshKnownHosts) }
        if let transparentUnknown {
            guard let unknown = TransparentSettings.Unknown(rawValue: transparentUnknown) else {
                throw ConfigurationError(source: "--transparent-unknown", line: nil, message: "expected refuse or relay, got '\(transparentUnknown)'")
            }
            configuration.transparent.unknown = unknown
        }
        if let transparentMark {
            guard let mark = TransparentSettings.parseMark(transparentMark) else {
                throw ConfigurationError(source: "--transparent-mark", line: nil, message: "expected a firewall mark (0x2, 2; 0: none), got '\(transparentMark)'")
            }
            configuration.transparent.mark = mark
        }
        if sqlRecordBytes { configuration.sqlRecordBytes = true }
        if let api { configuration.apiListen = api }
        if let apiProxyPorts {
            guard let range = PortRange(parsing: apiProxyPorts) else {
                throw ConfigurationError(source: "--api-proxy-ports", line: nil, message: "\(PortRange.expected), got '\(apiProxyPorts)'")
            }
            configuration.apiProxyPorts = range
        }
        if let apiProxyHost { configuration.apiProxyHost = apiProxyHost }
        if !tlsPassthrough.isEmpty { configuration.tlsPassthrough = tlsPassthrough }
        for (flag, texts) in [("--allow", allow), ("--deny", deny)] where !texts.isEmpty {
            var ranges: [CIDR] = []
            for text in texts {
                guard let range = CIDR(text) else {
                    throw ConfigurationError(source: flag, line: nil, message: "'\(text)' is not an address or CIDR range (10.0.0.0/8, fd00::/8)")
                }
                ranges.append(range)
            }
            if flag == "--allow" { configuration.access.allow = ranges } else { configuration.access.deny = ranges }
        }
        if let proxyUsersFile { configuration.access.users = try AccessRules.readUsers(file: Configuration.expandTilde(proxyUsersFile)) }
        if let proxyTokenFile { configuration.access.token = try AccessRules.readToken(file: Configuration.expandTilde(proxyTokenFile)) }
        let environment = ProcessInfo.processInfo.environment
        if let users = environment["SLUICE_PROXY_USERS"], !users.isEmpty {
            configuration.access.users = try AccessRules.parseUsers(users, source: "SLUICE_PROXY_USERS")
        }
        if let token = environment["SLUICE_PROXY_TOKEN"], !token.isEmpty { configuration.access.token = token }
        if !proxyUsers.isEmpty {
            guard proxyUsers.allSatisfy({ $0.contains(":") && !$0.hasPrefix(":") }) else {
                throw ConfigurationError(source: "--proxy-user", line: nil, message: "expected USER:PASSWORD")
            }
            configuration.access.users = proxyUsers
        }
        if let proxyToken { configuration.access.token = proxyToken }
        if insecureUpstream { configuration.insecureUpstream = true }
        if let upstreamCA { configuration.upstreamCA = Configuration.expandTilde(upstreamCA) }
        if let holdDefault {
            guard let verdict = Configuration.verdict(named: holdDefault) else {
                throw ConfigurationError(source: "--hold-default", line: nil, message: "expected forward or drop, got '\(holdDefault)'")
            }
            configuration.holdDefault = verdict
        }
        if configuration.maxPayloadBytes < 0 || configuration.maxFlowBytes < 0 || configuration.maxBodyBytes < 0 {
            throw ConfigurationError(source: "limits", line: nil, message: "byte limits cannot be negative")
        }
        try configuration.validate()
        return configuration
    }
}

/// Where the risk policy comes from. The first that is given wins: a policy file (`--policy`), the `policy:` of
/// the config file the commands read (`--config`, else `<data-dir>/sluice.yaml`), the built-in rules.
/// `sluice policy` and the SIGHUP reload read it the same way.
struct PolicySource: Sendable {
    var file: String?
    var store: StoreOptions

    /// The policy, and where it came from in words (a file's path, or `built-in policy`).
    func load() throws(ConfigurationError) -> (policy: Policy, origin: String) {
        if let file {
            let path = Configuration.expandTilde(file)
            return (try Configuration.loadPolicy(file: path), path)
        }
        if let path = store.configurationPath {
            let configuration = try Configuration.load(path: path, schemes: ListenSchemes.all, protocols: ListenSchemes.protocols)
            return (configuration.policy, configuration.policyFile ?? path)
        }
        return (.builtIn, "built-in policy")
    }
}
