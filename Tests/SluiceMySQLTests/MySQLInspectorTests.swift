import Foundation
import NIOCore
import SluiceModel
import SluicePolicy
import SluiceTestSupport
import Testing

@testable import SluiceCore
@testable import SluiceMySQL

/// The MySQL inspector without channels: a real MariaDB session's bytes in, relay actions and commands out.
@Suite struct MySQLInspectorTests {
    private final class Harness {
        let events = EventCollector()
        let inspector: MySQLInspector
        let session = MariaDBCaptures.cliSelect1

        init(
            maxInspectedPayloadBytes: Int = MySQLPacketFramer.defaultMaxInspectedPayloadBytes,
            tls: (client: () throws -> ChannelHandler, server: () throws -> ChannelHandler)? = nil
        ) {
            let bus = FlowBus(subscribers: [events])
            let gate = InterceptGate(bus: bus)
            let server = Endpoint(host: "10.0.0.8", port: 3306)
            let recorder = FlowRecorder(flowID: FlowID(9), bus: bus, limits: RecordingLimits(recordPayloads: true, maxPayloadBytes: 1 << 20, maxFlowBytes: 1 << 30))
            recorder.opened(kind: .mysql, listener: "test", client: Endpoint(host: "127.0.0.1", port: 4000), server: server)
            let commands = CommandLog(flowID: FlowID(9), target: server, bus: bus, policy: SharedPolicy(.builtIn), gate: gate)
            inspector = MySQLInspector(
                recorder: recorder, gate: gate, commands: commands, tls: tls, maxInspectedPayloadBytes: maxInspectedPayloadBytes
            )
        }

        func client(_ bytes: [UInt8]) -> [RelayAction] { read(bytes, .up) }
        func server(_ bytes: [UInt8]) -> [RelayAction] { read(bytes, .down) }

        func read(_ bytes: [UInt8], _ direction: Direction) -> [RelayAction] {
            var actions: [RelayAction] = []
            inspector.read(ByteBuffer(bytes: bytes), direction: direction, into: &actions)
            return actions
        }

        /// The captured login: greeting, the mysql client's response, the server's OK.
        func login() {
            _ = server(session.serverPackets[0])
            _ = client(session.clientPackets[0])
            _ = server(session.serverPackets[1])
        }

        var commands: [Command] {
            events.events.compactMap { if case .command(let command) = $0 { return command } else { return nil } }
        }

        var finished: [CommandFinished] {
            events.events.compactMap { if case .commandFinished(let done) = $0 { return done } else { return nil } }
        }
    }

    private static func passed(_ actions: [RelayAction]) -> [UInt8] {
        actions.flatMap { action -> [UInt8] in
            if case .pass(let buffer) = action { return Array(buffer.readableBytesView) }
            return []
        }
    }

    private static func answered(_ actions: [RelayAction]) -> [UInt8] {
        actions.flatMap { action -> [UInt8] in
            if case .answer(let buffer) = action { return Array(buffer.readableBytesView) }
            return []
        }
    }

    /// The ERR packet in `bytes`: its sequence id, code and message.
    private static func error(_ bytes: [UInt8]) -> (sequenceID: UInt8, code: UInt16, message: String)? {
        guard bytes.count > 9, bytes[4] == 0xFF else { return nil }
        return (bytes[3], UInt16(bytes[5]) | UInt16(bytes[6]) << 8, String(decoding: bytes[13...], as: UTF8.self))
    }

    private static func query(_ sql: String) -> [UInt8] { Wire.packet(0, [0x03], Array(sql.utf8)) }

    @Test func aRealSessionPassesUnchangedButTheCapabilitiesAndItsQueryIsACommand() throws {
        let harness = Harness()
        let greeting = harness.session.serverPackets[0]
        let rewritten = Self.passed(harness.server(greeting))
        #expect(rewritten.count == greeting.count)
        let handshake = try MySQLHandshake(payload: ByteBuffer(bytes: rewritten.dropFirst(4)))
        #expect(handshake.capabilities.isDisjoint(with: .clearedBySluice))
        #expect(zip(rewritten, greeting).filter { $0 != $1 }.count <= 4, "only capability bytes change")
        let response = harness.session.clientPackets[0]
        #expect(Self.passed(harness.client(response)) == response, "a response without the cleared bits passes as it is")
        _ = harness.server(harness.session.serverPackets[1])
        let select = harness.session.clientPackets[1]
        #expect(Self.passed(harness.client(select)) == select)
        #expect(harness.commands.map(\.text) == ["select 1"])
        #expect(harness.commands.first?.user == "sluice_native" && harness.commands.first?.database == "sluice")
        let rows = harness.session.serverPackets[2...].flatMap { $0 }
        #expect(Self.passed(harness.server(rows)) == rows)
        #expect(harness.finished.map(\.outcome) == [CommandOutcome(result: "1 row")])
    }

