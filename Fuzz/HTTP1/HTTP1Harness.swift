import FuzzSupport
import NIOCore
import NIOHTTP1

// The HTTP/1 parser's fuzz harness, shared by the request, response and chunked-body targets. The parser's files
// are compiled into this module (symbolic links into Sources/SluiceHTTP) so that they carry libFuzzer's coverage
// instrumentation; NIO does not.

/// What a reader handed out, body pieces joined, for comparing one input fed in different ways.
enum Event<Head: Checkable>: Equatable {
    case head(Head)
    case body([UInt8])
    case end(HTTPHeaders?)
    case error(HTTP1ParseError)

    /// Heads and trailers compare field by field, in order and byte for byte (`HTTPHeaders.==` would let `a, b`
    /// equal `a,b` and two fields equal one).
    static func == (lhs: Event, rhs: Event) -> Bool {
        switch (lhs, rhs) {
        case (.head(let a), .head(let b)): a.text == b.text
        case (.body(let a), .body(let b)): a == b
        case (.end(let a), .end(let b)): a.map(fieldLines) == b.map(fieldLines)
        case (.error(let a), .error(let b)): a == b
        default: false
        }
    }
}

func fieldLines(_ headers: HTTPHeaders) -> [String] {
    headers.map { "\($0.name): \($0.value)" }
}

extension HTTPRequestHead {
    var text: [String] { ["\(method.rawValue) \(uri) \(version)"] + fieldLines(headers) }
}

extension HTTPResponseHead {
    var text: [String] { ["\(version) \(status.code) \(status.reasonPhrase)"] + fieldLines(headers) }
}

struct Outcome<Head: Checkable>: Equatable {
    var events: [Event<Head>] = []
    /// What was left unread at the end: the bytes of the protocol that follows a CONNECT or a `101`.
    var rest: [UInt8] = []

    mutating func append(_ part: HTTPPart<Head, ByteBuffer>) {
        switch part {
        case .head(let head):
            events.append(.head(head))
        case .body(let buffer):
            require(buffer.readableBytes > 0, "an empty body piece")
            if case .body(let earlier) = events.last {
                events[events.count - 1] = .body(earlier + buffer.readableBytesView)
            } else {
                events.append(.body(Array(buffer.readableBytesView)))
            }
        case .end(let trailers):
            events.append(.end(trailers))
        }
    }

    var failed: Bool {
        if case .error = events.last { true } else { false }
    }
}

/// Feeds `bytes` to an `HTTP1Parser` in pieces of the sizes in `plan`, then ends the input. Checks on the way that
/// a `nil` (more input needed) is stable and consumes nothing, and that an error is terminal.
func parse<Head: Checkable>(_ bytes: [UInt8], as: Head.Type, methods: [HTTPMethod], plan: [Int]) -> Outcome<Head> {
    var parser = HTTP1Parser<Head>()
    for method in methods { parser.expectResponse(to: method) }
    var outcome = Outcome<Head>()
    var buffer = ByteBuffer()
    var fed = 0

    func drain(inputEnded: Bool) -> Bool {
        while true {
            do {
                guard let part = try parser.next(from: &buffer, inputEnded: inputEnded) else {
                    let before = buffer.readerIndex
                    do {
                        let again = try parser.next(from: &buffer, inputEnded: inputEnded)
                        require(
                            again == nil && buffer.readerIndex == before,
                            "a second call without new input made progress")
                    } catch {
                        require(false, "a second call without new input threw \(error)")
                    }
                    return true
                }
                outcome.append(part)
            } catch {
                outcome.events.append(.error(error))
                // Terminal: nothing more is read, not even with more input.
                buffer.writeBytes(Array("GET / HTTP/1.1\r\n\r\n".utf8))
                let before = buffer.readerIndex
                do {
                    let after = try parser.next(from: &buffer, inputEnded: true)
                    require(after == nil && buffer.readerIndex == before, "the parser read on after \(error)")
                } catch {
                    require(false, "the parser threw again after an error: \(error)")
                }
                return false
            }
        }
    }

    for size in plan {
        buffer.writeBytes(bytes[fed..<(fed + size)])
        fed += size
        guard drain(inputEnded: false) else { return outcome }
    }
    if drain(inputEnded: true) { outcome.rest = Array(buffer.readableBytesView) }
    return outcome
}

