import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import SluiceCore
import SluiceModel
import SluiceStore
import Testing

@testable import SluiceAPI

/// Sessions and their proxies over a real engine and a real store: ports bound to learn they are free, a port in
/// use skipped, a range run out, requests racing for ports, a session's end stopping its proxies.
@Suite(.serialized) struct SessionProxiesTests {
    /// An engine (TCP only), a store, and the registry over them, in a fresh data directory.
    private final class Fixture: Sendable {
        let engine = Engine(
            configuration: Configuration(), bus: FlowBus(subscribers: []), firstFlowID: FlowID(1), logger: Logger(label: "test"), threads: 1
        )
        let directory = DataDirectory(path: NSTemporaryDirectory() + "sluice-api-sessions-\(UUID().uuidString)")
        let writer: StoreWriter
        let store: Store
        let sessions: SessionProxies

        init(ports: PortRange) throws {
            writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
            store = try Store(directory: directory)
            sessions = SessionProxies(
                engine: engine, recording: writer, store: store, settings: SessionProxies.Settings(host: "127.0.0.1", ports: ports, maxAttempts: 16)
            )
        }

        func close() {
            engine.shutdown()
            writer.close()
            try? FileManager.default.removeItem(atPath: directory.path)
        }
    }

    /// `count` consecutive ports nothing listens on now, from a spot of the ephemeral-free range chosen at random.
    private func freeRange(_ count: Int) throws -> PortRange {
        for _ in 0..<200 {
            let lower = Int.random(in: 30000...32000)
            if (lower..<lower + count).allSatisfy({ Self.canBind($0) }) { return PortRange(lower, lower + count - 1) }
        }
        throw APIError("no \(count) free consecutive ports found")
    }

    private static func canBind(_ port: Int) -> Bool {
        guard let socket = try? Occupied(port) else { return false }
        socket.close()
        return true
    }

    /// A port held by something else: a listening socket of this process.
    private final class Occupied {
        private var descriptor: Int32

        init(_ port: Int) throws {
            descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(descriptor, 1) == 0 else {
                Glibc.close(descriptor)
                throw APIError("port \(port) is taken")
            }
        }

        func close() {
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
    }

    private let target = Endpoint(host: "127.0.0.1", port: 9)

    @Test func aProxySkipsAPortInUseAndItsListenerNamesTheSession() throws {
        let range = try freeRange(3)
        let fixture = try Fixture(ports: range)
        defer { fixture.close() }
        let occupied = try Occupied(range.lower)
        defer { occupied.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        let proxy = try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        #expect(proxy.port == range.lower + 1)
        #expect((proxy.host, proxy.proxyProtocol, proxy.target, proxy.session) == ("127.0.0.1", .tcp, target, session.id))
        let listener = try #require(fixture.engine.listeners.first { $0.id == proxy.id })
        #expect(listener.session == session.id)
        #expect(listener.spec.description == "tcp://127.0.0.1:\(range.lower + 1)=>127.0.0.1:9")
        #expect(fixture.sessions.proxies(of: session.id) == [proxy])
    }

    @Test func aRangeRunOutIs503UntilAProxyIsClosed() throws {
        let range = try freeRange(2)
        let fixture = try Fixture(ports: range)
        defer { fixture.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        let first = try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        _ = try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        #expect {
            try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        } throws: { error in
            let failure = error as? APIFailure
            return failure?.status == 503 && failure?.message.contains("no free port in api.proxy_ports \(range)") == true
        }
        #expect(try fixture.sessions.closeProxy(first.id, of: session.id) == first)
        #expect(throws: APIFailure(404, "session \(session.id) has no proxy \(first.id)")) {
            try fixture.sessions.closeProxy(first.id, of: session.id)
        }
        #expect(try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target).port == first.port)
    }

    @Test func aRangeWhosePortsAreAllInUseElsewhereIs503AfterBoundedAttempts() throws {
        let range = try freeRange(2)
        let fixture = try Fixture(ports: range)
        defer { fixture.close() }
        let held = try [Occupied(range.lower), Occupied(range.upper)]
        defer { held.forEach { $0.close() } }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        #expect {
            try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        } throws: { error in
            let failure = error as? APIFailure
            return failure?.status == 503 && failure?.message.contains("in use") == true
        }
        #expect(fixture.engine.listeners.isEmpty)
    }

