import NIOCore
import SluiceMySQL
import SluiceTestSupport
import Testing

/// Hostile-input robustness: whatever the bytes, the framer, the decoders and the response tracker only ever yield
/// values or a `MySQLProtocolError` (a crash or a trap fails the whole run), always make progress, and hand out raw
/// slices that re-concatenate to exactly the input consumed; and the outcome does not depend on how the input was
/// split into reads.
@Suite("MySQL malformed input", .ownThread)
struct MySQLFuzzTests {
    /// Small, so that generated payloads cross it and the streaming paths are exercised.
    static let cap = 4096
    static let capabilities: MySQLCapabilities = [
        .protocol41, .secureConnection, .pluginAuth, .pluginAuthLengthEncodedClientData, .connectAttributes,
        .connectWithDB, .multiStatements, .multiResults, .transactions, .sessionTrack,
    ]

    enum Direction {
        case client
        case server
    }

    /// A decoder's result, compared by value (ByteBuffers by their bytes).
    enum Decoded: Equatable {
        case command(MySQLCommand)
        case clientHandshake(MySQLClientHandshake)
        case execute(MySQLStatementExecute)
        case streamedCommand(MySQLStreamedCommand)
        case greeting(MySQLHandshake.Greeting)
        case rewrittenGreeting(ByteBuffer)
        case ok(MySQLOKPacket)
        case error(MySQLErrorPacket)
        case eof(MySQLEOFPacket)
        case prepared(MySQLPrepareOK)
        case columnCount(MySQLColumnCount)
        case authentication(MySQLAuthenticationPacket)
    }

    enum Tracked: Equatable {
        case summary(MySQLResponseSummary)
        case error(MySQLProtocolError.Kind)
    }

    private struct Outcome: Equatable {
        var frames: [LogicalFrame]
        var framingError: String?
        var errorKind: MySQLProtocolError.Kind?
        var decoded: [Decoded]
        var decodingErrors: [MySQLProtocolError.Kind]
        var tracked: [Tracked]
    }

    /// Decodes every whole payload with every decoder that could be pointed at it (the inspector may be wrong about
    /// where it is), and feeds the server's frames to response trackers; records results and error kinds.
    private static func decode(
        _ frames: [MySQLFrame], direction: Direction, generator: inout SplitMix
    ) -> (decoded: [Decoded], errors: [MySQLProtocolError.Kind], tracked: [Tracked]) {
        var decoded: [Decoded] = []
        var errors: [MySQLProtocolError.Kind] = []
        // Every decoder throws only MySQLProtocolError (typed throws); the closures here are untyped for brevity.
        func attempt(_ body: () throws -> Decoded) {
            do {
                decoded.append(try body())
            } catch let error as MySQLProtocolError {
                errors.append(error.kind)
            } catch {
                Issue.record("a decoder threw \(error)")
            }
        }
        let parameterCount = generator.int(in: 0...4)
        let types = Array(repeating: MySQLParameterType(type: .varString), count: parameterCount)
        let withAttributes = capabilities.union(.queryAttributes)
        for frame in frames {
            switch frame.kind {
            case .payload(let payload):
                switch direction {
                case .client:
                    attempt { .command(try MySQLCommand(payload: payload, capabilities: capabilities)) }
                    attempt { .command(try MySQLCommand(payload: payload, capabilities: withAttributes)) }
                    attempt { .clientHandshake(try MySQLClientHandshake(payload: payload)) }
                    attempt {
                        .execute(
                            try MySQLCommand.decodeExecute(
                                payload, parameterCount: parameterCount, boundTypes: types, longDataParameters: [1]))
                    }
                    attempt {
                        .execute(
                            try MySQLCommand.decodeExecute(
                                payload, parameterCount: parameterCount, capabilities: withAttributes))
                    }
                case .server:
                    attempt { .greeting(try MySQLHandshake.decodeGreeting(payload)) }
                    attempt {
                        .rewrittenGreeting(
                            try MySQLHandshake.rewritingCapabilities(of: payload, clearing: .clearedBySluice))
                    }
                    attempt { .ok(try MySQLOKPacket(payload: payload, capabilities: capabilities)) }
                    attempt { .error(try MySQLErrorPacket(payload: payload, capabilities: capabilities)) }
                    attempt { .eof(try MySQLEOFPacket(payload: payload, capabilities: capabilities)) }
                    attempt { .prepared(try MySQLPrepareOK(payload: payload)) }
                    attempt { .columnCount(try MySQLColumnCount(payload: payload, hasMetadataFlag: true)) }
                    attempt {
                        .authentication(try MySQLAuthenticationPacket(payload: payload, capabilities: capabilities))
                    }
                }
            case .streamStart(let head):
                if direction == .client {
                    attempt { .streamedCommand(try MySQLStreamedCommand(head: head, capabilities: capabilities)) }
                }
            case .streamPart:
                break
            }
        }
        var tracked: [Tracked] = []
        if direction == .server {
            // One tracker after another, as an inspector would for pipelined commands, until one refuses a frame.
            let expectations: [MySQLResponseTracker.Expectation] = [
                .resultSets, .preparedStatement, .okOrError, .fetch, .fieldList, .authentication, .binlogStream,
                .singlePacket, .statistics,
            ]
            var index = generator.int(in: 0...expectations.count - 1)
            var current = MySQLResponseTracker(expecting: expectations[index], capabilities: capabilities)
            tracking: for frame in frames {
                if current.isComplete {
                    tracked.append(.summary(current.summary))
                    index = (index + 1) % expectations.count
                    current = MySQLResponseTracker(expecting: expectations[index], capabilities: capabilities)
                }
                do {
                    if case .localInfileRequested = try current.receive(frame) {
                        let empty = MySQLFrame(
                            kind: .payload(ByteBuffer()), raw: ByteBuffer(), sequenceID: 0, lastSequenceID: 0)
                        _ = try current.clientSent(empty)
                    }
                } catch {
                    tracked.append(.error(error.kind))
                    break tracking
                }
            }
            tracked.append(.summary(current.summary))
        }
        return (decoded, errors, tracked)
    }

