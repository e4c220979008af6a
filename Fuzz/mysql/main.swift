import FuzzSupport
import NIOCore

// One direction of a MySQL connection through `MySQLPacketFramer` and the decoders the inspector uses: the first
// input byte chooses the direction, the capabilities and the inspection cap; the rest is the byte stream. Client
// payloads decode as the handshake response (the first) and commands; server payloads as the greeting (the first)
// and a COM_QUERY's response. However the stream is cut into reads, the outcome must be the same, raw slices must
// tile the consumed bytes, and nothing may trap.

struct Outcome: Equatable {
    var frames: [String] = []
    var error: String?
}

func run(_ bytes: ArraySlice<UInt8>, plan: [Int], fromClient: Bool, capabilities: MySQLCapabilities, cap: Int) -> Outcome {
    var framer = MySQLPacketFramer(maxInspectedPayloadBytes: cap)
    var tracker = MySQLResponseTracker(command: .query(sql: "", attributes: []), capabilities: capabilities)
    var outcome = Outcome()
    var received = ByteBuffer()
    var fed = bytes.startIndex
    var consumed = 0
    var raw: [UInt8] = []
    var first = true
    var streamed = 0
    feeding: for size in plan {
        received.writeBytes(bytes[fed..<(fed + size)])
        fed += size
        while true {
            let before = received.readableBytes
            let frame: MySQLFrame?
            do {
                frame = try framer.next(&received)
            } catch {
                outcome.error = error.description
                break feeding
            }
            guard let frame else {
                require(received.readableBytes == before, "nil consumed bytes")
                break
            }
            consumed += before - received.readableBytes
            raw += frame.raw.readableBytesView
            switch frame.kind {
            case .payload(let payload):
                var decoded: String
                if fromClient {
                    decoded = first
                        ? (try? MySQLClientHandshake(payload: payload)).map { "\($0)" } ?? "undecodable"
                        : (try? MySQLCommand(payload: payload, capabilities: capabilities)).map { "\($0)" } ?? "undecodable"
                    if case .statementExecute? = try? MySQLCommand(payload: payload, capabilities: capabilities) {
                        decoded += (try? MySQLCommand.decodeExecute(payload, parameterCount: Int(payload.readableBytes % 5), capabilities: capabilities))
                            .map { " \($0.parameterTexts)" } ?? " undecodable"
                    }
                } else if first {
                    decoded = (try? MySQLHandshake.decodeGreeting(payload)).map { "\($0)" } ?? "undecodable"
                    if let rewritten = try? MySQLHandshake.rewritingCapabilities(of: payload, clearing: .clearedBySluice) {
                        require(rewritten.readableBytes == payload.readableBytes, "a rewritten greeting changed length")
                    }
                } else if !tracker.isComplete {
                    decoded = (try? tracker.receive(frame)).map { "\($0)" } ?? "tracker error"
                } else {
                    decoded = "after the response"
                }
                outcome.frames.append("\(frame.sequenceID) \(decoded)")
                first = false
            case .streamStart(let head):
                outcome.frames.append("stream \(frame.sequenceID) \(head.readableBytes)")
                first = false
            case .streamPart(let bytes, let isLast):
                streamed += bytes.readableBytes
                if isLast {
                    outcome.frames.append("streamed \(streamed)")
                    streamed = 0
                }
            }
        }
    }
    require(raw == Array(bytes[bytes.startIndex..<(bytes.startIndex + consumed)]), "raw slices do not tile the input")
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    guard let selector = input.bytes.first else { return 0 }
    let fromClient = selector & 1 == 0
    let base: MySQLCapabilities = [.protocol41, .secureConnection, .pluginAuth, .multiResults, .multiStatements]
    let capabilities = base.union(selector & 2 == 0 ? [] : [.deprecateEOF]).union(selector & 4 == 0 ? [] : [.queryAttributes])
    let cap = [4096, 1 << 16][Int(selector >> 3) & 1]
    let stream = input.bytes.dropFirst()
    let feedings = FuzzInput(Array(stream)).feedings(byteByByteLimit: 256)
    let whole = run(stream, plan: feedings[0], fromClient: fromClient, capabilities: capabilities, cap: cap)
    for plan in feedings.dropFirst() {
        let pieces = run(stream, plan: plan, fromClient: fromClient, capabilities: capabilities, cap: cap)
        require(pieces == whole, "fed in \(plan.count) pieces: \(pieces)\nwhole: \(whole)")
    }
    return 0
}

runFuzzer { testOneInput($0, $1) }