/// The same through `HTTP1Reader`, the class the proxy's handlers own, which keeps the unread bytes between reads.
func read<Head: Checkable>(_ bytes: [UInt8], as: Head.Type, methods: [HTTPMethod], plan: [Int]) -> Outcome<Head> {
    let reader = HTTP1Reader<Head>()
    for method in methods { reader.expectResponse(to: method) }
    var outcome = Outcome<Head>()
    var fed = 0
    for size in plan {
        reader.read(
            ByteBuffer(bytes: bytes[fed..<(fed + size)]), deliver: { outcome.append($0) },
            fail: { outcome.events.append(.error($0)) })
        fed += size
    }
    reader.endInput(deliver: { outcome.append($0) }, fail: { outcome.events.append(.error($0)) })
    if !outcome.failed { outcome.rest = reader.takeRemainder().map { Array($0.readableBytesView) } ?? [] }
    return outcome
}

/// Parses `bytes` whole, then in the input's other feedings, directly and through `HTTP1Reader`: every way must give
/// the same outcome, and that outcome must be a well-formed sequence of messages.
@discardableResult
func check<Head: Checkable>(_ bytes: [UInt8], as: Head.Type, methods: [HTTPMethod]) -> Outcome<Head> {
    // Each feeding once, the whole input and byte by byte through the parser (which checks the most on the way),
    // the rest through the reader, which the pieces in between exercise most.
    let feedings = FuzzInput(bytes).feedings(byteByByteLimit: 1024)
    let whole = parse(bytes, as: Head.self, methods: methods, plan: feedings[0])
    for (index, plan) in feedings.enumerated().dropFirst() {
        if index == 3 {
            let pieces = parse(bytes, as: Head.self, methods: methods, plan: plan)
            require(pieces == whole, "fed byte by byte: \(pieces)\nwhole: \(whole)")
        } else {
            let read = read(bytes, as: Head.self, methods: methods, plan: plan)
            require(read == whole, "read by HTTP1Reader in \(plan.count) pieces: \(read)\nwhole: \(whole)")
        }
    }
    checkSequence(whole, methods: methods)
    require(
        bytes.suffix(whole.rest.count).elementsEqual(whole.rest), "the bytes left over are not the input's last ones")
    return whole
}

/// What the harness checks about one kind of head.
protocol Checkable: HTTP1ParsableHead {
    /// The start line and the fields, as text.
    var text: [String] { get }
    func checkFields()
    /// How many body bytes the message must have (nil: any number, as chunks or until close), and whether the
    /// connection then belongs to another protocol.
    func expectedBody(method: HTTPMethod?) -> (bytes: Int?, switches: Bool)
    var isInformational: Bool { get }
}

extension HTTPRequestHead: Checkable {
    func checkFields() {
        require(
            !method.rawValue.isEmpty && method.rawValue.utf8.allSatisfy(HTTP1Bytes.isToken),
            "method \(method.rawValue.debugDescription)")
        require(!uri.isEmpty && !uri.utf8.contains { $0 <= 0x20 || $0 == 0x7F }, "target \(uri.debugDescription)")
        checkVersion(version)
        checkHeaders(headers)
    }

    func expectedBody(method _: HTTPMethod?) -> (bytes: Int?, switches: Bool) {
        (headers.contains(name: "transfer-encoding") ? nil : contentLength(headers) ?? 0, method == .CONNECT)
    }

    var isInformational: Bool { false }
}

extension HTTPResponseHead: Checkable {
    func checkFields() {
        require((100...999).contains(status.code), "status \(status.code)")
        require(
            status.reasonPhrase.utf8.allSatisfy(HTTP1Bytes.isFieldValue),
            "reason \(status.reasonPhrase.debugDescription)")
        checkVersion(version)
        checkHeaders(headers)
    }

    func expectedBody(method: HTTPMethod?) -> (bytes: Int?, switches: Bool) {
        let code = status.code
        if code == 101 || (method == .CONNECT && (200..<300).contains(code)) { return (0, true) }
        if method == .HEAD || code == 204 || code == 304 { return (0, false) }
        if headers.contains(name: "transfer-encoding") { return (nil, false) }
        return (contentLength(headers), false)  // none: until close
    }

    var isInformational: Bool { status.code < 200 && status.code != 101 }
}