    private static func run(
        _ bytes: [UInt8], direction: Direction, chunkSize: (() -> Int)?, seed: UInt64
    ) -> (Outcome, [String]) {
        var framer = MySQLPacketFramer(maxInspectedPayloadBytes: cap)
        let framed = frame(bytes, with: &framer, chunkSize: chunkSize)
        var violations = framed.violations
        // Bounded buffering: after a drain, at most one incomplete payload under the cap is waiting.
        if framed.maxHeldAfterDrain > cap + 4 {
            violations.append("held \(framed.maxHeldAfterDrain) bytes after draining")
        }
        var generator = SplitMix(seed: seed)
        let decoded = decode(framed.frames, direction: direction, generator: &generator)
        let outcome = Outcome(
            frames: logical(framed.frames), framingError: framed.error.map { "\($0)" }, errorKind: framed.error?.kind,
            decoded: decoded.decoded, decodingErrors: decoded.errors, tracked: decoded.tracked)
        return (outcome, violations)
    }

    /// Runs `bytes` whole, in random chunks, and (when short) byte by byte; returns the one-shot outcome and every
    /// invariant violation.
    private static func check(
        _ bytes: [UInt8], direction: Direction, using generator: inout SplitMix
    ) -> (Outcome, [String]) {
        let seed = generator.next()
        let (oneShot, oneShotViolations) = run(bytes, direction: direction, chunkSize: nil, seed: seed)
        var chunker = SplitMix(seed: generator.next())
        let (chunked, chunkedViolations) = run(
            bytes, direction: direction, chunkSize: { chunker.int(in: 1...64) }, seed: seed)
        var violations = oneShotViolations + chunkedViolations
        if chunked != oneShot {
            violations.append("chunked feeding disagrees with one-shot feeding")
        }
        if bytes.count <= 600 {
            let (single, singleViolations) = run(bytes, direction: direction, chunkSize: { 1 }, seed: seed)
            violations += singleViolations
            if single != oneShot {
                violations.append("byte-at-a-time feeding disagrees with one-shot feeding for \(bytes)")
            }
        }
        return (oneShot, violations)
    }

    // MARK: Valid streams

    static let sessions = [
        MariaDBCaptures.classic, MariaDBCaptures.deprecateEOF, MariaDBCaptures.cacheMetadata,
        MariaDBCaptures.cacheMetadataEOF,
    ]

