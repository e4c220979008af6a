import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceCore
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceHTTP

/// The HTTP proxy in process over loopback: raw client -> Sluice's engine with the HTTP module -> origin server.
@Suite(.ownThread) struct HTTPProxyTests {
    @Test func aChunkedRequestSentOneByteAtATimeArrivesWhole() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await HTTPTestServer(group: group)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }

        let request = Array(
            ("POST http://127.0.0.1:\(origin.port)/upload?x=1 HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n").utf8
        )
        let reply = try await send(request.map { [$0] }, to: proxy.port, group: group)

        #expect(reply.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(reply.hasSuffix("POST /upload?x=1 hello, world"))
        #expect(origin.requests.first?.headers["host"] == "127.0.0.1:\(origin.port)")
        try await waitFor { !events.closes.isEmpty }
        let requestEvent = try #require(events.requests.first)
        #expect(requestEvent.url == "http://127.0.0.1:\(origin.port)/upload?x=1")
        #expect(requestEvent.method == "POST")
        let up = events.messages.filter { $0.direction == .up }.map { String(decoding: $0.payload, as: UTF8.self) }.joined()
        #expect(up == "hello, world")
        #expect(events.messages.allSatisfy { $0.kind == .body })
        #expect(events.closes.first?.state == .closed)
        try await origin.close()
        try await group.shutdownGracefully()
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", "400 Bad Request"),
        ("GET /relative HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"),
        ("GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-Long: \(String(repeating: "a", count: 1000))\r\n", count: 70) + "\r\n",
         "431 Request Header Fields Too Large"),
        ("POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n", "400 Bad Request"),
        ("GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400 Bad Request"),
    ])
    func malformedRequestsGetTheFittingAnswerAndAFlowWithTheError(_ request: String, _ status: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }

        let reply = try await send([Array(request.utf8)], to: proxy.port, group: group)
        #expect(reply.hasPrefix("HTTP/1.1 \(status)\r\n"), "\(reply.prefix(200))")
        #expect(reply.contains("Sluice: "))
        try await waitFor { !events.closes.isEmpty }
        #expect(events.errors.first?.phase == .client)
        #expect(events.closes.first?.state == .error)
        try await group.shutdownGracefully()
    }

    /// Randomly damaged requests, each on its own connection: every one gets an HTTP answer or a close, never a
    /// crash, and the proxy still serves a good request afterwards.
    @Test func randomizedMalformedRequestsNeverBreakTheProxy() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await HTTPTestServer(group: group)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }

        let valid = Array(
            ("POST http://127.0.0.1:\(origin.port)/p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").utf8
        )
        var random = SplitMix64(seed: 0x5EED)
        for _ in 0..<150 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
                }
            }
            // A request cut short simply waits for more: send it with a half-close so every case ends.
            let reply = try await sendAndHalfClose(bytes, to: proxy.port, group: group)
            #expect(reply.isEmpty || reply.hasPrefix("HTTP/1.1 "), "\(reply.prefix(100))")
        }
        let good = try await send([valid], to: proxy.port, group: group)
        #expect(good.hasSuffix("POST /p abc"))
        try await origin.close()
        try await group.shutdownGracefully()
    }

    private func sendAndHalfClose(_ bytes: [UInt8], to port: Int, group: EventLoopGroup) async throws -> String {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
            outbound.finish()
            var received = ""
            do {
                for try await buffer in inbound { received += String(buffer: buffer) }
            } catch {
                // A reset after the answer is fine: the proxy closed a connection it could no longer frame.
            }
            return received
        }
    }

    /// The store never drops a record: while it is behind, the proxy reads no requests (it slows clients instead of
    /// growing memory), and carries on once the backlog drains.
    @Test func aStoreThatFallsBehindPausesReadingUntilItDrains() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await HTTPTestServer(group: group)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }
        events.setBackedUp(true)
        let request = "GET http://127.0.0.1:\(origin.port)/paused HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        let reply = Task { try await send([Array(request.utf8)], to: proxy.port, group: group) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(origin.requests.isEmpty, "nothing is read while the store is behind")
        events.setBackedUp(false)
        let text = try await reply.value
        #expect(text.hasSuffix("GET /paused "))
        #expect(origin.requests.count == 1)
        try await origin.close()
        try await group.shutdownGracefully()
    }

    /// A server may answer before the body (a refused upload), and the client may then leave without sending it:
    /// the connection closes after the answer, and the body that never came is not taken for a broken request.
    @Test func aBodyLeftUnsentAfterAnEarlyAnswerIsNotAnotherRequest() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await HTTPTestServer(group: group)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }
        let head = "POST http://127.0.0.1:\(origin.port)/early HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
        let reply = try await send([Array(head.utf8)], to: proxy.port, group: group)
        #expect(reply.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
        try await waitFor { !events.closes.isEmpty }
        try await Task.sleep(for: .milliseconds(100))
        #expect(events.opens.count == 1)
        #expect(events.errors.isEmpty, "\(events.errors)")
        try await origin.close()
        try await group.shutdownGracefully()
    }

    @Test func deadServerGets502AndAConnectError() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }
        let reply = try await send([Array("GET http://127.0.0.1:1/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".utf8)], to: proxy.port, group: group)
        #expect(reply.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        #expect(reply.contains("Sluice: cannot connect to 127.0.0.1:1"))
        try await waitFor { !events.closes.isEmpty }
        #expect(events.errors.first?.phase == .connect)
        let response = events.responses.first
        #expect(response?.synthetic == true)
        #expect(response?.status == 502)
        try await group.shutdownGracefully()
    }

    @Test func aConnectToADeadServerIsAnHTTPFlowWithItsRequestAnd502() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }
        let connect = "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: test\r\n\r\n"
        let reply = try await send([Array(connect.utf8)], to: proxy.port, group: group)
        #expect(reply.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        #expect(reply.contains("Sluice: cannot connect to 127.0.0.1:1"))
        try await waitFor { !events.closes.isEmpty }
        #expect(events.opens.map(\.kind) == [.http])
        let request = events.requests.first
        #expect(request?.method == "CONNECT")
        #expect(request?.url == "127.0.0.1:1")
        #expect(request?.headers.contains { $0.name == "User-Agent" && $0.value == "test" } == true)
        #expect(events.errors.first?.phase == .connect)
        let response = events.responses.first
        #expect(response?.status == 502)
        try await group.shutdownGracefully()
    }

    @Test func keepAliveReusesTheServerConnectionAndPipelinedRequestsAreAnsweredInOrder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await HTTPTestServer(group: group)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events)
        defer { proxy.engine.shutdown() }
        let base = "http://127.0.0.1:\(origin.port)"
        let pipelined = "GET \(base)/one HTTP/1.1\r\nHost: a\r\n\r\nGET \(base)/two HTTP/1.1\r\nHost: a\r\n\r\n"
            + "GET \(base)/three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        let reply = try await send([Array(pipelined.utf8)], to: proxy.port, group: group)
        let one = try #require(reply.range(of: "GET /one"))
        let two = try #require(reply.range(of: "GET /two"))
        let three = try #require(reply.range(of: "GET /three"))
        #expect(one.lowerBound < two.lowerBound && two.lowerBound < three.lowerBound)
        try await waitFor { events.closes.count == 3 }
        #expect(events.opens.count == 3)
        let connects = events.responses.compactMap(\.timings.connect)
        #expect(connects.count == 1, "one server connection for three requests")
        try await origin.close()
        try await group.shutdownGracefully()
    }

    /// Six client connections one after another, one request each, through an engine with one event loop.
    private func sequentialClients(access: AccessRules, credentials: String?) async throws -> (origin: Int, events: EventCollector) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let origin = try await HTTPTestServer(group: group)
        let events = EventCollector()
        let proxy = try TestProxy.start(events: events, access: access, threads: 1)
        defer { proxy.engine.shutdown() }
        let authorization = credentials.map { "Proxy-Authorization: Basic \(Data($0.utf8).base64EncodedString())\r\n" } ?? ""
        for index in 0..<6 {
            let request = "GET http://127.0.0.1:\(origin.port)/\(index) HTTP/1.1\r\nHost: a\r\n\(authorization)Connection: close\r\n\r\n"
            let reply = try await send([Array(request.utf8)], to: proxy.port, group: group)
            #expect(reply.hasPrefix("HTTP/1.1 200"), "\(reply.prefix(60))")
        }
        try await waitFor { events.closes.count == 6 }
        let connections = origin.connectionCount
        try await origin.close()
        try await group.shutdownGracefully()
        return (connections, events)
    }

    @Test func aServerConnectionALeavingClientLeftServesTheNextClient() async throws {
        let (connections, events) = try await sequentialClients(access: AccessRules(), credentials: nil)
        #expect(connections == 1, "one server connection for six clients")
        let connects = events.responses.compactMap(\.timings.connect)
        #expect(connects.count == 1, "only the first exchange connected")
    }

    @Test func withProxyUsersEachClientConnectionKeepsItsOwnServerConnections() async throws {
        var access = AccessRules()
        access.users = ["alice:wonder"]
        let (connections, _) = try await sequentialClients(access: access, credentials: "alice:wonder")
        #expect(connections == 6)
    }

    @Test func connectionBoundAuthenticationIsRecognized() {
        var request = HTTPHeaders()
        var response = HTTPHeaders()
        #expect(!HeaderScan(response).authenticateIsConnectionBound)
        response.add(name: "WWW-Authenticate", value: "Basic realm=\"x\"")
        #expect(!HeaderScan(response).authenticateIsConnectionBound)
        response.add(name: "WWW-Authenticate", value: "NTLM")
        #expect(HeaderScan(response).authenticateIsConnectionBound)
        #expect(!HeaderScan(response).authorizationIsConnectionBound, "a challenge is not credentials")
        request.add(name: "Authorization", value: "Negotiate YIIGhgYGKwYBBQUC")
        #expect(HeaderScan(request).authorizationIsConnectionBound)
        #expect(!HeaderScan(["Authorization": "Bearer ntlm"]).authorizationIsConnectionBound)
        #expect(HeaderScan(["authorization": "ntlm,x"]).authorizationIsConnectionBound)
    }
}
