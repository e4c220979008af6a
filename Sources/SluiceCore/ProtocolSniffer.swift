import NIOCore

/// Chooses the protocol of a transparent connection from its original destination's port and the client's first
/// bytes, as mitmproxy's `next_layer` does: a pure function of what has arrived, asked again after each read.
///
/// The order of asking: protocols that usually run on the port first, then the rest, each in the order the modules
/// declared them. The first to say `match` wins, but only once every protocol before it has said `noMatch`: a
/// protocol asked earlier that still needs bytes is waited for. When nobody matches, the connection is relayed as
/// bytes (`tcp`).
///
/// Bounded: at most `maxBytes` bytes are looked at, and the caller decides with what it has (`final`) once that many
/// arrived, the client closed its side, or `transparent.sniff_timeout` passed.
public struct ProtocolSniffer: Sendable {
    public enum Verdict: Equatable, Sendable {
        /// Read on: some protocol cannot tell yet.
        case needMoreData
        /// Hand the connection to this protocol.
        case protocolNamed(String)
        /// Nobody recognises it: relay it as bytes.
        case tcp
    }

    /// The most bytes a connection may make Sluice hold before its protocol is chosen. Every opening the modules
    /// recognise fits in far less (`SSH-2.0-`, a PostgreSQL startup packet's 8-byte head, a request line's method, a
    /// TLS record header); a ClientHello that is needed whole (for its ALPN, off the usual ports) is about 2 KiB
    /// even with post-quantum key shares.
    public static let maxBytes = 16 * 1024

    public let protocols: [TransparentProtocol]

    public init(protocols: [TransparentProtocol]) {
        self.protocols = protocols
    }

    /// The protocol chosen before any byte arrives: a server-first protocol on one of its ports (its client waits for
    /// the server's greeting, so there is nothing to sniff). Nil: wait for the client's first bytes.
    public func choiceBeforeBytes(port: Int) -> String? {
        for candidate in protocols {
            if case .serverFirst = candidate.opening, candidate.ports.contains(port) { return candidate.name }
        }
        return nil
    }

    /// What the bytes so far say.
    /// - Parameters:
    ///   - bytes: everything the client sent so far (only the first `maxBytes` are looked at).
    ///   - port: the original destination's port.
    ///   - final: no more bytes will be waited for (the client closed its side, the time is up, or `maxBytes`
    ///     arrived): a protocol that still needs more counts as no match.
    public func decide(_ bytes: ByteBufferView, port: Int, final: Bool) -> Verdict {
        if bytes.isEmpty && !final { return .needMoreData }
        let seen = bytes.prefix(Self.maxBytes)
        let limited = final || bytes.count >= Self.maxBytes
        for candidate in ordered(port: port) {
            guard case .clientFirst(let sniff) = candidate.opening else { continue }
            switch seen.isEmpty ? .noMatch : sniff(seen, port) {
            case .match: return .protocolNamed(candidate.name)
            case .needMoreData where !limited: return .needMoreData
            case .noMatch, .needMoreData: continue
            }
        }
        return .tcp
    }

    /// The protocols that usually run on `port` first, then the others; each group in declaration order.
    func ordered(port: Int) -> [TransparentProtocol] {
        protocols.filter { $0.ports.contains(port) } + protocols.filter { !$0.ports.contains(port) }
    }
}
