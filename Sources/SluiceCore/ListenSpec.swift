import Foundation
import SluiceModel

/// One listener as the operator writes it: `tcp://127.0.0.1:9000=>10.0.0.5:7000`, `http://127.0.0.1:8080`,
/// `reverse+http://127.0.0.1:8000=>https://backend:8443`.
///
/// Grammar: `SCHEME://LISTEN[=>TARGET]`, where LISTEN is `host:port`, `[v6]:port` or `:port` (loopback), and
/// TARGET is `host:port` or `[v6]:port` (for reverse proxies `http://` or `https://` in front). Listening addresses
/// default to loopback so that nothing is exposed by accident.
public struct ListenSpec: Hashable, Sendable, CustomStringConvertible {
    public typealias Scheme = ListenScheme

    public var scheme: Scheme
    public var listen: Endpoint
    /// Where to forward to; nil for the explicit proxy, which learns it from each request.
    public var target: Endpoint?
    /// A reverse proxy's backend speaks TLS (`=>https://`).
    public var targetUsesTLS: Bool
    /// What follows `?`: options the scheme declares, e.g. `tls=intercept`.
    public var options: [String: String]

    public init(scheme: Scheme, listen: Endpoint, target: Endpoint?, targetUsesTLS: Bool = false, options: [String: String] = [:]) {
        self.scheme = scheme
        self.listen = listen
        self.target = target
        self.targetUsesTLS = targetUsesTLS
        self.options = options
    }

    public var description: String {
        var text = "\(scheme.name)://\(listen)"
        if let target {
            switch scheme.target {
            case .url: text += "=>\(targetUsesTLS ? "https" : "http")://\(target)"
            case .none, .endpoint: text += "=>\(target)"
            }
        }
        if !options.isEmpty {
            text += "?" + options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        }
        return text
    }

    /// Schemes that the design names but this build does not implement yet; they get their own message.
    static let plannedSchemes: Set<String> = ["https", "reverse+https"]