    /// A few captured steps of one side, or a large payload (a big row or a big INSERT) that crosses the cap.
    static func randomStream(_ direction: Direction, using generator: inout SplitMix) -> [UInt8] {
        let session = sessions[generator.int(in: 0...sessions.count - 1)]
        var bytes: [UInt8] = []
        for _ in 0..<generator.int(in: 1...6) {
            if generator.int(in: 0...5) == 0 {
                let size = generator.int(in: 4000...12_000)
                let first: UInt8 = direction == .client ? 0x03 : 0x00
                bytes += Wire.packet(
                    UInt8(truncatingIfNeeded: generator.next()), [first],
                    [UInt8](repeating: UInt8(truncatingIfNeeded: generator.next()), count: size))
                continue
            }
            let step = session[generator.int(in: 0...session.count - 1)]
            bytes += direction == .client ? step.clientStream : step.serverStream
        }
        return bytes
    }

    private static func mutate(_ bytes: [UInt8], using generator: inout SplitMix) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<generator.int(in: 0...4) where !bytes.isEmpty {
            let index = generator.int(in: 0...bytes.count - 1)
            switch generator.int(in: 0...5) {
            case 0, 1: bytes[index] ^= UInt8.random(in: 1...255, using: &generator)
            case 2: bytes[index] = [0, 0xFF, 0xFB, 0xFC, 0xFE][generator.int(in: 0...4)]  // lengths and prefixes
            case 3: bytes.remove(at: index)
            case 4: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: index)
            default:
                let end = min(bytes.count, index + generator.int(in: 1...16))
                bytes.insert(contentsOf: bytes[index..<end], at: index)
            }
        }
        if generator.int(in: 0...3) == 0 {
            bytes.removeLast(generator.int(in: 0...bytes.count))
        }
        return bytes
    }

    // MARK: Tests

    @Test("unmutated random streams frame without error, whatever the split")
    func validStreams() {
        var generator = SplitMix(seed: 0x5157_3330_F022_0001)
        var violations: [String] = []
        var failures: [String] = []
        var streamed = 0
        for iteration in 0..<400 {
            let direction: Direction = iteration % 2 == 0 ? .client : .server
            let bytes = Self.randomStream(direction, using: &generator)
            let (outcome, found) = Self.check(bytes, direction: direction, using: &generator)
            violations += found
            if let error = outcome.framingError {
                failures.append(error)
            }
            for case .stream(_, _, _, let complete) in outcome.frames {
                streamed += 1
                if !complete {
                    failures.append("a streamed payload did not end")
                }
            }
        }
        #expect(violations.isEmpty, "first violations: \(violations.prefix(5))")
        #expect(failures.isEmpty, "first failures: \(failures.prefix(5))")
        #expect(streamed > 50)
    }

    @Test("3,000 mutated valid streams")
    func mutatedStreams() {
        var generator = SplitMix(seed: 0xFEED_FACE_3330_0002)
        var violations: [String] = []
        var decodingKinds: Set<MySQLProtocolError.Kind> = []
        var trackerErrors = 0
        var decoded = 0
        for iteration in 0..<3000 {
            let direction: Direction = iteration % 2 == 0 ? .client : .server
            let valid = Self.randomStream(direction, using: &generator)
            let bytes = Self.mutate(valid, using: &generator)
            let (outcome, found) = Self.check(bytes, direction: direction, using: &generator)
            violations += found.map { "\($0) (iteration \(iteration))" }
            decodingKinds.formUnion(outcome.decodingErrors)
            decoded += outcome.decoded.count
            trackerErrors += outcome.tracked.filter { if case .error = $0 { true } else { false } }.count
        }
        #expect(violations.isEmpty, "first violations: \(violations.prefix(5))")
        // The mutations must reach the decoders' checks, or this test proves little.
        #expect(
            decodingKinds.isSuperset(of: [.malformedPacket, .unexpectedPacket, .unsupportedProtocol, .missingContext]))
        #expect(trackerErrors > 100)
        #expect(decoded > 5000)
    }

    @Test("3,000 random byte strings in both directions")
    func randomBytes() {
        var generator = SplitMix(seed: 0xC0FF_EE00_3330_0003)
        var violations: [String] = []
        for iteration in 0..<3000 {
            let count = generator.int(in: 0...(iteration % 10 == 0 ? 400 : 40))
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Often start with a plausible header so more inputs get past the first check.
            if bytes.count >= 4, generator.int(in: 0...1) == 0 {
                bytes.replaceSubrange(0..<4, with: Wire.header(length: generator.int(in: 0...64), sequenceID: 0))
            }
            let direction: Direction = iteration % 2 == 0 ? .client : .server
            let (_, found) = Self.check(bytes, direction: direction, using: &generator)
            violations += found.map { "\($0) (iteration \(iteration))" }
        }
        #expect(violations.isEmpty, "first violations: \(violations.prefix(5))")
    }
}
