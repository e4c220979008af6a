import NIOCore
import SluiceHTTP
import SluiceTestSupport
import Testing

/// Hostile-input robustness: the parser and assembler must never crash, and every failure must be one of the close
/// codes this module promises (RFC 6455 §7.4.1).
@Suite("WebSocket malformed input", .ownThread)
struct WebSocketFuzzTests {
    private static let allowedCodes: Set<UInt16> = [1002, 1007, 1009]
    private static let maxFrameSize = 4096
    private static let maxMessageSize = 8192

    /// What happened to one input, comparable between one-shot and chunked feeding.
    private struct Outcome: Equatable {
        var frames: [WebSocketFrame] = []
        var parserError: UInt16?
        var assemblerErrors: Set<UInt16> = []
        var violations: [String] = []
    }

    /// Feeds `bytes` in chunks (sizes from `generator`, or all at once) and checks the parser's invariants.
    private static func run(
        _ bytes: [UInt8],
        expectMasked: Bool,
        chunked generator: inout SplitMix64?
    ) -> Outcome {
        var outcome = Outcome()
        var parser = WebSocketFrameParser(maxFrameSize: maxFrameSize, expectMasked: expectMasked)
        var assembler = WebSocketMessageAssembler(maxMessageSize: maxMessageSize)
        var received = ByteBuffer()
        var fed = 0
        feeding: while fed < bytes.count || fed == 0 {
            var chunk = bytes.count - fed
            if var rng = generator {
                chunk = min(chunk, Int.random(in: 1...8, using: &rng))
                generator = rng
            }
            received.writeBytes(bytes[fed..<fed + chunk])
            fed += chunk
            while true {
                let before = received
                do {
                    guard let frame = try parser.parse(&received) else {
                        if received.readerIndex != before.readerIndex {
                            outcome.violations.append("nil result consumed bytes")
                        }
                        break
                    }
                    let consumed = received.readerIndex - before.readerIndex
                    // Parsing is the exact inverse of encoding on the inputs it accepts (minimal lengths only).
                    let wire = before.getSlice(at: before.readerIndex, length: consumed)
                    if wire != encoded([frame]) {
                        outcome.violations.append("frame does not re-encode to its wire bytes")
                    }
                    outcome.frames.append(frame)
                    feedAssembler(frame, &assembler, &outcome)
                } catch {
                    if !allowedCodes.contains(error.closeCode) {
                        outcome.violations.append("parser threw \(error)")
                    }
                    outcome.parserError = error.closeCode
                    break feeding
                }
            }
            if bytes.isEmpty { break }
        }
        return outcome
    }

    private static func feedAssembler(
        _ frame: WebSocketFrame,
        _ assembler: inout WebSocketMessageAssembler,
        _ outcome: inout Outcome
    ) {
        do {
            if case .control(let control) = try assembler.push(frame), control.opcode == .close {
                _ = try WebSocketClose(payload: control.payload)
            }
        } catch {
            if !allowedCodes.contains(error.closeCode) {
                outcome.violations.append("assembler or close parsing threw \(error)")
            }
            outcome.assemblerErrors.insert(error.closeCode)
        }
    }

    /// Checks one input both in one piece and in random small chunks; returns any invariant violations.
    private static func check(_ bytes: [UInt8], expectMasked: Bool, using generator: inout SplitMix64) -> [String] {
        var oneShotGenerator: SplitMix64? = nil
        let oneShot = run(bytes, expectMasked: expectMasked, chunked: &oneShotGenerator)
        var chunkGenerator: SplitMix64? = SplitMix64(seed: generator.next())
        let chunked = run(bytes, expectMasked: expectMasked, chunked: &chunkGenerator)
        var violations = oneShot.violations + chunked.violations
        if oneShot.frames != chunked.frames || oneShot.parserError != chunked.parserError {
            violations.append("chunked feeding disagrees with one-shot feeding")
        }
        return violations
    }

