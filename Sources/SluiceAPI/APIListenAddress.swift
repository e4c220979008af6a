import SluiceModel

/// Where the control API listens: `127.0.0.1:PORT` (`[::1]:PORT`) or `unix:PATH` (`api.listen`, `--api`).
public enum APIListenAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(Endpoint)
    case unix(path: String)

    /// - Throws: one line saying what is wrong with `text`.
    public init(parsing text: String) throws(APIError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw APIError("api.listen: unix: needs a socket path, e.g. unix:/run/sluice/api.sock") }
            self = .unix(path: path)
            return
        }
        var address = text.hasPrefix(":") ? "127.0.0.1" + text : text
        if address.hasPrefix("http://") { address.removeFirst(7) }
        let endpoint = Endpoint(parsing: address)
        guard !endpoint.host.isEmpty, (0...65535).contains(endpoint.port), address.contains(":") else {
            throw APIError("api.listen: expected HOST:PORT (127.0.0.1:8081) or unix:PATH, got '\(text)'")
        }
        self = .tcp(endpoint)
    }

    public var description: String {
        switch self {
        case .tcp(let endpoint): return "http://\(endpoint)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// Why the control API cannot start or cannot answer, in one line.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
