import FuzzSupport
import NIOCore

// One direction of a PostgreSQL connection through `PostgresFramer` and the message decoders, as the inspector
// reads it. The first input byte chooses the direction (frontend starts with startup packets) and the inspection cap;
// the rest is the byte stream. However the stream is cut into reads, the frames, their decoded messages and the
// error must be the same, the raw slices must tile the consumed bytes, and nothing may trap.

/// What one direction's bytes came to, for comparing feedings.
struct Outcome: Equatable {
    var frames: [String] = []
    var error: String?
}

func run(_ bytes: ArraySlice<UInt8>, plan: [Int], direction: PostgresDirection, cap: Int) -> Outcome {
    var framer = PostgresFramer(direction: direction, maxInspectedMessageBytes: cap)
    var outcome = Outcome()
    var received = ByteBuffer()
    var fed = bytes.startIndex
    var consumed = 0
    var raw: [UInt8] = []
    var streamed: [UInt8] = []
    feeding: for size in plan {
        received.writeBytes(bytes[fed..<(fed + size)])
        fed += size
        while true {
            let before = received.readableBytes
            let frame: PostgresFrame?
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
            case .startupPacket(let body):
                outcome.frames.append("startup " + ((try? PostgresFrontendMessage(startupPacket: body)).map { "\($0)" } ?? "undecodable"))
            case .message(let type, let body):
                let decoded: String
                switch direction {
                case .frontend: decoded = (try? PostgresFrontendMessage(type: type, body: body)).map { "\($0)" } ?? "undecodable"
                case .backend: decoded = (try? PostgresBackendMessage(type: type, body: body)).map { "\($0)" } ?? "undecodable"
                }
                outcome.frames.append("\(type) \(decoded)")
            case .streamStart(let type, let length, let head):
                let decoded = (try? PostgresStreamHead(direction: direction, type: type, head: head)).map { "\($0)" } ?? "undecodable"
                outcome.frames.append("stream \(type) \(length) \(decoded)")
            case .streamPart(let bytes, let isLast):
                // Parts are cut where reads end: only their bytes, joined, are the same however the stream came.
                streamed += bytes.readableBytesView
                if isLast {
                    outcome.frames.append("streamed \(streamed.count)")
                    streamed = []
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
    let direction: PostgresDirection = selector & 1 == 0 ? .frontend : .backend
    let cap = [4096, 8192, 1 << 16, 16 << 20][Int(selector >> 1) & 3]
    let stream = input.bytes.dropFirst()
    let feedings = FuzzInput(Array(stream)).feedings(byteByByteLimit: 256)
    let whole = run(stream, plan: feedings[0], direction: direction, cap: cap)
    for plan in feedings.dropFirst() {
        let pieces = run(stream, plan: plan, direction: direction, cap: cap)
        require(pieces == whole, "fed in \(plan.count) pieces: \(pieces)\nwhole: \(whole)")
    }
    return 0
}

runFuzzer { testOneInput($0, $1) }
