import NIOCore
import SluicePostgres
import SluiceTestSupport
import Testing

/// Hostile-input robustness: whatever the bytes, the framer and decoders only ever yield frames, messages or a
/// `PostgresProtocolError` (a crash or a trap fails the whole run), always make progress, and hand out raw slices
/// that re-concatenate to exactly the input consumed; and the outcome does not depend on how the input was split.
@Suite("PostgreSQL malformed input", .ownThread)
struct PostgresFuzzTests {
    /// Small, so that generated messages cross it and the streaming paths are exercised.
    static let cap = 4096

    private struct Outcome: Equatable {
        var frames: [LogicalFrame]
        var framingError: String?
        var errorKind: PostgresProtocolError.Kind?
        var messages: [String]
        var decodingError: String?
    }

    private static func run(
        _ bytes: [UInt8], direction: PostgresDirection, startup: Bool, chunkSize: (() -> Int)?
    ) -> (Outcome, [String]) {
        var framer = PostgresFramer(direction: direction, maxInspectedMessageBytes: cap)
        if !startup {
            framer.expectTypedMessages()
        }
        let framed = frame(bytes, with: &framer, chunkSize: chunkSize)
        var violations = framed.violations
        // Bounded buffering: after a drain, at most one incomplete capped message or startup packet is waiting.
        if framed.maxHeldAfterDrain > max(cap + 1, PostgresFramer.maxStartupPacketLength) {
            violations.append("held \(framed.maxHeldAfterDrain) bytes after draining")
        }
        let decoded = decodeAll(framed.frames, direction: direction)
        let outcome = Outcome(
            frames: logical(framed.frames), framingError: framed.error.map { "\($0)" }, errorKind: framed.error?.kind,
            messages: decoded.messages, decodingError: decoded.error)
        return (outcome, violations)
    }

    /// Runs `bytes` whole, in random chunks, and (when short) byte by byte; returns the one-shot outcome and every
    /// invariant violation.
    private static func check(
        _ bytes: [UInt8], direction: PostgresDirection, startup: Bool, using generator: inout SplitMix
    ) -> (Outcome, [String]) {
        let (oneShot, oneShotViolations) = run(bytes, direction: direction, startup: startup, chunkSize: nil)
        var chunker = SplitMix(seed: generator.next())
        let (chunked, chunkedViolations) = run(
            bytes, direction: direction, startup: startup, chunkSize: { chunker.int(in: 1...64) })
        var violations = oneShotViolations + chunkedViolations
        if chunked != oneShot {
            violations.append("chunked feeding disagrees with one-shot feeding")
        }
        if bytes.count <= 600 {
            let (single, singleViolations) = run(bytes, direction: direction, startup: startup, chunkSize: { 1 })
            violations += singleViolations
            if single != oneShot {
                violations.append(
                    "byte-at-a-time feeding disagrees with one-shot feeding: \(single) vs \(oneShot) for \(bytes)")
            }
        }
        return (oneShot, violations)
    }

    // MARK: Valid streams

    private static func text(_ generator: inout SplitMix) -> String {
        let words = ["SELECT 1", "", "héllo", "DROP TABLE t;", "日本語", "P_1", "portal", "x"]
        return words[generator.int(in: 0...words.count - 1)]
    }

    private static func large(_ generator: inout SplitMix) -> [UInt8] {
        [UInt8](repeating: UInt8(truncatingIfNeeded: generator.next()), count: generator.int(in: 4000...12_000))
    }

