import NIOCore

/// What a protocol makes of a transparent connection's first bytes, so far.
public enum SniffResult: Sendable, Equatable {
    /// These bytes open this protocol.
    case match
    /// These bytes open something else.
    case noMatch
    /// Too few bytes to say: every byte so far fits.
    case needMoreData
}

/// A protocol a module serves behind transparent listeners (`tproxy://`, `redirect://`), as the module declares it:
/// how its connections are recognised, and the listen scheme they are handed to, as if they had arrived on a listener
/// of that scheme whose target is the connection's original destination.
///
/// Core knows no protocol: each module brings its own (`ProtocolModule.transparentProtocols`), and a target's
/// `protocol:` in sluice.yaml names one by its scheme's name (`ssh`, `postgres`, `http`...).
public struct TransparentProtocol: Sendable, CustomStringConvertible {
    /// How a connection of this protocol opens.
    public enum Opening: Sendable {
        /// The client speaks first; the function says what its first bytes are, given the original destination's
        /// port. It must be pure and cheap: it runs on each read until it is sure, over at most
        /// `ProtocolSniffer.maxBytes` bytes.
        case clientFirst(@Sendable (_ bytes: ByteBufferView, _ port: Int) -> SniffResult)
        /// The server speaks first (MySQL's greeting): its client sends nothing until then, so it is chosen by its
        /// port alone, at once.
        case serverFirst
    }

    /// The scheme the connection is handed over as; its name is the protocol's name in the targets table.
    public let scheme: ListenScheme
    /// The ports this protocol usually runs on: a client-first protocol's sniffer is asked first there, a
    /// server-first one is chosen there.
    public let ports: Set<Int>
    public let opening: Opening

    public init(scheme: ListenScheme, ports: Set<Int>, opening: Opening) {
        self.scheme = scheme
        self.ports = ports
        self.opening = opening
    }

    public var name: String { scheme.name }
    public var description: String { name }

    /// The name of the fallback: relayed as bytes and recorded as a `tcp` flow.
    public static let tcpName = "tcp"
    /// A target's `protocol:` that lets the port and the first bytes decide.
    public static let autoName = "auto"
}

extension ListenScheme {
    /// A TPROXY listener: an `IP_TRANSPARENT` socket, where each accepted connection's local address is where the
    /// client meant to go.
    public static let tproxy = ListenScheme(name: "tproxy", target: .none)
    /// A listener behind a NAT redirect: each connection's original destination is read from conntrack
    /// (`SO_ORIGINAL_DST`).
    public static let redirect = ListenScheme(name: "redirect", target: .none)

    /// Whether this scheme's listeners are transparent: they learn each connection's target from the connection.
    public var isTransparent: Bool { self == .tproxy || self == .redirect }
}
