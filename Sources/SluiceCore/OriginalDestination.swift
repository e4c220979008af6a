import Foundation
import NIOCore
import NIOPosix
import SluiceModel

/// Where a transparently intercepted client meant to go (PROTOCOLS.md §7).
///
/// - TPROXY: nothing was rewritten, so the accepted socket's local address is the original destination.
/// - NAT redirect: the destination was rewritten to Sluice's listener; conntrack remembers the original, which
///   `getsockopt(SOL_IP, SO_ORIGINAL_DST)` reads as a `sockaddr_in` (IPv6: `SOL_IPV6, IP6T_SO_ORIGINAL_DST`, a
///   `sockaddr_in6`). An IPv4 client on a dual-stack listener is IPv4 to conntrack: it is asked at `SOL_IP`.
enum OriginalDestination {
    /// `SO_ORIGINAL_DST` (linux/netfilter_ipv4.h) and `IP6T_SO_ORIGINAL_DST` (linux/netfilter_ipv6/ip6_tables.h).
    static let soOriginalDst: SocketOptionName = 80
    static let solIP = SocketOptionLevel(IPPROTO_IP)
    static let solIPv6 = SocketOptionLevel(IPPROTO_IPV6)
    /// `IP_TRANSPARENT` and `IPV6_TRANSPARENT` (linux/in.h, linux/in6.h): let a socket accept connections addressed to
    /// any address. Set before bind; needs `CAP_NET_ADMIN`.
    static let ipTransparent: SocketOptionName = 19
    static let ipv6Transparent: SocketOptionName = 75

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the accepted `channel`'s original destination, on its event loop. IPv4-mapped addresses come back as IPv4.
    @Sendable static func read(from channel: Channel, scheme: ListenScheme) -> EventLoopFuture<Endpoint> {
        let eventLoop = channel.eventLoop
        if scheme == .tproxy {
            guard let local = channel.localAddress, let endpoint = endpoint(local) else {
                return eventLoop.makeFailedFuture(Failure(description: "the connection has no local address"))
            }
            return eventLoop.makeSucceededFuture(endpoint)
        }
        guard let provider = channel as? SocketOptionProvider else {
            return eventLoop.makeFailedFuture(Failure(description: "the connection is not a socket"))
        }
        let clientBytes = channel.remoteAddress?.ipAddress.flatMap(CIDR.addressBytes) ?? []
        let isIPv4 = clientBytes.count == 4 || (clientBytes.count == 16 && clientBytes.starts(with: ipv4MappedPrefix))
        let read: EventLoopFuture<Endpoint?> =
            isIPv4
            ? provider.unsafeGetSocketOption(level: solIP, name: soOriginalDst).map { (address: sockaddr_in) in endpoint(address) }
            : provider.unsafeGetSocketOption(level: solIPv6, name: soOriginalDst).map { (address: sockaddr_in6) in endpoint(address) }
        return read.flatMapError { error in
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)).lowercased() } ?? describe(error)
            return eventLoop.makeFailedFuture(Failure(description: "no original destination from conntrack (not redirected here?): \(reason)"))
        }.flatMapThrowing { found in
            guard let found else { throw Failure(description: "conntrack gave no usable original destination") }
            return found
        }
    }

    static func endpoint(_ address: sockaddr_in) -> Endpoint? {
        guard address.sin_family == sa_family_t(AF_INET) else { return nil }
        let bytes = withUnsafeBytes(of: address.sin_addr) { Array($0) }
        return endpoint(addressBytes: bytes, port: Int(UInt16(bigEndian: address.sin_port)))
    }

    static func endpoint(_ address: sockaddr_in6) -> Endpoint? {
        guard address.sin6_family == sa_family_t(AF_INET6) else { return nil }
        let bytes = withUnsafeBytes(of: address.sin6_addr) { Array($0) }
        return endpoint(addressBytes: bytes, port: Int(UInt16(bigEndian: address.sin6_port)))
    }

    static func endpoint(_ address: SocketAddress) -> Endpoint? {
        guard let host = address.ipAddress, let port = address.port, let bytes = CIDR.addressBytes(host) else { return nil }
        return endpoint(addressBytes: bytes, port: port)
    }

    /// An address (4 or 16 bytes) and port as an endpoint; `::ffff:a.b.c.d` becomes `a.b.c.d`. Nil for port 0 or
    /// another length.
    static func endpoint(addressBytes bytes: [UInt8], port: Int) -> Endpoint? {
        guard (1...65535).contains(port) else { return nil }
        switch bytes.count {
        case 4:
            return Endpoint(host: bytes.map(String.init).joined(separator: "."), port: port)
        case 16 where bytes[0..<12].elementsEqual(ipv4MappedPrefix):
            return Endpoint(host: bytes[12...].map(String.init).joined(separator: "."), port: port)
        case 16:
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return nil }
            return Endpoint(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: port)
        default:
            return nil
        }
    }

    static let ipv4MappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

    /// The socket option that makes a listener on `host` transparent: IPv4's or IPv6's, by the address's family.
    static func transparentOption(forListenHost host: String) -> ChannelOptions.Types.SocketOption {
        host.contains(":")
            ? ChannelOptions.Types.SocketOption(level: solIPv6, name: ipv6Transparent)
            : ChannelOptions.Types.SocketOption(level: solIP, name: ipTransparent)
    }
}

/// The addresses of this host's interfaces (in its network namespace), to tell a connection meant for one of Sluice's
/// own listeners.
enum LocalAddresses {
    static func contains(_ address: [UInt8]) -> Bool {
        if address.count == 4, address[0] == 127 { return true }
        if address == [UInt8](repeating: 0, count: 15) + [1] { return true }
        return current().contains(address)
    }

    /// Every address of every interface now, 4 or 16 bytes each.
    static func current() -> [[UInt8]] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [[UInt8]] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            if let address = entry.pointee.ifa_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        addresses.append(withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) })
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        addresses.append(withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) })
                    }
                default:
                    break
                }
            }
            cursor = entry.pointee.ifa_next
        }
        return addresses
    }
}
