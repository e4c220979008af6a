/// A kind of listener, as the protocol module that serves it declares it: the scheme's name in a listen spec and
/// what it forwards to. Core knows only its own (`tcp`); every module brings its schemes, and the executable hands
/// the parsers the list of all of them, so adding a protocol edits no list in Core.
public struct ListenScheme: Hashable, Sendable, CustomStringConvertible {
    /// What follows `=>` in a spec of this scheme.
    public enum TargetForm: Sendable {
        /// Nothing: clients name the target (an explicit proxy).
        case none
        /// `HOST:PORT` or `[v6]:PORT`.
        case endpoint
        /// `http://HOST:PORT` or `https://HOST:PORT` (a reverse proxy's backend).
        case url
    }

    /// The scheme as written, lower case: `tcp`, `reverse+http`.
    public let name: String
    public let target: TargetForm
    /// The options a spec of this scheme may carry after `?`, each with its values
    /// (`postgres://…=>db:5432?tls=intercept`).
    public let options: [String: Set<String>]

    public init(name: String, target: TargetForm, options: [String: Set<String>] = [:]) {
        self.name = name
        self.target = target
        self.options = options
    }

    public var description: String { name }

    /// Schemes are one per name.
    public static func == (lhs: ListenScheme, rhs: ListenScheme) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// Fixed-target raw TCP forwarding.
    public static let tcp = ListenScheme(name: "tcp", target: .endpoint)
}