    private static func randomValidFrames(expectMasked: Bool, using generator: inout SplitMix64) -> [UInt8] {
        let texts = ["Hello", "héllo wörld", "€😀", "", String(repeating: "ab", count: 80), "日本語のテキスト"]
        var frames: [WebSocketFrame] = []
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            switch Int.random(in: 0..<5, using: &generator) {
            case 0:
                let bytes = Array(texts[Int.random(in: 0..<texts.count, using: &generator)].utf8)
                let split = Int.random(in: 0...bytes.count, using: &generator)
                frames.append(WebSocketFrame(fin: false, opcode: .text, payload: buffer(Array(bytes[..<split]))))
                frames.append(WebSocketFrame(opcode: .ping, payload: buffer([1, 2])))
                frames.append(WebSocketFrame(opcode: .continuation, payload: buffer(Array(bytes[split...]))))
            case 1:
                let size = [0, 5, 125, 126, 300, 5000][Int.random(in: 0..<6, using: &generator)]
                frames.append(WebSocketFrame(opcode: .binary, payload: buffer(patternBytes(count: min(size, 4096)))))
            case 2:
                frames.append(WebSocketFrame(opcode: .text, payload: ByteBuffer(string: texts[1])))
            case 3:
                frames.append(WebSocketFrame(opcode: .pong, payload: buffer(patternBytes(count: 125))))
            default:
                let payload = WebSocketFrame.closePayload(code: 1000, reason: "ok")
                frames.append(WebSocketFrame(opcode: .close, payload: payload))
            }
        }
        for index in frames.indices {
            frames[index].maskKey = expectMasked ? generator.next() : nil
        }
        return Array(encoded(frames).readableBytesView)
    }

    private static func mutate(_ bytes: [UInt8], using generator: inout SplitMix64) -> [UInt8] {
        var bytes = bytes
        let flips = Int.random(in: 0...4, using: &generator)
        for _ in 0..<flips where !bytes.isEmpty {
            let index = Int.random(in: 0..<min(bytes.count, 24), using: &generator)  // mostly headers
            let anywhere = Int.random(in: 0..<bytes.count, using: &generator)
            bytes[Bool.random(using: &generator) ? index : anywhere] ^= UInt8.random(in: 1...255, using: &generator)
        }
        if flips == 0 || Bool.random(using: &generator) {
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &generator))
        }
        return bytes
    }

    @Test("5,000 random byte strings")
    func randomBytes() {
        var generator = SplitMix64(seed: 0xC0FF_EE00_1234_5678)
        var violations: [String] = []
        var codesSeen: Set<UInt16> = []
        for iteration in 0..<5000 {
            let count = Int.random(in: 0...(iteration % 10 == 0 ? 300 : 40), using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Half the time, start with a plausible first byte so more inputs reach the length and mask logic.
            if !bytes.isEmpty, Bool.random(using: &generator) {
                bytes[0] = [0x81, 0x82, 0x01, 0x80, 0x88, 0x89, 0x8A][Int.random(in: 0..<7, using: &generator)]
            }
            let expectMasked = Bool.random(using: &generator)
            violations += Self.check(bytes, expectMasked: expectMasked, using: &generator)
            var none: SplitMix64? = nil
            if let code = Self.run(bytes, expectMasked: expectMasked, chunked: &none).parserError {
                codesSeen.insert(code)
            }
        }
        #expect(violations.count == 0, "first violations: \(violations.prefix(5))")
        #expect(codesSeen.contains(1002))
    }

    @Test("5,000 mutated valid frame streams")
    func mutatedFrames() {
        var generator = SplitMix64(seed: 0xFEED_FACE_0BAD_F00D)
        var violations: [String] = []
        var framesSeen = 0
        var codesSeen: Set<UInt16> = []
        for _ in 0..<5000 {
            let expectMasked = Bool.random(using: &generator)
            let valid = Self.randomValidFrames(expectMasked: expectMasked, using: &generator)
            let bytes = Self.mutate(valid, using: &generator)
            violations += Self.check(bytes, expectMasked: expectMasked, using: &generator)
            var none: SplitMix64? = nil
            let outcome = Self.run(bytes, expectMasked: expectMasked, chunked: &none)
            framesSeen += outcome.frames.count
            codesSeen.formUnion(outcome.assemblerErrors)
            if let code = outcome.parserError {
                codesSeen.insert(code)
            }
        }
        #expect(violations.count == 0, "first violations: \(violations.prefix(5))")
        #expect(framesSeen > 1000)
        // The mutations must actually reach every failure path, or this test proves little.
        #expect(codesSeen == Self.allowedCodes)
    }

    @Test("unmutated valid streams parse and assemble without error")
    func validStreams() {
        var generator = SplitMix64(seed: 42)
        var failures = 0
        for _ in 0..<500 {
            let expectMasked = Bool.random(using: &generator)
            var input = buffer(Self.randomValidFrames(expectMasked: expectMasked, using: &generator))
            var parser = WebSocketFrameParser(maxFrameSize: Self.maxFrameSize, expectMasked: expectMasked)
            var assembler = WebSocketMessageAssembler(maxMessageSize: Self.maxMessageSize)
            do {
                while let frame = try parser.parse(&input) {
                    _ = try assembler.push(frame)
                }
                if input.readableBytes != 0 || assembler.isMessageInProgress {
                    failures += 1
                }
            } catch {
                failures += 1
            }
        }
        #expect(failures == 0)
    }
}
