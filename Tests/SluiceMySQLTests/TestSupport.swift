import NIOCore
import SluiceMySQL
import SluiceTestSupport

/// Parses a hex string such as "01 00 00 00 0e" (whitespace ignored) into bytes.
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer {
    ByteBuffer(bytes: bytes)
}

/// One command (or handshake step) of a captured session: the packets each side sent, headers included, as hex.
struct CapturedStep {
    var name: String
    var client: [String]
    var server: [String]

    var clientPackets: [[UInt8]] { client.map(hexBytes) }
    var serverPackets: [[UInt8]] { server.map(hexBytes) }
    /// The payloads, headers dropped.
    var clientPayloads: [ByteBuffer] { clientPackets.map { buffer(Array($0.dropFirst(4))) } }
    var serverPayloads: [ByteBuffer] { serverPackets.map { buffer(Array($0.dropFirst(4))) } }
    /// The server's packets as one byte stream.
    var serverStream: [UInt8] { serverPackets.flatMap { $0 } }
    var clientStream: [UInt8] { clientPackets.flatMap { $0 } }
}

extension [CapturedStep] {
    /// The step with this name; a missing name is a bug in the test, so it fails loudly through an empty step.
    subscript(named name: String) -> CapturedStep {
        first { $0.name == name } ?? CapturedStep(name: "missing: \(name)", client: [], server: [])
    }
}

/// Hand-written wire bytes, independent of the encoder under test. Little-endian throughout.
enum Wire {
    static func uint16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func uint32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func uint64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    static func cstring(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

    static func lenenc(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0..<0xFB: [UInt8(value)]
        case 0xFB...0xFFFF: [0xFC] + uint16(UInt16(value))
        case 0x1_0000...0xFF_FFFF: [0xFD] + Array(uint32(UInt32(value)).prefix(3))
        default: [0xFE] + uint64(value)
        }
    }

    static func lenencString(_ text: String) -> [UInt8] {
        lenenc(UInt64(text.utf8.count)) + Array(text.utf8)
    }

    /// One packet: `len:u24, seq, payload` (the payload must be shorter than 2^24).
    static func packet(_ sequenceID: UInt8, _ payload: [UInt8]...) -> [UInt8] {
        let payload = payload.flatMap { $0 }
        return Array(uint32(UInt32(payload.count)).prefix(3)) + [sequenceID] + payload
    }

    /// A packet header alone.
    static func header(length: Int, sequenceID: UInt8) -> [UInt8] {
        Array(uint32(UInt32(length)).prefix(3)) + [sequenceID]
    }

    /// OK: header, affected rows, last insert id, status, warnings (PROTOCOL_41, no info).
    static func ok(
        _ sequenceID: UInt8, affected: UInt64 = 0, insertID: UInt64 = 0, status: UInt16 = 0x0002, header: UInt8 = 0
    ) -> [UInt8] {
        packet(sequenceID, [header], lenenc(affected), lenenc(insertID), uint16(status), uint16(0))
    }

    /// EOF: 0xFE, warnings, status.
    static func eof(_ sequenceID: UInt8, status: UInt16 = 0x0002) -> [UInt8] {
        packet(sequenceID, [0xFE], uint16(0), uint16(status))
    }

    /// A column definition whose content does not matter to the tracker.
    static func columnDefinition(_ sequenceID: UInt8, name: String = "c") -> [UInt8] {
        packet(
            sequenceID, lenencString("def"), lenencString(""), lenencString(""), lenencString(""), lenencString(name),
            lenencString(""), [0x0C], uint16(63), uint32(11), [0x03], uint16(0), [0], uint16(0))
    }

    /// A text row of string values (nil is NULL).
    static func textRow(_ sequenceID: UInt8, _ values: [String?]) -> [UInt8] {
        packet(sequenceID, values.flatMap { $0.map(lenencString) ?? [0xFB] })
    }
}

/// What feeding a stream to a framer produced.
struct FramingOutcome {
    var frames: [MySQLFrame] = []
    var error: MySQLProtocolError?
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
/// after each chunk as a relay would, and checks that nil and throwing calls never consume and that raw slices tile
/// the input.
func frame(_ bytes: [UInt8], with framer: inout MySQLPacketFramer, chunkSize: (() -> Int)? = nil) -> FramingOutcome {
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
/// `.stream` with its whole payload and the sequence ids of its packets.
enum LogicalFrame: Equatable {
    case payload([UInt8], first: UInt8, last: UInt8)
    case stream([UInt8], first: UInt8, last: UInt8, complete: Bool)
}

func logical(_ frames: [MySQLFrame]) -> [LogicalFrame] {
    var result: [LogicalFrame] = []
    for frame in frames {
        switch frame.kind {
        case .payload(let payload):
            result.append(
                .payload(Array(payload.readableBytesView), first: frame.sequenceID, last: frame.lastSequenceID))
        case .streamStart(let head):
            result.append(
                .stream(
                    Array(head.readableBytesView), first: frame.sequenceID, last: frame.lastSequenceID,
                    complete: false))
        case .streamPart(let bytes, let isLast):
            if case .stream(let body, let first, _, false)? = result.last {
                result[result.count - 1] = .stream(
                    body + Array(bytes.readableBytesView), first: first, last: frame.lastSequenceID, complete: isLast)
            } else {
                result.append(.payload([], first: 0, last: 0))  // A part with no open stream: makes comparisons fail.
            }
        }
    }
    return result
}

/// Feeds every packet of `packets` (whole wire packets) to a fresh tracker and returns the steps.
func track(
    _ packets: [[UInt8]], tracker: inout MySQLResponseTracker
) throws -> [MySQLResponseTracker.Step] {
    var framer = MySQLPacketFramer()
    var input = buffer(packets.flatMap { $0 })
    var steps: [MySQLResponseTracker.Step] = []
    while let frame = try framer.next(&input) {
        steps.append(try tracker.receive(frame))
    }
    return steps
}

/// The kind of the `MySQLProtocolError` `body` throws, or nil when it does not throw.
func kind(_ body: () throws -> Void) -> MySQLProtocolError.Kind? {
    do {
        try body()
        return nil
    } catch let error as MySQLProtocolError {
        return error.kind
    } catch {
        return nil
    }
}

/// The reason of the `MySQLProtocolError` `body` throws, or nil when it does not throw.
func reason(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as MySQLProtocolError {
        return error.reason
    } catch {
        return "\(error)"
    }
}

extension SplitMix {
    mutating func int(in range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }
}