func checkVersion(_ version: HTTPVersion) {
    require(version.major == 1 && (0...9).contains(version.minor), "version \(version)")
}

/// No field may carry what ends a line or a field: a CR, LF or NUL that got through would let the next reader of
/// these headers (the server, when Sluice writes them) split the message elsewhere.
func checkHeaders(_ headers: HTTPHeaders, framing: Bool = true) {
    for (name, value) in headers {
        require(!name.isEmpty && name.utf8.allSatisfy(HTTP1Bytes.isToken), "field name \(name.debugDescription)")
        require(value.utf8.allSatisfy(HTTP1Bytes.isFieldValue), "field value \(value.debugDescription)")
        require(
            value.first != " " && value.first != "\t" && value.last != " " && value.last != "\t",
            "untrimmed \(value.debugDescription)"
        )
    }
    // Trailers frame nothing (their Content-Length or Transfer-Encoding is only a field).
    guard framing else { return }
    let lengths = headers["content-length"]
    require(lengths.allSatisfy { $0 == lengths.first }, "Content-Length values disagree: \(lengths)")
    require(lengths.isEmpty || !headers.contains(name: "transfer-encoding"), "Content-Length beside Transfer-Encoding")
}

func contentLength(_ headers: HTTPHeaders) -> Int? {
    headers.first(name: "content-length").map { value in
        guard let length = Int(value), length >= 0 else {
            require(false, "accepted Content-Length \(value.debugDescription)")
            return 0
        }
        return length
    }
}

/// The events must be messages one after another: a head, body pieces, an end (a 1xx response is a head alone),
/// an error only last, each body as long as its head says. When the input has ended without an error, the last
/// message is complete, and bytes are left over only behind a message that hands the connection over.
func checkSequence<Head: Checkable>(_ outcome: Outcome<Head>, methods: [HTTPMethod]) {
    var methods = methods[...]
    var open: (head: Head, expected: Int?, switches: Bool)?
    var bodyBytes = 0
    var switched = false
    for (index, event) in outcome.events.enumerated() {
        require(!switched, "a message after the connection was handed over")
        switch event {
        case .head(let head):
            require(open == nil, "a head inside a message")
            head.checkFields()
            if head.isInformational { continue }
            let method = Head.answersRequests ? methods.popFirst() : nil
            let (expected, switches) = head.expectedBody(method: method)
            open = (head, expected, switches)
            bodyBytes = 0
        case .body(let bytes):
            require(open != nil, "a body outside a message")
            bodyBytes += bytes.count
        case .end(let trailers):
            guard let message = open else {
                require(false, "an end outside a message")
                return
            }
            if let expected = message.expected {
                require(bodyBytes == expected, "\(bodyBytes) body bytes, the head says \(expected)")
            }
            if let trailers { checkHeaders(trailers, framing: false) }
            switched = message.switches
            open = nil
        case .error:
            require(index == outcome.events.count - 1, "events after an error")
        }
    }
    guard !outcome.failed else { return }
    require(open == nil, "the input ended inside a message without an error")
    require(outcome.rest.isEmpty || switched, "\(outcome.rest.count) bytes left unread with no protocol switch")
}

// MARK: Targets

/// Requests: the input is a client's byte stream.
public func fuzzRequests(_ input: FuzzInput) {
    checkForwarding(check(input.bytes, as: HTTPRequestHead.self, methods: []))
}

/// Responses: the first byte chooses the methods of the requests they answer (1 to 4 of GET, HEAD, CONNECT, POST,
/// two bits each), the rest is a server's byte stream.
public func fuzzResponses(_ input: FuzzInput) {
    guard let selector = input.bytes.first else { return }
    let choices: [HTTPMethod] = [.GET, .HEAD, .CONNECT, .POST]
    let methods = (0...Int(selector & 3)).map { choices[Int(selector >> (2 * $0 + 2)) & 3] }
    checkForwarding(
        check(Array(input.bytes.dropFirst()), as: HTTPResponseHead.self, methods: methods), methods: methods)
}

/// Chunked bodies: the input follows a request head that announces one.
public func fuzzChunkedBodies(_ input: FuzzInput) {
    let head = Array("POST /upload HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
    checkForwarding(check(head + input.bytes, as: HTTPRequestHead.self, methods: []))
}