    static func randomFrontendStream(startup: Bool, using generator: inout SplitMix) -> [UInt8] {
        var bytes: [UInt8] = []
        if startup {
            switch generator.int(in: 0...3) {
            case 0: bytes += PostgresFramerTests.sslRequest
            case 1: bytes += PostgresFramerTests.gssEncRequest + PostgresFramerTests.sslRequest
            default: break
            }
            if generator.int(in: 0...9) == 0 {
                return bytes + Wire.startupPacket(code: 80_877_102, Wire.int32(1), [1, 2, 3, 4])
            }
            bytes += Wire.startup([("user", text(&generator)), ("database", "db"), ("application_name", "fuzz")])
        }
        for _ in 0..<generator.int(in: 1...8) {
            switch generator.int(in: 0...13) {
            case 0: bytes += Wire.message("Q", Wire.cstring(text(&generator)))
            case 1:
                bytes += Wire.message(
                    "P", Wire.cstring(text(&generator)), Wire.cstring(text(&generator)), Wire.int16(1), Wire.uint32(23))
            case 2:
                let value: [UInt8]? = generator.int(in: 0...2) == 0 ? large(&generator) : Array("42".utf8)
                bytes += Wire.message(
                    "B", Wire.cstring(""), Wire.cstring(text(&generator)), Wire.int16(0), Wire.int16(2),
                    Wire.value(value), Wire.value(nil), Wire.int16(1), Wire.int16(0))
            case 3: bytes += Wire.message("D", Wire.byte("S"), Wire.cstring(text(&generator)))
            case 4: bytes += Wire.message("E", Wire.cstring(""), Wire.int32(0))
            case 5: bytes += Wire.message("S")
            case 6: bytes += Wire.message("H")
            case 7: bytes += Wire.message("C", Wire.byte("P"), Wire.cstring(""))
            case 8:
                bytes += Wire.message("d", generator.int(in: 0...2) == 0 ? large(&generator) : Array("1\tx\n".utf8))
            case 9: bytes += Wire.message("c")
            case 10: bytes += Wire.message("f", Wire.cstring(text(&generator)))
            case 11:
                bytes += Wire.message(
                    "F", Wire.uint32(952), Wire.int16(0), Wire.int16(1), Wire.value([1, 2]), Wire.int16(0))
            case 12: bytes += Wire.message("p", Wire.cstring("SCRAM-SHA-256"), Wire.int32(3), [1, 2, 3])
            default: bytes += Wire.message("X")
            }
        }
        return bytes
    }