    /// Parses a spec of one of `schemes` (the executable's list: every module's schemes).
    public init(parsing text: String, schemes: [ListenScheme]) throws(ListenSpecError) {
        let supported = schemes.map(\.name).joined(separator: ", ")
        let trimmed = text.trimmingSpaces()
        guard let schemeEnd = trimmed.range(of: "://") else {
            throw ListenSpecError(
                spec: text,
                reason: "expected SCHEME://HOST:PORT[=>TARGET], e.g. http://127.0.0.1:8080 or tcp://127.0.0.1:9000=>10.0.0.5:7000"
            )
        }
        let schemeText = trimmed[..<schemeEnd.lowerBound].lowercased()
        guard let scheme = schemes.first(where: { $0.name == schemeText }) else {
            if schemeText == "transparent" {
                throw ListenSpecError(spec: text, reason: "transparent listeners are tproxy://HOST:PORT (TPROXY) or redirect://HOST:PORT (NAT redirect)")
            }
            if Self.plannedSchemes.contains(schemeText) {
                throw ListenSpecError(spec: text, reason: "scheme '\(schemeText)' is not supported by this build yet (supported: \(supported))")
            }
            throw ListenSpecError(spec: text, reason: "unknown scheme '\(schemeText)' (supported: \(supported))")
        }
        var rest = trimmed[schemeEnd.upperBound...]
        var options: [String: String] = [:]
        if let question = rest.firstIndex(of: "?") {
            let known = scheme.options.keys.sorted().joined(separator: ", ")
            for pair in rest[rest.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ListenSpecError(spec: text, reason: "options are NAME=VALUE joined by '&', got '\(pair)'")
                }
                let name = parts[0].lowercased()
                let value = parts[1].lowercased()
                guard let values = scheme.options[name] else {
                    throw ListenSpecError(
                        spec: text, reason: "unknown option '\(name)' for \(scheme.name) (known: \(known.isEmpty ? "none" : known))"
                    )
                }
                guard values.contains(value) else {
                    throw ListenSpecError(spec: text, reason: "\(name) is one of \(values.sorted().joined(separator: ", ")), not '\(value)'")
                }
                options[name] = value
            }
            rest = rest[..<question]
        }
        let parts = rest.components(separatedBy: "=>")
        guard parts.count <= 2 else { throw ListenSpecError(spec: text, reason: "more than one '=>'") }
        if scheme.target != .none && parts.count < 2 {
            throw ListenSpecError(spec: text, reason: "missing '=>TARGET' (where to forward to)")
        }
        if scheme.isTransparent && parts.count == 2 {
            throw ListenSpecError(spec: text, reason: "a transparent listener takes no '=>TARGET': each connection goes where its client meant to go")
        }
        if scheme.target == .none && parts.count == 2 {
            throw ListenSpecError(spec: text, reason: "an explicit proxy takes no '=>TARGET': clients name the target in each request")
        }
        do throws(ListenSpecError) {
            let listen = try Self.endpoint(parts[0], defaultHost: "127.0.0.1")
            guard parts.count == 2 else {
                self.init(scheme: scheme, listen: listen, target: nil, options: options)
                return
            }
            var targetText = parts[1]
            var usesTLS = false
            if scheme.target == .url {
                if targetText.lowercased().hasPrefix("https://") {
                    usesTLS = true
                    targetText = String(targetText.dropFirst("https://".count))
                } else if targetText.lowercased().hasPrefix("http://") {
                    targetText = String(targetText.dropFirst("http://".count))
                } else {
                    throw ListenSpecError(spec: text, reason: "a reverse proxy's target is http://HOST:PORT or https://HOST:PORT")
                }
                if targetText.hasSuffix("/") { targetText.removeLast() }
            }
            let target = try Self.endpoint(targetText, defaultHost: nil)
            self.init(scheme: scheme, listen: listen, target: target, targetUsesTLS: usesTLS, options: options)
        } catch {
            throw ListenSpecError(spec: text, reason: error.reason)
        }
    }

    /// Parses a target as a spec writes it after `=>`: `host:port` or `[v6]:port` (the control API's proxies).
    public static func target(parsing text: String) throws(ListenSpecError) -> Endpoint {
        try endpoint(text, defaultHost: nil)
    }

    /// Parses `host:port`, `[v6]:port` or (when `defaultHost` is given) `:port`.
    static func endpoint(_ text: String, defaultHost: String?) throws(ListenSpecError) -> Endpoint {
        let which = defaultHost == nil ? "target" : "listen address"
        guard !text.isEmpty else { throw ListenSpecError(spec: text, reason: "empty \(which)") }
        var host: String
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ListenSpecError(spec: text, reason: "unclosed '[' in \(which) '\(text)'")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let afterClose = text[text.index(after: close)...]
            guard afterClose.hasPrefix(":") else {
                throw ListenSpecError(spec: text, reason: "\(which) '\(text)' needs a port after ']'")
            }
            portText = afterClose.dropFirst()
            guard host.contains(":") else {
                throw ListenSpecError(spec: text, reason: "brackets are for IPv6 addresses, got '\(host)'")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ListenSpecError(spec: text, reason: "\(which) '\(text)' needs a port (HOST:PORT)")
            }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw ListenSpecError(spec: text, reason: "write IPv6 addresses in brackets, e.g. [::1]:9000")
            }
        }
        if host.isEmpty {
            guard let defaultHost else { throw ListenSpecError(spec: text, reason: "\(which) '\(text)' needs a host") }
            host = defaultHost
        }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" || $0 == "%" }) else {
            throw ListenSpecError(spec: text, reason: "'\(host)' is not a host name or address")
        }
        guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCII) else {
            throw ListenSpecError(spec: text, reason: "'\(portText)' is not a port (1-65535) in \(which) '\(text)'")
        }
        return Endpoint(host: host, port: port)
    }
}

public struct ListenSpecError: Error, CustomStringConvertible, Equatable {
    public var spec: String
    public var reason: String

    public var description: String { "bad listen spec '\(spec)': \(reason)" }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
