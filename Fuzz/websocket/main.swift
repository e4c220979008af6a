import FuzzSupport
import NIOCore

// WebSocket frames (RFC 6455 §5.2) through `WebSocketFrameParser`, then `WebSocketMessageAssembler` and
// `WebSocketClose`, as the relay reads one direction. The first input byte chooses the direction and the limits;
// the rest is the byte stream.

/// What one direction's bytes came to, for comparing feedings.
struct Outcome: Equatable {
    var frames: [WebSocketFrame] = []
    var results: [WebSocketAssemblyResult] = []
    /// The close code of the error that ended the stream, if one did.
    var error: UInt16?
}

let closeCodes: Set<UInt16> = [
    WebSocketProtocolError.protocolErrorCode, WebSocketProtocolError.invalidPayloadDataCode,
    WebSocketProtocolError.messageTooBigCode,
]

func isUTF8(_ buffer: ByteBuffer) -> Bool {
    buffer.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) != nil }
}

/// Feeds the stream in pieces of `plan`'s sizes, parsing frames as the relay does: until the parser needs more
/// bytes, then waiting for the next piece.
func run(_ bytes: ArraySlice<UInt8>, plan: [Int], expectMasked: Bool, maxFrameSize: Int, maxMessageSize: Int) -> Outcome
{
    var parser = WebSocketFrameParser(maxFrameSize: maxFrameSize, expectMasked: expectMasked)
    var assembler = WebSocketMessageAssembler(maxMessageSize: maxMessageSize)
    var outcome = Outcome()
    var received = ByteBuffer()
    var fed = bytes.startIndex
    var fragments: [UInt8] = []
    for size in plan {
        received.writeBytes(bytes[fed..<(fed + size)])
        fed += size
        while true {
            let before = received
            let frame: WebSocketFrame
            do {
                guard let parsed = try parser.parse(&received) else {
                    require(received.readerIndex == before.readerIndex, "nil consumed bytes")
                    break
                }
                frame = parsed
            } catch {
                require(closeCodes.contains(error.closeCode), "parser threw \(error)")
                outcome.error = error.closeCode
                return outcome
            }
            let wire = before.getSlice(at: before.readerIndex, length: received.readerIndex - before.readerIndex)
            check(frame, wire: wire, expectMasked: expectMasked, maxFrameSize: maxFrameSize)
            outcome.frames.append(frame)

            let wasInProgress = assembler.isMessageInProgress
            if frame.opcode == .text || frame.opcode == .binary { fragments = [] }
            if frame.opcode == .text || frame.opcode == .binary || frame.opcode == .continuation {
                fragments += frame.payload.readableBytesView
            }
            do {
                guard let result = try assembler.push(frame) else {
                    require(assembler.isMessageInProgress && !frame.fin, "a final frame left no message")
                    require(
                        assembler.bufferedBytes == fragments.count && fragments.count <= maxMessageSize,
                        "buffered \(assembler.bufferedBytes)")
                    continue
                }
                check(
                    result, frame: frame, fragments: fragments, wasInProgress: wasInProgress,
                    maxMessageSize: maxMessageSize)
                outcome.results.append(result)
            } catch {
                require(closeCodes.contains(error.closeCode), "assembler threw \(error)")
                require(
                    !assembler.isMessageInProgress && assembler.bufferedBytes == 0,
                    "the assembler kept a message after \(error)")
                if error.closeCode == WebSocketProtocolError.invalidPayloadDataCode, frame.opcode != .close {
                    require(!isUTF8(ByteBuffer(bytes: fragments)), "a valid UTF-8 text message refused")
                }
                outcome.error = error.closeCode
                return outcome
            }
        }
    }
    return outcome
}

/// A frame the parser accepted is one the RFC allows in this direction, within the limit, and exactly the bytes it
/// consumed: encoding it again gives them back (lengths are minimal, so there is one encoding).
func check(_ frame: WebSocketFrame, wire: ByteBuffer?, expectMasked: Bool, maxFrameSize: Int) {
    require(frame.rsv == 0, "reserved bits \(frame.rsv)")
    require((frame.maskKey != nil) == expectMasked, "masking")
    require(frame.payload.readableBytes <= maxFrameSize, "payload \(frame.payload.readableBytes) over \(maxFrameSize)")
    if frame.opcode.isControl { require(frame.fin && frame.payload.readableBytes <= 125, "control frame \(frame)") }
    var encoded = ByteBuffer()
    WebSocketFrameEncoder.encode(frame, into: &encoded)
    require(wire == encoded, "frame does not encode to the bytes it was read from")
}

func check(
    _ result: WebSocketAssemblyResult, frame: WebSocketFrame, fragments: [UInt8], wasInProgress: Bool,
    maxMessageSize: Int
) {
    switch result {
    case .control(let control):
        require(control == frame && frame.opcode.isControl, "control result \(control)")
        if control.opcode == .close {
            // Only a Close the RFC allows is passed on, and its body says the same when built again.
            do {
                let close = try WebSocketClose(payload: control.payload)
                if let code = close.code {
                    require(WebSocketClose.isValidOnWire(code), "close code \(code)")
                    require(
                        WebSocketFrame.closePayload(code: code, reason: close.reason) == control.payload,
                        "close body does not round-trip")
                } else {
                    require(control.payload.readableBytes == 0, "a close with a body but no code")
                }
            } catch {
                require(false, "the assembler passed on a Close that WebSocketClose refuses: \(error)")
            }
        }
    case .message(let message):
        require(frame.fin && !frame.opcode.isControl, "a message from \(frame)")
        require(Array(message.payload.readableBytesView) == fragments, "the message is not its fragments joined")
        require(message.payload.readableBytes <= maxMessageSize, "message over the limit")
        require(
            message.frameCount >= 1 && (message.frameCount == 1) == !wasInProgress, "frame count \(message.frameCount)")
        require(message.opcode == .text || message.opcode == .binary, "message opcode \(message.opcode)")
        if message.opcode == .text { require(isUTF8(message.payload), "a text message that is not UTF-8") }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    guard let selector = input.bytes.first else { return 0 }
    let expectMasked = selector & 1 == 1
    let maxFrameSize = [0, 125, 4096, 1 << 20][Int(selector >> 1) & 3]
    let maxMessageSize = [0, 200, 8192, 1 << 20][Int(selector >> 3) & 3]
    let stream = input.bytes.dropFirst()

    // The validator is the stdlib's on any bytes, and WebSocketClose takes any body without trapping.
    require(
        UTF8Validator.isValid(ByteBuffer(bytes: stream)) == isUTF8(ByteBuffer(bytes: stream)),
        "UTF8Validator disagrees with the stdlib")
    if let close = try? WebSocketClose(payload: ByteBuffer(bytes: stream)), let code = close.code {
        require(WebSocketClose.isValidOnWire(code) && stream.count >= 2, "close \(code)")
    }

    let feedings = FuzzInput(Array(stream)).feedings(byteByByteLimit: 256)
    func fed(_ plan: [Int]) -> Outcome {
        run(stream, plan: plan, expectMasked: expectMasked, maxFrameSize: maxFrameSize, maxMessageSize: maxMessageSize)
    }
    let whole = fed(feedings[0])
    for plan in feedings.dropFirst() {
        let pieces = fed(plan)
        require(pieces == whole, "fed in \(plan.count) pieces: \(pieces)\nwhole: \(whole)")
    }
    return 0
}

runFuzzer { testOneInput($0, $1) }
