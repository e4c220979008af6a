import NIOCore
import SluicePostgres
import SluiceTestSupport

/// Parses a hex string such as "51 00 00 00 0e" (whitespace ignored) into bytes.
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer {
    ByteBuffer(bytes: bytes)
}

/// Hand-written wire bytes, straight from the protocol chapter's message formats; independent of the encoder under
/// test. `Wire.message("Q", Wire.cstring("SELECT 1;"))` is a Query.
enum Wire {
    static func cstring(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
    static func int16(_ value: Int16) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
    static func int32(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
    static func uint32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
    static func byte(_ letter: Unicode.Scalar) -> [UInt8] { [UInt8(ascii: letter)] }

    /// `type, len (counts itself), body`.
    static func message(_ type: Unicode.Scalar, _ body: [UInt8]...) -> [UInt8] {
        let body = body.flatMap { $0 }
        return [UInt8(ascii: type)] + int32(Int32(body.count + 4)) + body
    }

    /// An untyped startup packet: `len, code, rest`.
    static func startupPacket(code: UInt32, _ rest: [UInt8]...) -> [UInt8] {
        let rest = rest.flatMap { $0 }
        return int32(Int32(rest.count + 8)) + uint32(code) + rest
    }

    /// StartupMessage 3.0 with `pairs`, then the terminating NUL.
    static func startup(_ pairs: [(String, String)], code: UInt32 = 196_608) -> [UInt8] {
        startupPacket(code: code, pairs.flatMap { cstring($0.0) + cstring($0.1) } + [0])
    }

    /// A value with an Int32 length prefix; nil is NULL (-1).
    static func value(_ bytes: [UInt8]?) -> [UInt8] {
        guard let bytes else { return int32(-1) }
        return int32(Int32(bytes.count)) + bytes
    }
}

/// What feeding a stream to a framer produced.
struct FramingOutcome {
    var frames: [PostgresFrame] = []
    var error: PostgresProtocolError?
    /// The raw slices concatenated; must equal the consumed input.
    var rawConcatenation: [UInt8] = []
    /// Bytes consumed from the input.
    var consumed = 0
    /// Broken invariants seen along the way.
    var violations: [String] = []
    /// The most bytes left in the buffer after a drained `next` returned nil.
    var maxHeldAfterDrain = 0
}

/// Feeds `bytes` to `framer` in chunks whose sizes `chunkSize` picks (all at once when nil), draining the framer
/// after each chunk as a relay would, and checks that nil never consumes and raw slices tile the input.
func frame(
    _ bytes: [UInt8], with framer: inout PostgresFramer, chunkSize: (() -> Int)? = nil
) -> FramingOutcome {
    var outcome = FramingOutcome()
    var received = ByteBuffer()
    var fed = 0
    feeding: while fed < bytes.count {
        let chunk = min(bytes.count - fed, max(1, chunkSize?() ?? bytes.count))
        received.writeBytes(bytes[fed..<fed + chunk])
        fed += chunk
        while true {
            let before = received
            do {
                guard let frame = try framer.next(&received) else {
                    if received.readerIndex != before.readerIndex || received != before {
                        outcome.violations.append("nil result consumed bytes")
                    }
                    break
                }
                let consumed = received.readerIndex - before.readerIndex
                if consumed == 0 {
                    outcome.violations.append("a frame consumed nothing")
                }
                if before.getSlice(at: before.readerIndex, length: consumed) != frame.raw {
                    outcome.violations.append("raw is not the consumed bytes")
                }
                outcome.rawConcatenation += Array(frame.raw.readableBytesView)
                outcome.consumed += consumed
                outcome.frames.append(frame)
            } catch {
                if received != before {
                    outcome.violations.append("a throwing call consumed bytes")
                }
                outcome.error = error
                break feeding
            }
        }
        outcome.maxHeldAfterDrain = max(outcome.maxHeldAfterDrain, received.readableBytes)
        received.discardReadBytes()
    }
    if outcome.rawConcatenation != Array(bytes[0..<outcome.consumed]) {
        outcome.violations.append("raw slices do not re-concatenate to the consumed input")
    }
    return outcome
}

/// A frame with streamed pieces merged, so outcomes of different chunkings compare equal: a stream becomes one
/// `.stream` with its whole body.
enum LogicalFrame: Equatable {
    case startupPacket([UInt8])
    case message(UInt8, [UInt8])
    case stream(UInt8, length: Int, body: [UInt8], complete: Bool)
}

func logical(_ frames: [PostgresFrame]) -> [LogicalFrame] {
    var result: [LogicalFrame] = []
    for frame in frames {
        switch frame.kind {
        case .startupPacket(let body):
            result.append(.startupPacket(Array(body.readableBytesView)))
        case .message(let type, let body):
            result.append(.message(type, Array(body.readableBytesView)))
        case .streamStart(let type, let length, let head):
            result.append(.stream(type, length: length, body: Array(head.readableBytesView), complete: false))
        case .streamPart(let bytes, let isLast):
            if case .stream(let type, let length, let body, false)? = result.last {
                result[result.count - 1] = .stream(
                    type, length: length, body: body + Array(bytes.readableBytesView), complete: isLast)
            } else {
                result.append(.message(0, []))  // A part with no open stream: makes the comparison fail.
            }
        }
    }
    return result
}

/// Decodes every whole message of `frames` in `direction` (startup packets as frontend startup), returning one
/// description per frame or the first decoding error.
func decodeAll(_ frames: [PostgresFrame], direction: PostgresDirection) -> (messages: [String], error: String?) {
    var messages: [String] = []
    for frame in frames {
        do {
            switch frame.kind {
            case .startupPacket(let body):
                messages.append("\(try PostgresFrontendMessage(startupPacket: body))")
            case .message(let type, let body):
                switch direction {
                case .frontend: messages.append("\(try PostgresFrontendMessage(type: type, body: body))")
                case .backend: messages.append("\(try PostgresBackendMessage(type: type, body: body))")
                }
            case .streamStart(let type, _, let head):
                messages.append("\(try PostgresStreamHead(direction: direction, type: type, head: head))")
            case .streamPart:
                break
            }
        } catch {
            return (messages, "\(error)")
        }
    }
    return (messages, nil)
}

extension SplitMix {
    mutating func int(in range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }
}
