import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import SluiceAPI
import SluiceCore
import SluiceModel
import SluiceTestSupport
import Testing

@testable import SluiceRemote

/// An attachment to a real API server over loopback, in front of a real engine: holds arrive through the event
/// stream, verdicts reach the gate (the first one wins), the filter and listeners go through the API.
@Suite(.serialized, .ownThread) struct RecorderAttachmentTests {
    /// A recorder in this process: an engine whose bus feeds the API's event hub, and the API on a free port.
    private final class Recorder {
        let hub = APIEventHub()
        let engine: Engine
        let server: APIServer
        let token: APIToken
        let directory: String

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-attach-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            engine = Engine(
                configuration: Configuration(), bus: FlowBus(subscribers: [hub]), firstFlowID: FlowID(1), logger: Logger(label: "test"), threads: 1
            )
            token = try APIToken.loadOrCreate(at: (directory as NSString).appendingPathComponent("api-token"))
            let resources = APIResources(engine: engine, store: nil, progress: nil, schemes: [.tcp])
            server = try APIServer.start(
                at: .tcp(Endpoint(host: "127.0.0.1", port: 0)), router: APIRouter(routes: resources.routes), token: token, events: hub
            )
        }

        func client(token: String? = nil) throws -> APIClient {
            APIClient(address: try APIListenAddress(parsing: server.address), token: token ?? self.token.value)
        }

        func close() {
            server.stop()
            engine.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func eventually(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline {
                Issue.record("not within \(timeout) s: \(what)")
                return
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// A port nothing listens on now (the system's choice for a socket bound and closed at once).
    private func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return try #require(channel.localAddress?.port)
    }

    @Test func aHoldArrivesLiveAndTheFirstVerdictWins() throws {
        let recorder = try Recorder()
        defer { recorder.close() }
        let first = RecorderAttachment(client: try recorder.client())
        let second = RecorderAttachment(client: try recorder.client())
        try first.start()
        try second.start()
        defer {
            first.stop()
            second.stop()
        }
        #expect(first.engine.listenSchemes == [.tcp])
        // Both streams are open before the hold, so both see it as an event.
        eventually("both streams open") { recorder.hub.streamCount == 2 }

        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let verdicts = NIOLockedValueBox<[Verdict]>([])
        recorder.engine.gate.hold(flowID: FlowID(9), sequence: 2, direction: .up, payload: Data("GET / HTTP/1.1\r\n".utf8), on: loop) {
            verdict, _ in verdicts.withLockedValue { $0.append(verdict) }
        }
        eventually("the hold reaches both") { first.engine.intercept.held.count == 1 && second.engine.intercept.held.count == 1 }
        let held = try #require(first.engine.intercept.held.first)
        #expect(held.payload == Data("GET / HTTP/1.1\r\n".utf8))
        #expect(first.feed.take().contains { if case .messageHeld = $0 { return true } else { return false } })

        #expect(first.engine.intercept.resolve(held.id, .forward(edited: Data("edited".utf8))))
        #expect(!second.engine.intercept.resolve(held.id, .drop), "decided already")
        eventually("the verdict reaches the gate") { verdicts.withLockedValue { $0 } == [.forward(edited: Data("edited".utf8))] }
        eventually("both queues are empty") { first.engine.intercept.held.isEmpty && second.engine.intercept.held.isEmpty }
    }

    @Test func theFilterAndListenersGoThroughTheAPI() throws {
        let recorder = try Recorder()
        defer { recorder.close() }
        let attachment = RecorderAttachment(client: try recorder.client())
        try attachment.start()
        defer { attachment.stop() }

        attachment.engine.intercept.filter = try Filter("~k tcp")
        #expect(recorder.engine.gate.filter?.text == "~k tcp")
        #expect(attachment.engine.intercept.filter?.text == "~k tcp")

        let port = try freePort()
        let spec = try ListenSpec(parsing: "tcp://127.0.0.1:\(port)=>127.0.0.1:9", schemes: [.tcp])
        let listener = try attachment.engine.listen(spec)
        #expect(recorder.engine.listeners.map(\.id) == [listener.id])
        #expect(attachment.engine.listeners.map(\.id) == [listener.id])
        #expect(attachment.engine.stopListening(listener.id)?.id == listener.id)
        #expect(recorder.engine.listeners.isEmpty)
        #expect(attachment.engine.stopListening(listener.id) == nil)
        #expect(!attachment.engine.kill(FlowID(77)))
    }

    @Test func aWrongTokenOrNoRecorderFailsInOneLine() throws {
        let recorder = try Recorder()
        defer { recorder.close() }
        let refused = RecorderAttachment(client: try recorder.client(token: String(repeating: "0", count: 64)))
        defer { refused.stop() }
        #expect(throws: RemoteError.self) { try refused.start() }
        #expect(refused.problem?.contains("HTTP 401") == true)

        let nobody = RecorderAttachment(client: APIClient(address: .unix(path: recorder.directory + "/none.sock"), token: "x"))
        defer { nobody.stop() }
        do {
            try nobody.start()
            Issue.record("attached to nothing")
        } catch {
            #expect(error.message.hasPrefix("cannot reach the recorder's API at unix:"))
            #expect(!error.message.contains("\n"))
        }
    }

    /// `sluice attach` quitting while requests are under way (its poll fires every second): the shutdown waits for
    /// them, and a request after it fails at once, in one line. A connect begun on a stopped event loop never
    /// completed (and a debug build stopped on NIO's check for a promise left unfulfilled).
    @Test func aClientShutDownWhileRequestsAreUnderWayWaitsForThemAndRefusesLaterOnes() throws {
        let recorder = try Recorder()
        defer { recorder.close() }
        let client = try recorder.client()
        let outcomes = NIOLockedValueBox<[String]>([])
        let group = DispatchGroup()
        for _ in 0..<4 {
            DispatchQueue.global().async(group: group) {
                for _ in 0..<10 {
                    let outcome: String
                    do {
                        outcome = try client.request(.GET, "/api/listeners").succeeded ? "answered" : "refused"
                    } catch {
                        outcome = "\(error)"
                    }
                    outcomes.withLockedValue { $0.append(outcome) }
                }
            }
        }
        eventually("some requests answered") { outcomes.withLockedValue { $0.count } >= 8 }
        client.shutdown()
        #expect(group.wait(timeout: .now() + 30) == .success, "every request came back")
        let seen = Set(outcomes.withLockedValue { $0 })
        #expect(seen.contains("answered"))
        #expect(seen.allSatisfy { !$0.contains("\n") }, "each failure is one line: \(seen)")
        #expect(throws: RemoteError("GET /api/listeners: the connection to the recorder is closed")) {
            try client.request(.GET, "/api/listeners")
        }
    }
}
