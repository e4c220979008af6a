import FuzzSupport
import SluiceModel

// `sluice.yaml` through `Configuration.parse(yaml:source:)` (Yams, then Sluice's checks of every key).

/// Listen schemes of every target form, as the executable's modules declare them.
let schemes: [ListenScheme] = [
    .tcp, .tproxy, .redirect, ListenScheme(name: "http", target: .none, options: ["tls": ["intercept", "passthrough"]]),
    ListenScheme(name: "reverse+http", target: .url), ListenScheme(name: "postgres", target: .endpoint, options: ["tls": ["intercept", "off"]]),
]

/// Protocols a target's `protocol:` may name, as the modules declare them (their sniffers do not matter here).
let protocols: [TransparentProtocol] = ["http", "postgres"].compactMap { name in
    schemes.first { $0.name == name }.map { TransparentProtocol(scheme: $0, ports: [], opening: .serverFirst) }
} + [TransparentProtocol(scheme: ListenScheme(name: "ssh", target: .endpoint), ports: [22], opening: .serverFirst)]

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let yaml = String(decoding: input.bytes, as: UTF8.self)
    let configuration: Configuration
    do {
        configuration = try Configuration.parse(yaml: yaml, source: "fuzz.yaml", schemes: schemes, protocols: protocols)
    } catch {
        // An error names where it is: this file, or a file it names (a `policy:` path, `~` expanded).
        let home = Configuration.expandTilde("~")
        let named = error.source == "fuzz.yaml" || yaml.contains(error.source) || (yaml.contains("~") && error.source.hasPrefix(home))
        require(!error.message.isEmpty && named, "error \(error)")
        if let line = error.line { require(line >= 0 && line <= yaml.utf8.count + 1, "line \(line)") }
        return 0
    }
    // What parsed is within the bounds each key promises.
    for timeout in [configuration.connectTimeout, configuration.holdTimeout] {
        require(Configuration.secondsProblem(timeout) == nil, "timeout \(timeout)")
    }
    require(
        configuration.maxPayloadBytes >= 0 && configuration.maxFlowBytes >= 0 && configuration.maxBodyBytes >= 0,
        "negative limit")
    let limits = configuration.webSocket
    require(
        limits.maxFrameBytes > 0 && limits.maxMessageBytes > 0 && limits.maxBufferedBytes > 0,
        "WebSocket limits \(limits)")
    require(!configuration.theme.isEmpty && !configuration.dataDirectory.isEmpty, "empty theme or data directory")
    // Every listen spec reads back from what it prints (the form the TUI, the log and errors show).
    for spec in configuration.listeners {
        do {
            let again = try ListenSpec(parsing: spec.description, schemes: schemes)
            require(again == spec, "\(spec) reads back as \(again)")
        } catch {
            require(false, "\(spec) does not read back: \(error)")
        }
    }
    // The target table holds only what its parser promises.
    let transparent = configuration.transparent
    require(Configuration.secondsProblem(transparent.sniffTimeout) == nil, "sniff_timeout \(transparent.sniffTimeout)")
    let names = [TransparentProtocol.autoName, TransparentProtocol.tcpName] + protocols.map(\.name)
    for (index, target) in transparent.targets.enumerated() {
        require(target.index == index, "target \(index) says it is \(target.index)")
        require(names.contains(target.protocolName), "protocol \(target.protocolName)")
        require(target.ports.allSatisfy { 1 <= $0.lower && $0.lower <= $0.upper && $0.upper <= 65535 }, "ports \(target.ports)")
        require(target.destinations.allSatisfy { CIDR($0.description) == $0 }, "destinations \(target.destinations)")
        for (name, value) in target.options {
            require(schemes.contains { $0.options[name]?.contains(value) == true }, "option \(name)=\(value)")
        }
        require(target.ssh == nil || ["auto", "ssh"].contains(target.protocolName), "ssh: under \(target.protocolName)")
    }
    if let filter = configuration.intercept {
        require((try? Filter(filter.text)) != nil, "intercept filter \(filter.text)")
    }
    _ = try? configuration.validate()
    return 0
}

runFuzzer { testOneInput($0, $1) }
