// sluice-writer-bench: the store writer alone, fed recorded HTTP exchanges as fast as it takes them.
//
// Under load the writer's batches fill by count (`batchSize` events) long before its 50 ms deadline, which a
// one-request-at-a-time profile never shows: there each batch holds an exchange or two and the per-commit costs
// dominate. This feeds the writer the five events the reverse proxy records for one `GET /1k.bin` from nginx (the
// flow opening, the request head, the response head, the body, the close), with no sockets and no event loops, and
// prints what the writer spent per exchange. With `chunks`, it feeds raw TCP chunks instead (a flow per 1,000
// chunks, directions alternating, as a request-response protocol makes them), and a unit is one chunk. Its CPU time
// is as noisy as the machine; run it under `valgrind --tool=callgrind --separate-threads=yes` for instruction counts
// that repeat exactly (the writer is the thread whose entry is `StoreWriter.run`).
//
// Usage: sluice-writer-bench [http|chunks] [UNITS=20000] [BYTES=1024] [DIR]
//   BYTES: the body of each exchange, or the size of each chunk.
//   DIR: the data directory to write (default: a new one under the temporary directory, removed at the end).
// Prints one line of key=value: shape, units, seconds, units_per_s, writer_cpu_us_per_unit, producer_cpu_us_per_unit,
// store_bytes_per_unit, log_bytes_per_unit.

import Foundation
import Logging
import SluiceModel
import SluiceStore

#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())
let shape = arguments.first ?? "http"
guard shape == "http" || shape == "chunks", let units = Int(arguments.count > 1 ? arguments[1] : "20000"), units > 0,
    let bodyBytes = Int(arguments.count > 2 ? arguments[2] : "1024"), bodyBytes >= 0
else {
    print("usage: sluice-writer-bench [http|chunks] [UNITS=20000] [BYTES=1024] [DIR]")
    exit(2)
}
let ownsDirectory = arguments.count < 4
let path = arguments.count > 3 ? arguments[3] : NSTemporaryDirectory() + "sluice-writer-bench-\(UUID().uuidString)"
let directory = DataDirectory(path: path)