    @Test func concurrentRequestsNeverRaceForOnePort() throws {
        let range = try freeRange(8)
        let fixture = try Fixture(ports: range)
        defer { fixture.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        let results = NIOLockedValueBox<[Result<SessionProxy, APIFailure>]>([])
        DispatchQueue.concurrentPerform(iterations: 10) { _ in
            let result: Result<SessionProxy, APIFailure>
            do throws(APIFailure) {
                result = .success(try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target))
            } catch {
                result = .failure(error)
            }
            results.withLockedValue { $0.append(result) }
        }
        let opened = results.withLockedValue { $0 }.compactMap { try? $0.get() }
        let refused = results.withLockedValue { $0 }.compactMap { result -> APIFailure? in
            if case .failure(let failure) = result { return failure }
            return nil
        }
        #expect(opened.count == 8)
        #expect(Set(opened.map(\.port)) == Set(range.lower...range.upper))
        #expect(refused.map(\.status) == [503, 503])
        #expect(fixture.engine.listeners.count == 8)
    }

    @Test func endingASessionStopsItsProxiesAndAnEndedOneTakesNoMore() throws {
        let range = try freeRange(3)
        let fixture = try Fixture(ports: range)
        defer { fixture.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        let other = try fixture.sessions.open(user: "bob", resource: "web")
        for _ in 0..<2 { _ = try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target) }
        let kept = try fixture.sessions.openProxy(for: other.id, speaking: .tcp, to: target)
        let (ended, stopped) = try fixture.sessions.end(session.id)
        #expect(ended.state == .ended && stopped.count == 2)
        #expect(fixture.engine.listeners.map(\.id) == [kept.id])
        #expect(throws: APIFailure(409, "session 1 is ended: open a new session for new proxies")) {
            try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        }
        #expect(throws: APIFailure.self) { try fixture.sessions.end(session.id) }
        #expect(throws: APIFailure(404, "no open session 99")) { try fixture.sessions.end(SessionID(99)) }
        #expect(try fixture.store.session(session.id)?.state == .ended)
        // Its ports are free again for the others.
        #expect(try fixture.sessions.openProxy(for: other.id, speaking: .tcp, to: target).port != kept.port)
    }

    @Test func aProtocolThisSluiceDoesNotServeIs400NamingTheField() throws {
        let fixture = try Fixture(ports: try freeRange(1))
        defer { fixture.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        #expect {
            try fixture.sessions.openProxy(for: session.id, speaking: .ssh, to: target)
        } throws: { error in
            let failure = error as? APIFailure
            return failure?.status == 400 && failure?.message == "field 'protocol': this sluice serves no ssh proxies (it serves: tcp)"
        }
    }

    @Test func aListenerStoppedThroughTheListenersRouteLeavesTheSession() throws {
        let range = try freeRange(1)
        let fixture = try Fixture(ports: range)
        defer { fixture.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        let proxy = try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
        let router = APIRouter(
            routes: APIResources(engine: fixture.engine, store: fixture.store, progress: nil, schemes: [.tcp], sessions: fixture.sessions).routes
        )
        _ = try router.answer(APIRequest(method: "DELETE", target: "/api/listeners/\(proxy.id)"))
        #expect(fixture.sessions.proxies(of: session.id) == [])
        #expect(try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target).port == range.lower)
    }

    /// A thousand proxies opened and closed leave no listener and no descriptor behind (the end-to-end test does the
    /// same through HTTP and measures memory too).
    @Test func aThousandProxiesLeaveNothingBehind() throws {
        let fixture = try Fixture(ports: try freeRange(16))
        defer { fixture.close() }
        let session = try fixture.sessions.open(user: "alice", resource: "db")
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0 }
        let before = descriptors()
        for _ in 0..<1000 {
            let proxy = try fixture.sessions.openProxy(for: session.id, speaking: .tcp, to: target)
            _ = try fixture.sessions.closeProxy(proxy.id, of: session.id)
        }
        // Tests beside this one open descriptors of their own (a few hundred at times); a leak here would be one or
        // two thousand (each listener's socket and its spare descriptor).
        #expect(descriptors() <= before + 500)
        #expect(fixture.engine.listeners.isEmpty)
        #expect(fixture.sessions.proxies(of: session.id) == [])
    }
}