    static func randomBackendStream(using generator: inout SplitMix) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<generator.int(in: 1...8) {
            switch generator.int(in: 0...17) {
            case 0: bytes += PostgresBackendMessageTests.saslOverTLS
            case 1:
                let code = Int32([0, 2, 3, 5, 7, 8, 9, 11, 12, 6][generator.int(in: 0...9)])
                bytes += Wire.message("R", Wire.int32(code), [5, 6, 8, 11, 12].contains(code) ? [1, 2, 3, 4] : [])
            case 2: bytes += Wire.message("S", Wire.cstring("client_encoding"), Wire.cstring(text(&generator)))
            case 3: bytes += Wire.message("K", Wire.int32(7), [1, 2, 3, 4])
            case 4: bytes += Wire.message("Z", Wire.byte("T"))
            case 5: bytes += PostgresFramerTests.select1Reply
            case 6:
                let value: [UInt8] = generator.int(in: 0...2) == 0 ? large(&generator) : [0x31]
                bytes += Wire.message("D", Wire.int16(2), Wire.value(value), Wire.value(nil))
            case 7: bytes += PostgresBackendMessageTests.undefinedTable
            case 8: bytes += Wire.message("N", Wire.byte("M"), Wire.cstring(text(&generator)), [0])
            case 9: bytes += Wire.message("1") + Wire.message("2") + Wire.message("n") + Wire.message("s")
            case 10: bytes += Wire.message("t", Wire.int16(1), Wire.uint32(25))
            case 11: bytes += Wire.message("H", [0], Wire.int16(1), Wire.int16(0))
            case 12:
                bytes += Wire.message("d", generator.int(in: 0...2) == 0 ? large(&generator) : Array("a\n".utf8))
            case 13: bytes += Wire.message("c") + Wire.message("I") + Wire.message("3")
            case 14: bytes += Wire.message("A", Wire.int32(1), Wire.cstring("chan"), Wire.cstring(text(&generator)))
            case 15: bytes += Wire.message("v", Wire.int32(0), Wire.int32(1), Wire.cstring("_pq_.x"))
            case 16:
                bytes += Wire.message("V", Wire.value(generator.int(in: 0...3) == 0 ? large(&generator) : [1]))
            default: bytes += Wire.message("W", [1], Wire.int16(0))
            }
        }
        return bytes
    }

    private static func mutate(_ bytes: [UInt8], using generator: inout SplitMix) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<generator.int(in: 0...4) where !bytes.isEmpty {
            let index = generator.int(in: 0...bytes.count - 1)
            switch generator.int(in: 0...5) {
            case 0, 1: bytes[index] ^= UInt8.random(in: 1...255, using: &generator)
            case 2: bytes[index] = [0, 0xFF, 0x7F, 0x80][generator.int(in: 0...3)]  // boundary values, often lengths
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

    @Test("unmutated random streams frame and decode without error, whatever the split")
    func validStreams() {
        var generator = SplitMix(seed: 0x5157_0000_0000_0001)
        var violations: [String] = []
        var failures: [String] = []
        var streamed = 0
        for iteration in 0..<600 {
            let direction: PostgresDirection = iteration % 2 == 0 ? .frontend : .backend
            let startup = direction == .frontend && iteration % 4 == 0
            let bytes =
                direction == .frontend
                ? Self.randomFrontendStream(startup: startup, using: &generator)
                : Self.randomBackendStream(using: &generator)
            let (outcome, found) = Self.check(bytes, direction: direction, startup: startup, using: &generator)
            violations += found
            if let error = outcome.framingError ?? outcome.decodingError {
                failures.append(error)
            }
            for case .stream(_, _, _, let complete) in outcome.frames {
                streamed += 1
                if !complete {
                    failures.append("a streamed message did not end")
                }
            }
        }
        #expect(violations.isEmpty, "first violations: \(violations.prefix(5))")
        #expect(failures.isEmpty, "first failures: \(failures.prefix(5))")
        #expect(streamed > 50)
    }

    @Test("4,000 mutated valid streams")
    func mutatedStreams() {
        var generator = SplitMix(seed: 0xFEED_FACE_5157_0002)
        var violations: [String] = []
        var kinds: Set<PostgresProtocolError.Kind> = []
        var decodingErrors = 0
        var messages = 0
        for iteration in 0..<4000 {
            let direction: PostgresDirection = iteration % 2 == 0 ? .frontend : .backend
            let startup = direction == .frontend && iteration % 4 == 0
            let valid =
                direction == .frontend
                ? Self.randomFrontendStream(startup: startup, using: &generator)
                : Self.randomBackendStream(using: &generator)
            let bytes = Self.mutate(valid, using: &generator)
            let (outcome, found) = Self.check(bytes, direction: direction, startup: startup, using: &generator)
            violations += found.map { "\($0) (iteration \(iteration))" }
            if let kind = outcome.errorKind {
                kinds.insert(kind)
            }
            if outcome.decodingError != nil {
                decodingErrors += 1
            }
            messages += outcome.messages.count
        }
        #expect(violations.isEmpty, "first violations: \(violations.prefix(5))")
        // The mutations must reach every framing failure and the decoders' checks, or this test proves little.
        #expect(kinds.isSuperset(of: [.invalidLength, .messageTooLarge, .unknownMessageType, .unsupportedStartupCode]))
        #expect(decodingErrors > 200)
        #expect(messages > 5000)
    }

    @Test("3,000 random byte strings in every direction and phase")
    func randomBytes() {
        var generator = SplitMix(seed: 0xC0FF_EE00_5157_0003)
        var violations: [String] = []
        var kinds: Set<PostgresProtocolError.Kind> = []
        for iteration in 0..<3000 {
            let count = generator.int(in: 0...(iteration % 10 == 0 ? 400 : 40))
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let direction: PostgresDirection = iteration % 2 == 0 ? .frontend : .backend
            let startup = direction == .frontend && iteration % 4 == 0
            // Often start with a plausible header so more inputs get past the first check.
            if bytes.count >= 5, generator.int(in: 0...1) == 0 {
                if startup {
                    bytes.replaceSubrange(0..<4, with: Wire.int32(Int32(generator.int(in: 8...64))))
                } else {
                    bytes[0] = Array("QPBDESHCdcfFpXRKZTDCIEN123ntsGHWdAvV".utf8)[generator.int(in: 0...35)]
                    bytes.replaceSubrange(1..<5, with: Wire.int32(Int32(generator.int(in: 0...64))))
                }
            }
            let (outcome, found) = Self.check(bytes, direction: direction, startup: startup, using: &generator)
            violations += found.map { "\($0) (iteration \(iteration))" }
            if let kind = outcome.errorKind {
                kinds.insert(kind)
            }
        }
        #expect(violations.isEmpty, "first violations: \(violations.prefix(5))")
        #expect(kinds.isSuperset(of: [.invalidLength, .unknownMessageType, .unsupportedStartupCode]))
    }
}
