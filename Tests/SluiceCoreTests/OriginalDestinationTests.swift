import Foundation
import NIOCore
import SluiceModel
import Testing

@testable import SluiceCore

@Suite struct OriginalDestinationTests {
    @Test func addressBytesBecomeEndpoints() {
        #expect(OriginalDestination.endpoint(addressBytes: [10, 250, 2, 2], port: 22) == Endpoint(host: "10.250.2.2", port: 22))
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 7]
        #expect(OriginalDestination.endpoint(addressBytes: mapped, port: 5432) == Endpoint(host: "192.168.1.7", port: 5432))
        let v6: [UInt8] = [0xfd, 0x5c, 0, 2] + [UInt8](repeating: 0, count: 11) + [2]
        #expect(OriginalDestination.endpoint(addressBytes: v6, port: 80) == Endpoint(host: "fd5c:2::2", port: 80))
        #expect(OriginalDestination.endpoint(addressBytes: [UInt8](repeating: 0, count: 15) + [1], port: 1) == Endpoint(host: "::1", port: 1))
    }

    @Test func unusableAddressesAreNone() {
        #expect(OriginalDestination.endpoint(addressBytes: [10, 0, 0, 1], port: 0) == nil)
        #expect(OriginalDestination.endpoint(addressBytes: [10, 0, 0, 1], port: 65536) == nil)
        #expect(OriginalDestination.endpoint(addressBytes: [10, 0, 1], port: 22) == nil)
        #expect(OriginalDestination.endpoint(addressBytes: [], port: 22) == nil)
        #expect(OriginalDestination.endpoint(addressBytes: [UInt8](repeating: 1, count: 17), port: 22) == nil)
    }

    /// What `getsockopt(SO_ORIGINAL_DST)` fills in: network byte order, as the kernel writes it.
    @Test func socketAddressesFromConntrack() {
        var v4 = sockaddr_in()
        v4.sin_family = sa_family_t(AF_INET)
        v4.sin_port = in_port_t(5432).bigEndian
        withUnsafeMutableBytes(of: &v4.sin_addr) { $0.copyBytes(from: [10, 250, 2, 2] as [UInt8]) }
        #expect(OriginalDestination.endpoint(v4) == Endpoint(host: "10.250.2.2", port: 5432))
        v4.sin_family = sa_family_t(AF_INET6)
        #expect(OriginalDestination.endpoint(v4) == nil)

        var v6 = sockaddr_in6()
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = in_port_t(443).bigEndian
        withUnsafeMutableBytes(of: &v6.sin6_addr) { $0.copyBytes(from: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [9]) }
        #expect(OriginalDestination.endpoint(v6) == Endpoint(host: "2001:db8::9", port: 443))
        // A zeroed answer (nothing in conntrack for it) is no destination.
        #expect(OriginalDestination.endpoint(sockaddr_in6()) == nil)
        #expect(OriginalDestination.endpoint(sockaddr_in()) == nil)
    }

    @Test func socketAddressesOfNIO() throws {
        #expect(OriginalDestination.endpoint(try SocketAddress(ipAddress: "10.0.0.1", port: 80)) == Endpoint(host: "10.0.0.1", port: 80))
        #expect(OriginalDestination.endpoint(try SocketAddress(ipAddress: "::ffff:10.0.0.1", port: 80)) == Endpoint(host: "10.0.0.1", port: 80))
        #expect(OriginalDestination.endpoint(try SocketAddress(ipAddress: "fd00::1", port: 80)) == Endpoint(host: "fd00::1", port: 80))
    }

    @Test func theTransparentOptionFollowsTheListenersFamily() {
        let v4 = OriginalDestination.transparentOption(forListenHost: "0.0.0.0")
        #expect(v4.level == SocketOptionLevel(IPPROTO_IP) && v4.name == 19)
        let v6 = OriginalDestination.transparentOption(forListenHost: "::")
        #expect(v6.level == SocketOptionLevel(IPPROTO_IPV6) && v6.name == 75)
    }

    @Test func ownListenersAreFoundByTheirAddressOrAnyLocalOne() throws {
        let own = OwnListeners()
        own.add(try SocketAddress(ipAddress: "127.0.0.1", port: 8023), id: 1)
        own.add(try SocketAddress(ipAddress: "::", port: 8022), id: 2)
        own.add(try SocketAddress(ipAddress: "10.9.9.9", port: 8024), id: 3)
        #expect(own.contains(Endpoint(host: "127.0.0.1", port: 8023)))
        #expect(own.contains(Endpoint(host: "::ffff:127.0.0.1", port: 8023)))
        #expect(!own.contains(Endpoint(host: "10.250.2.2", port: 8023)))
        // Listening on every address: any address of this host (loopback always is) on that port.
        #expect(own.contains(Endpoint(host: "127.0.0.5", port: 8022)))
        #expect(own.contains(Endpoint(host: "::1", port: 8022)))
        #expect(!own.contains(Endpoint(host: "192.0.2.1", port: 8022)))
        #expect(own.contains(Endpoint(host: "10.9.9.9", port: 8024)))
        #expect(!own.contains(Endpoint(host: "10.9.9.9", port: 22)))
        #expect(!own.contains(Endpoint(host: "not-an-address", port: 8022)))
        own.remove(id: 2)
        #expect(!own.contains(Endpoint(host: "127.0.0.5", port: 8022)))
        own.removeAll()
        #expect(!own.contains(Endpoint(host: "127.0.0.1", port: 8023)))
    }

    @Test func theHostsOwnAddressesIncludeLoopback() {
        #expect(LocalAddresses.current().contains([127, 0, 0, 1]))
        #expect(LocalAddresses.contains([127, 1, 2, 3]))
        #expect(!LocalAddresses.contains([192, 0, 2, 1]))
    }
}