/// CPU seconds of this process, and of the calling thread.
func cpuSeconds(_ clock: clockid_t) -> Double {
    var time = timespec()
    clock_gettime(clock, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Bytes of the regular files under `path`.
func bytes(under path: String, matching suffix: String) -> Int {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total = 0
    while let name = walker.nextObject() as? String {
        guard name.hasSuffix(suffix) else { continue }
        total += (try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? Int) ?? 0
    }
    return total
}

/// The events of one exchange, as `FlowRecorder` and the HTTP handler publish them for nginx serving a file.
func exchange(_ id: Int64, body: Data, at time: Date) -> [ProxyEvent] {
    let flow = FlowID(id)
    let client = Endpoint(host: "127.0.0.1", port: 40000 + Int(id % 20000))
    let server = Endpoint(host: "127.0.0.1", port: 28080)
    let requestHeaders = [
        HeaderField(name: "Host", value: "127.0.0.1:28080"), HeaderField(name: "X-Forwarded-For", value: "127.0.0.1"),
        HeaderField(name: "X-Forwarded-Proto", value: "http"), HeaderField(name: "X-Forwarded-Host", value: "127.0.0.1:15995"),
    ]
    let responseHeaders = [
        HeaderField(name: "Server", value: "nginx/1.22.1"), HeaderField(name: "Date", value: "Sun, 06 Dec 2026 11:11:34 GMT"),
        HeaderField(name: "Content-Type", value: "application/octet-stream"), HeaderField(name: "Content-Length", value: "\(body.count)"),
        HeaderField(name: "Last-Modified", value: "Sun, 06 Dec 2026 08:02:47 GMT"), HeaderField(name: "Connection", value: "keep-alive"),
        HeaderField(name: "ETag", value: "\"6b1516a7-400\""), HeaderField(name: "Accept-Ranges", value: "bytes"),
    ]
    return [
        .flowOpened(
            FlowOpened(
                flowID: flow, kind: .http, listener: "reverse+http://127.0.0.1:15995=>http://127.0.0.1:28080", client: client,
                server: server, time: time
            )
        ),
        .httpRequest(
            HTTPRequestStarted(flowID: flow, time: time, method: "GET", url: "http://127.0.0.1:28080/1k.bin", version: "HTTP/1.1", headers: requestHeaders)
        ),
        .httpResponse(
            HTTPResponseStarted(
                flowID: flow, time: time, status: 200, reason: "OK", version: "HTTP/1.1", headers: responseHeaders,
                timings: HTTPTimings(firstByte: 0.4)
            )
        ),
        .message(Message(flowID: flow, sequence: 0, direction: .down, time: time, size: body.count, payload: body, kind: .body)),
        .flowClosed(
            FlowClosed(
                flowID: flow, time: time, bytesUp: 135, bytesDown: Int64(230 + body.count), state: .closed, error: nil,
                payloadTruncated: false, headBytesUp: 135, headBytesDown: 230
            )
        ),
    ]
}

/// One chunk of a raw TCP flow of 1,000 chunks: the opening before the first, the close after the last.
func chunk(_ index: Int64, payload: Data, at time: Date) -> [ProxyEvent] {
    let flow = FlowID(index / 1000 + 1)
    let sequence = index % 1000
    var events: [ProxyEvent] = []
    if sequence == 0 {
        events.append(
            .flowOpened(
                FlowOpened(
                    flowID: flow, kind: .tcp, listener: "tcp://127.0.0.1:27001=>127.0.0.1:27000",
                    client: Endpoint(host: "127.0.0.1", port: 40000), server: Endpoint(host: "127.0.0.1", port: 27000), time: time
                )
            )
        )
    }
    let direction: Direction = sequence % 2 == 0 ? .up : .down
    events.append(.message(Message(flowID: flow, sequence: sequence, direction: direction, time: time, size: payload.count, payload: payload)))
    if sequence == 999 {
        let total = Int64(payload.count) * 500
        events.append(
            .flowClosed(
                FlowClosed(flowID: flow, time: time, bytesUp: total, bytesDown: total, state: .closed, error: nil, payloadTruncated: false)
            )
        )
    }
    return events
}

let writer: StoreWriter
do {
    writer = try StoreWriter(directory: directory, logger: Logger(label: "sluice.store"))
} catch {
    print("sluice-writer-bench: cannot open the store at \(path): \(error)")
    exit(1)
}
// Random bytes, as a compressed file would be, different for every exchange (a body seen before is kept once).
var generator = SystemRandomNumberGenerator()
let bodies = (0..<64).map { _ in Data((0..<bodyBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
let drained = DispatchSemaphore(value: 0)

let start = Date()
let processStart = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID)
let producerStart = cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
for id in 1...Int64(units) {
    // As the relay does: stop while the writer is behind, go on once it has caught up.
    if writer.isBackedUp {
        writer.whenDrained { drained.signal() }
        drained.wait()
    }
    var body = bodies[Int(id) % bodies.count]
    if body.count >= 2 {
        body[0] = UInt8(truncatingIfNeeded: id)
        body[1] = UInt8(truncatingIfNeeded: id >> 8)
    }
    let events = shape == "http" ? exchange(id, body: body, at: Date()) : chunk(id - 1, payload: body, at: Date())
    for event in events { writer.receive(event) }
}
let producerCPU = cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - producerStart
writer.close()
let seconds = Date().timeIntervalSince(start)
let writerCPU = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - processStart - producerCPU

let storeBytes = bytes(under: path, matching: ".sqlite")
let logBytes = bytes(under: path, matching: ".jsonl")
if ownsDirectory { try? FileManager.default.removeItem(atPath: path) }
let n = Double(units)
print(
    "shape=\(shape) "
        + String(
        format: "units=%d seconds=%.3f units_per_s=%.0f writer_cpu_us_per_unit=%.2f producer_cpu_us_per_unit=%.2f store_bytes_per_unit=%.0f log_bytes_per_unit=%.0f",
        units, seconds, n / seconds, writerCPU / n * 1e6, producerCPU / n * 1e6, Double(storeBytes) / n, Double(logBytes) / n
    )
)