    /// Stands in for a TLS handler.
    private final class Marker: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
    }

    private static func sslRequest() -> [UInt8] {
        let caps: MySQLCapabilities = [.protocol41, .secureConnection, .pluginAuth, .ssl, .clientMySQL, .compress]
        return Wire.packet(1, Wire.uint32(caps.rawValue) + Wire.uint32(1 << 24) + [45] + [UInt8](repeating: 0, count: 23))
    }

    @Test func withTLSInterceptedAnSSLRequestPassesAndTurnsBothLegsTLSWithWhatFollowsReadAgain() throws {
        let harness = Harness(tls: (client: { Marker() }, server: { Marker() }))
        let greeting = harness.session.serverPackets[0]
        let handshake = try MySQLHandshake(payload: ByteBuffer(bytes: Self.passed(harness.server(greeting)).dropFirst(4)))
        #expect(handshake.capabilities.contains(.ssl), "SSL stays offered")
        #expect(handshake.capabilities.isDisjoint(with: MySQLCapabilities.clearedBySluice.subtracting(.ssl)))

        let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]
        let actions = harness.client(Self.sslRequest() + clientHello)
        try #require(actions.count == 3)
        guard case .pass(let request) = actions[0], case .securePartner = actions[1], case .secureSender(_, let unread) = actions[2] else {
            Issue.record("expected pass, securePartner, secureSender: \(actions)")
            return
        }
        let caps = MySQLCapabilities(rawValue: try #require(request.getInteger(at: request.readerIndex + 4, endianness: .little, as: UInt32.self)))
        #expect(caps.contains(.ssl) && !caps.contains(.compress), "the request loses compression, not SSL")
        #expect(unread.map { Array($0.readableBytesView) } == clientHello, "the ClientHello goes to the TLS handler")

        // Inside TLS: the real answer (sequence 2), then the session as usual.
        var response = harness.session.clientPackets[0]
        response[3] = 2
        _ = harness.client(response)
        _ = harness.server(harness.session.serverPackets[1])
        _ = harness.client(harness.session.clientPackets[1])
        #expect(harness.commands.map(\.text) == ["select 1"])
        #expect(harness.commands.first?.user == "sluice_native")
    }

    @Test func anSSLRequestIsRefusedWithoutInterceptionAndAskedTwiceIsRefusedWithIt() {
        let plain = Harness()
        _ = plain.server(plain.session.serverPackets[0])
        let refused = plain.client(Self.sslRequest())
        guard case .end(let ending)? = refused.last else {
            Issue.record("not ended: \(refused)")
            return
        }
        #expect(ending.failure?.message.contains("asked for TLS, which this listener does not offer") == true)

        let intercepted = Harness(tls: (client: { Marker() }, server: { Marker() }))
        _ = intercepted.server(intercepted.session.serverPackets[0])
        _ = intercepted.client(Self.sslRequest())
        guard case .end? = intercepted.client(Self.sslRequest()).last else {
            Issue.record("a second SSLRequest inside TLS went on")
            return
        }
    }

    @Test func aBlockedQueryIsAnsweredWithErr1142AtTheNextSequenceID() throws {
        let harness = Harness()
        harness.login()
        let actions = harness.client(Self.query("DROP DATABASE sluice"))
        #expect(Self.passed(actions).isEmpty, "the server never sees it")
        let error = try #require(Self.error(Self.answered(actions)))
        #expect(error.sequenceID == 1 && error.code == 1142)
        #expect(error.message.contains("blocked by Sluice policy") && error.message.contains("drop-database"))
        #expect(harness.commands.first?.decision == .blocked)
    }

    @Test func aRefusalBehindACommandInFlightWaitsForItsResponse() throws {
        let harness = Harness()
        harness.login()
        let select = Self.query("select 1")
        let actions = harness.client(select + Self.query("DROP DATABASE sluice"))
        #expect(Self.passed(actions) == select && Self.answered(actions).isEmpty)
        let response = harness.session.serverPackets[2...].flatMap { $0 }
        let after = Self.passed(harness.server(response))
        #expect(Array(after.prefix(response.count)) == response, "the select's response first")
        let error = try #require(Self.error(Array(after.dropFirst(response.count))))
        #expect(error.code == 1142 && error.sequenceID == 1)
    }

    @Test func aHeldQueryWaitsForItsVerdict() throws {
        let harness = Harness()
        harness.login()
        let drop = Self.query("DROP TABLE orders")
        guard case .hold(let hold)? = harness.client(drop).first else {
            Issue.record("expected a hold")
            return
        }
        var actions: [RelayAction] = []
        harness.inspector.released(hold, verdict: .forward(edited: nil), decidedBy: .operator, into: &actions)
        #expect(Self.passed(actions) == drop)
        let second = harness.client(Self.query("DROP TABLE customers"))
        guard case .hold(let refused)? = second.first else {
            Issue.record("expected a hold")
            return
        }
        _ = harness.server(Wire.ok(1))  // the first one's response
        actions = []
        harness.inspector.released(refused, verdict: .drop, decidedBy: .timeout, into: &actions)
        let error = try #require(Self.error(Self.answered(actions)))
        #expect(error.code == 1142 && error.message.contains("not approved in time"))
    }

    @Test func aBlockedPrepareRefusesItsPipelinedExecuteToo() throws {
        let harness = Harness()
        harness.login()
        let prepare = Wire.packet(0, [0x16], Array("DROP DATABASE sluice".utf8))
        let execute = Wire.packet(0, [0x17], Wire.uint32(0xFFFF_FFFF), [0], Wire.uint32(1))
        let actions = harness.client(prepare + execute)
        #expect(Self.passed(actions).isEmpty, "neither reaches the server")
        let answers = Self.answered(actions)
        let first = try #require(Self.error(answers))
        let firstLength = Int(answers[0]) | Int(answers[1]) << 8 | Int(answers[2]) << 16
        let second = try #require(Self.error(Array(answers.dropFirst(4 + firstLength))))
        #expect(first.code == 1142 && second.code == 1142)
    }

    @Test func aStreamedCommandIsTrackedAsWhatItIs() {
        // Long data too large to inspect gets no response: the select after it must get its own.
        let harness = Harness(maxInspectedPayloadBytes: 4096)
        harness.login()
        let longData = Wire.packet(0, [0x18], Wire.uint32(1), Wire.uint16(0), Array(repeating: 0x61, count: 5000))
        #expect(Self.passed(harness.client(longData)) == longData)
        _ = harness.client(Self.query("select 1"))
        _ = harness.server(harness.session.serverPackets[2...].flatMap { $0 })
        #expect(harness.finished.map(\.outcome) == [CommandOutcome(result: "1 row")])
    }

    @Test func malformedInputEndsTheConnectionWithAnError() {
        let harness = Harness()
        _ = harness.server(harness.session.serverPackets[0])
        let actions = harness.client(Wire.packet(1, [0x01, 0x02]))
        guard case .end(let ending)? = actions.last else {
            Issue.record("expected an end, got \(actions)")
            return
        }
        #expect(ending.failure?.phase == .client)
        #expect(ending.toClient.map { String(decoding: $0.readableBytesView, as: UTF8.self).contains("broke the MySQL protocol") } == true)
    }

    @Test func byteByByteTheSameBytesPass() {
        let whole = Harness()
        let bytewise = Harness()
        var wholePassed: [UInt8] = []
        var bytewisePassed: [UInt8] = []
        let session = whole.session
        for (index, packet) in session.serverPackets.enumerated() {
            if index == 1 { wholePassed += Self.passed(whole.client(session.clientPackets[0])) }
            if index == 2 { wholePassed += Self.passed(whole.client(session.clientPackets[1])) }
            wholePassed += Self.passed(whole.server(packet))
        }
        for (index, packet) in session.serverPackets.enumerated() {
            if index == 1 { for byte in session.clientPackets[0] { bytewisePassed += Self.passed(bytewise.client([byte])) } }
            if index == 2 { for byte in session.clientPackets[1] { bytewisePassed += Self.passed(bytewise.client([byte])) } }
            for byte in packet { bytewisePassed += Self.passed(bytewise.server([byte])) }
        }
        #expect(bytewisePassed == wholePassed)
        #expect(bytewise.commands.map(\.text) == whole.commands.map(\.text))
        #expect(whole.finished.count == 1)
    }

    @Test func randomlyDamagedSessionsNeverCrash() {
        let session = MariaDBCaptures.cliSelect1
        var random = SplitMix(seed: 11)
        for _ in 0..<300 {
            let harness = Harness()
            var client = session.clientStream
            var server = session.serverStream
            for _ in 0..<3 {
                if random.next() % 2 == 0 {
                    client[Int(random.next() % UInt64(client.count))] = UInt8(truncatingIfNeeded: random.next())
                } else {
                    server[Int(random.next() % UInt64(server.count))] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            var clientOffset = 0
            var serverOffset = 0
            while clientOffset < client.count || serverOffset < server.count {
                if serverOffset < server.count {
                    let size = min(server.count - serverOffset, Int(random.next() % 40) + 1)
                    _ = harness.server(Array(server[serverOffset..<serverOffset + size]))
                    serverOffset += size
                }
                if clientOffset < client.count {
                    let size = min(client.count - clientOffset, Int(random.next() % 40) + 1)
                    _ = harness.client(Array(client[clientOffset..<clientOffset + size]))
                    clientOffset += size
                }
            }
            #expect(harness.inspector.bufferedBytes <= client.count + server.count)
        }
    }
}
