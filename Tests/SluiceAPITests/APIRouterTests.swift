import Foundation
import Logging
import NIOEmbedded
import SluiceCore
import SluiceModel
import SluiceTestSupport
import Testing
import Yams

@testable import SluiceAPI

/// The router, the request parsing and the token without sockets, and the OpenAPI document against the routes the
/// server really has.
@Suite(.ownThread) struct APIRouterTests {
    private static let engine = Engine(
        configuration: Configuration(), bus: FlowBus(subscribers: []), firstFlowID: FlowID(1), logger: Logger(label: "test"), threads: 1
    )
    private var resources: APIResources { APIResources(engine: Self.engine, store: nil, progress: nil, schemes: [.tcp]) }
    private var router: APIRouter { APIRouter(routes: resources.routes) }

    private func failure(_ request: APIRequest) -> APIFailure? {
        do {
            _ = try router.answer(request)
            return nil
        } catch {
            return error
        }
    }

    @Test func theOpenAPIDocumentDescribesExactlyTheRoutesServed() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
        let document = try #require(try Yams.load(yaml: String(contentsOf: path, encoding: .utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let served = Set(resources.routes.map { "\($0.method) \($0.pattern)" })
        #expect(documented == served, "documented but not served: \(documented.subtracting(served)); served but not documented: \(served.subtracting(documented))")
    }

    @Test func unknownPathsAre404AndOtherMethods405() {
        #expect(failure(APIRequest(method: "GET", target: "/api/nothing"))?.status == 404)
        #expect(failure(APIRequest(method: "PUT", target: "/api/listeners"))?.status == 405)
        #expect(failure(APIRequest(method: "DELETE", target: "/api/listeners/99"))?.status == 404)
        #expect(failure(APIRequest(method: "DELETE", target: "/api/listeners/abc"))?.status == 400)
        // Without a store, its resources say so.
        #expect(failure(APIRequest(method: "GET", target: "/api/flows"))?.status == 503)
    }

    @Test func badBodiesAre400NamingWhatIsWrong() {
        let bad: [(String, String)] = [
            ("{", "not JSON"), ("[1]", "must be a JSON object"), (#"{"spec": "tcp://:9000=>h:1", "port": 3}"#, "unknown field 'port'"),
            (#"{"spec": 5}"#, "field 'spec'"), (#"{"spec": "gopher://:70"}"#, "spec:"), ("", "must be a JSON object"),
        ]
        for (body, expected) in bad {
            let refused = failure(APIRequest(method: "POST", target: "/api/listeners", body: Array(body.utf8)))
            #expect(refused?.status == 400, "\(body)")
            #expect(refused?.message.contains(expected) == true, "\(body): \(refused?.message ?? "accepted")")
        }
        let verdict = failure(APIRequest(method: "POST", target: "/api/intercept/1", body: Array(#"{"verdict": "maybe"}"#.utf8)))
        #expect(verdict?.status == 400 && verdict?.message.contains("verdict") == true)
        #expect(failure(APIRequest(method: "POST", target: "/api/intercept/1", body: Array(#"{"verdict": "drop"}"#.utf8)))?.status == 404)
        #expect(failure(APIRequest(method: "GET", target: "/api/commands?limit=0"))?.status == 400)
    }

    private func post(_ target: String, _ body: String, method: String = "POST") -> APIFailure? {
        failure(APIRequest(method: method, target: target, body: Array(body.utf8)))
    }

    @Test func operatorRoutesRefuseWhatTheyCannotDo() {
        #expect(post("/api/flows/77/kill", "")?.status == 404)
        #expect(post("/api/flows/x/kill", "")?.status == 400)
        #expect(post("/api/flows/77/send", #"{"direction": "up", "text": "hi"}"#)?.status == 409)
        #expect(post("/api/flows/77/send", #"{"direction": "sideways", "text": "hi"}"#)?.message.contains("'direction'") == true)
        #expect(post("/api/flows/77/send", #"{"direction": "up", "text": "a", "base64": "YQ=="}"#)?.status == 400)
        #expect(post("/api/flows/77/send", #"{"direction": "up", "base64": "***"}"#)?.message.contains("'base64'") == true)
        #expect(post("/api/flows/77/send", #"{"direction": "up", "kind": "ping", "text": "a"}"#)?.message.contains("'kind'") == true)
        #expect(post("/api/intercept/1", #"{"verdict": "drop", "edited": "YQ=="}"#)?.message.contains("forward") == true)
        #expect(post("/api/intercept/1", #"{"verdict": "forward", "edited": 5}"#)?.message.contains("'edited'") == true)
        #expect(post("/api/intercept/filter", #"{"filter": "~q ("}"#, method: "PUT")?.message.contains("'filter'") == true)
        #expect(post("/api/intercept/filter", #"{"filter": 5}"#, method: "PUT")?.status == 400)
    }

    @Test func theInterceptFilterIsSetAndClearedThroughTheAPI() throws {
        let engine = Engine(configuration: Configuration(), bus: FlowBus(subscribers: []), firstFlowID: FlowID(1), logger: Logger(label: "test"), threads: 1)
        let router = APIRouter(routes: APIResources(engine: engine, store: nil, progress: nil, schemes: [.tcp]).routes)
        _ = try router.answer(APIRequest(method: "PUT", target: "/api/intercept/filter", body: Array(#"{"filter": "~d example.com"}"#.utf8)))
        #expect(engine.gate.filter?.text == "~d example.com")
        guard case .data(let json, _, _) = try router.answer(APIRequest(method: "GET", target: "/api/intercept/filter")) else {
            Issue.record("no data")
            return
        }
        #expect(json == #"{"filter":"~d example.com"}"#)
        _ = try router.answer(APIRequest(method: "PUT", target: "/api/intercept/filter", body: Array(#"{"filter": null}"#.utf8)))
        #expect(engine.gate.filter == nil)
        guard case .data(let schemes, _, _) = try router.answer(APIRequest(method: "GET", target: "/api/schemes")) else {
            Issue.record("no schemes")
            return
        }
        #expect(schemes == #"[{"name":"tcp","target":"endpoint","options":{}}]"#)
    }

    @Test func connectionsPastTheCapAreRefusedUntilOneCloses() throws {
        let open = OpenConnections(limit: 2)
        let channels = (0..<3).map { _ in EmbeddedChannel() }
        #expect(channels.map(open.admit) == [true, true, false])
        try channels[0].close().wait()
        channels[0].embeddedEventLoop.run()
        #expect(open.current == 1)
        #expect(open.admit(channels[2]))
    }

    @Test func sessionAndProxyBodiesAre400NamingTheField() {
        let bad: [(String, String, String)] = [
            ("/api/sessions", #"{"user": "alice", "resource": "db", "role": "admin"}"#, "unknown field 'role'"),
            ("/api/sessions", #"{"user": "alice"}"#, "field 'resource' is required"),
            ("/api/sessions", #"{"user": 5, "resource": "db"}"#, "field 'user' must be a string"),
            ("/api/sessions", #"{"user": "", "resource": "db"}"#, "field 'user' must be a string"),
            ("/api/sessions", "{", "not JSON"),
            ("/api/sessions/1/proxy", #"{"protocol": "ssh", "target": "h:22", "port": 2222}"#, "unknown field 'port'"),
            ("/api/sessions/1/proxy", #"{"protocol": "ftp", "target": "h:21"}"#, "field 'protocol' must be one of ssh, postgres, mysql, tcp, http"),
            ("/api/sessions/1/proxy", #"{"protocol": "tcp"}"#, "field 'target' is required"),
            ("/api/sessions/1/proxy", #"{"protocol": "tcp", "target": "h:-1"}"#, "field 'target' must be HOST:PORT"),
            ("/api/sessions/1/proxy", #"{"protocol": "tcp", "target": "h:70000"}"#, "field 'target' must be HOST:PORT"),
            ("/api/sessions/1/proxy", #"{"protocol": "tcp", "target": "h"}"#, "field 'target' must be HOST:PORT"),
            ("/api/sessions/1/proxy", #"{"protocol": "tcp", "target": "a b:1"}"#, "field 'target' must be HOST:PORT"),
            ("/api/alerts/1/ack", #"{"who": "me"}"#, "unknown field 'who'"),
            ("/api/alerts/1/ack", #"{"by": ["me"]}"#, "field 'by' must be a string"),
            ("/api/flows/1/replay", #"{"target": "h:1", "dry_run": true}"#, "unknown field 'dry_run'"),
            ("/api/flows/1/replay", #"{"password": 12345}"#, "field 'password' must be a string"),
        ]
        for (path, body, expected) in bad {
            let refused = failure(APIRequest(method: "POST", target: path, body: Array(body.utf8)))
            #expect(refused?.status == 400, "\(path) \(body)")
            #expect(refused?.message.contains(expected) == true, "\(path) \(body): \(refused?.message ?? "accepted")")
        }
        // Without the store's writer, the routes that need it say so once the request is well formed.
        #expect(failure(APIRequest(method: "POST", target: "/api/sessions", body: Array(#"{"user": "a", "resource": "b"}"#.utf8)))?.status == 503)
        #expect(failure(APIRequest(method: "POST", target: "/api/alerts/1/ack"))?.status == 503)
        #expect(failure(APIRequest(method: "POST", target: "/api/flows/1/replay"))?.status == 503)
    }

    @Test func idsThatAreNotNumbersAre400AndUnknownMethods405() {
        for path in [
            "/api/sessions/abc", "/api/sessions/-1", "/api/sessions/1.5", "/api/sessions/99999999999999999999", "/api/sessions/abc/proxy",
            "/api/sessions/abc/commands",
        ] {
            #expect(failure(APIRequest(method: "GET", target: path))?.status == 400, "\(path)")
        }
        #expect(failure(APIRequest(method: "DELETE", target: "/api/sessions/1/proxy/x"))?.status == 400)
        #expect(failure(APIRequest(method: "POST", target: "/api/alerts/x/ack"))?.status == 400)
        #expect(failure(APIRequest(method: "POST", target: "/api/flows/x/replay"))?.status == 400)
        #expect(failure(APIRequest(method: "PUT", target: "/api/sessions/1"))?.status == 405)
        #expect(failure(APIRequest(method: "GET", target: "/api/alerts/1/ack"))?.status == 405)
        for query in ["session=x", "session=-2", "risk=extreme", "flow=1e3"] {
            #expect(failure(APIRequest(method: "GET", target: "/api/commands?\(query)"))?.status == 400, "\(query)")
        }
        #expect(failure(APIRequest(method: "GET", target: "/api/alerts?acknowledged=yes"))?.status == 400)
        #expect(failure(APIRequest(method: "GET", target: "/api/alerts?level=severe"))?.status == 400)
        #expect(failure(APIRequest(method: "GET", target: "/api/flows?session=abc"))?.status == 400)
    }

    @Test func queriesArePercentDecoded() {
        let request = APIRequest(method: "GET", target: "/api/flows?filter=~m%20POST%20%26%20~u+api&limit=5")
        #expect(request.path == "/api/flows")
        #expect(request.query["filter"] == "~m POST & ~u api")
        #expect(request.query["limit"] == "5")
    }

    @Test func theEnvelopeQuotesItsMessage() {
        #expect(APIEnvelope.success("[]", message: "say \"hi\"") == #"{"success":true,"message":"say \"hi\"","data":[]}"#)
        #expect(APIEnvelope.failure("no") == #"{"success":false,"message":"no","data":null}"#)
    }

    @Test func theTokenIsMadeOnce0600AndComparedWhole() throws {
        let path = NSTemporaryDirectory() + "sluice-api-token-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let token = try APIToken.loadOrCreate(at: path)
        #expect(token.value.count == 64)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try APIToken.loadOrCreate(at: path).value == token.value)
        #expect(token.admits("Bearer \(token.value)"))
        #expect(!token.admits("Bearer \(token.value.dropLast())x"))
        #expect(!token.admits("Bearer \(token.value)x"))
        #expect(!token.admits(token.value))
        #expect(!token.admits(nil))
    }

    @Test func listenAddresses() throws {
        #expect(try APIListenAddress(parsing: "127.0.0.1:8081") == .tcp(Endpoint(host: "127.0.0.1", port: 8081)))
        #expect(try APIListenAddress(parsing: ":8081") == .tcp(Endpoint(host: "127.0.0.1", port: 8081)))
        #expect(try APIListenAddress(parsing: "unix:/run/sluice.sock") == .unix(path: "/run/sluice.sock"))
        #expect(throws: APIError.self) { try APIListenAddress(parsing: "unix:") }
        #expect(throws: APIError.self) { try APIListenAddress(parsing: "nowhere") }
    }
}
