import Foundation
import NIOCore
import NIOHTTP1

/// An HTTP/1.1 message reader (RFC 9112), sans I/O: fed the bytes of one direction of a connection, it hands out
/// the messages in them as NIO's parts, a head, body pieces (slices of the input, never copied) and an end.
///
/// Strict where laxness lets two readers of one byte stream disagree on where a message ends (request smuggling,
/// response splitting): lines end in CRLF, no control characters in a line, no whitespace before a field's colon,
/// no obsolete line folding, one Content-Length (repeats must agree), no Content-Length beside Transfer-Encoding,
/// `chunked` last and once, no Transfer-Encoding in HTTP/1.0. What no reader can mistake is accepted: any method
/// token, a reason phrase with any text, empty lines before a request.
///
/// After a message that hands the connection to another protocol (a CONNECT request; a `101`, or a `2xx` to
/// CONNECT) the parser stops: the bytes behind it are the caller's (`HTTP1Reader.handOver` passes them on). An `Upgrade`
/// offer does not stop it, since a client waits for the `101` before it sends anything else. Responses need the
/// method of the request they answer (`expectResponse(to:)`): a HEAD's has no body.
struct HTTP1Parser<Head: HTTP1ParsableHead> {
    typealias Part = HTTPPart<Head, ByteBuffer>

    private enum State {
        /// Looking for the end of the next head; `scan` remembers how far it looked.
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF that closes a chunk's data.
        case chunkDataEnd
        case trailers
        case untilClose
        /// The message's `.end` is next.
        case end
        /// Another protocol has the connection.
        case stopped
        case failed
    }

    private var state = State.head
    private var scan = LineScan()
    /// Set by a head after which the connection belongs to another protocol.
    private var stopsAfterMessage = false
    /// Methods of the requests whose responses are still to come, oldest first (responses only).
    private var methods: [HTTPMethod] = []
    private let limits = HTTP1Limits()

    /// Records that a request with `method` went out, so that its response is read right.
    mutating func expectResponse(to method: HTTPMethod) {
        methods.append(method)
    }

    /// The next part in `buffer`, consuming its bytes; `nil` when more input is needed, or once stopped.
    /// - Parameter inputEnded: the peer will send nothing more: a body read until close ends here, and a message cut
    ///   short is an error.
    mutating func next(from buffer: inout ByteBuffer, inputEnded: Bool = false) throws(HTTP1ParseError) -> Part? {
        do throws(HTTP1ParseError) {
            return try step(&buffer, inputEnded: inputEnded)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer, inputEnded: Bool) throws(HTTP1ParseError) -> Part? {
        switch state {
        case .head:
            guard let head = try readHead(&buffer) else {
                if inputEnded && !scan.isEmpty { throw .truncated }
                return nil
            }
            return .head(head)
        case .fixedBody(let remaining):
            return try bodyPiece(&buffer, remaining: remaining, inputEnded: inputEnded, then: .end, rest: State.fixedBody)
        case .chunkSize:
            guard let line = try readLine(&buffer) else { return try needMore(inputEnded) }
            let size = try Self.chunkSize(line)
            state = size == 0 ? .trailers : .chunkData(remaining: size)
            return try step(&buffer, inputEnded: inputEnded)
        case .chunkData(let remaining):
            return try bodyPiece(&buffer, remaining: remaining, inputEnded: inputEnded, then: .chunkDataEnd, rest: State.chunkData)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return try needMore(inputEnded) }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .invalidChunk }
            state = .chunkSize
            return try step(&buffer, inputEnded: inputEnded)
        case .trailers:
            guard let end = try readTrailers(&buffer) else { return try needMore(inputEnded) }
            return end
        case .untilClose:
            if buffer.readableBytes > 0 { return buffer.readSlice(length: buffer.readableBytes).map { .body($0) } }
            return inputEnded ? finishMessage(trailers: nil) : nil
        case .end:
            return finishMessage(trailers: nil)
        case .stopped, .failed:
            return nil
        }
    }

    /// As much of the `remaining` body bytes as the buffer holds, as a slice of it; the state becomes `then` once
    /// all have come, else `rest` of what is left.
    private mutating func bodyPiece(
        _ buffer: inout ByteBuffer, remaining: Int, inputEnded: Bool, then: State, rest: (Int) -> State
    ) throws(HTTP1ParseError) -> Part? {
        guard buffer.readableBytes > 0 else { return try needMore(inputEnded) }
        let piece = min(remaining, buffer.readableBytes)
        state = piece == remaining ? then : rest(remaining - piece)
        return buffer.readSlice(length: piece).map { .body($0) }
    }

    /// Waiting for bytes in the middle of a message: an error once none will come.
    private func needMore(_ inputEnded: Bool) throws(HTTP1ParseError) -> Part? {
        if inputEnded { throw .truncated }
        return nil
    }

    private mutating func finishMessage(trailers: HTTPHeaders?) -> Part {
        state = stopsAfterMessage ? .stopped : .head
        stopsAfterMessage = false
        return .end(trailers)
    }

    // MARK: Heads

    /// A whole head once its empty line is in the buffer. Lines are checked as they arrive, so a bad one is refused
    /// at once and input fed a byte at a time is still read in linear time.
    private mutating func readHead(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Head? {
        while let line = try scan.nextLine(in: buffer, limits: limits, maxBytes: limits.maxHeadBytes) {
            guard line.length == 0 else { continue }
            if line.start == 0 {
                // RFC 9112 §2.2: empty lines before a request line are ignored (some clients send one after a body).
                buffer.moveReaderIndex(forwardBy: 2)
                scan = LineScan()
                continue
            }
            let length = scan.consumed
            let fieldCount = scan.lines - 1
            scan = LineScan()
            let (head, facts) = try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) in
                try HeadReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<length]), fieldCount: fieldCount).head(as: Head.self)
            }
            buffer.moveReaderIndex(forwardBy: length)
            try frame(head, facts: facts)
            return head
        }
        return nil
    }

    /// Sets the state for the body that follows `head` (RFC 9112 §6.3).
    private mutating func frame(_ head: Head, facts: FramingFacts) throws(HTTP1ParseError) {
        if facts.transferEncoding != nil {
            // RFC 9112 §6.1 and §6.3 item 3: either is a sign of smuggling, not a message to guess at.
            guard facts.contentLength == nil, head.version.minor > 0 else { throw .conflictingFraming }
        }
        switch head.bodyRule(requestMethod: Head.answersRequests ? methods.first : nil) {
        case .informational:
            state = .head  // the final response to the same request follows
            return
        case .none(let switchesProtocol):
            stopsAfterMessage = switchesProtocol
            state = .end
        case .framed(let switchesProtocol):
            stopsAfterMessage = switchesProtocol
            if facts.transferEncoding != nil {
                if facts.isChunked {
                    state = .chunkSize
                } else if Head.answersRequests {
                    state = .untilClose  // RFC 9112 §6.3 item 4: such a response ends at close
                } else {
                    throw .unsupportedTransferCoding
                }
            } else if let length = facts.contentLength {
                state = length == 0 ? .end : .fixedBody(remaining: length)
            } else {
                state = Head.answersRequests ? .untilClose : .end
            }
        }
        if Head.answersRequests, !methods.isEmpty { methods.removeFirst() }
    }

    // MARK: Chunks

    /// `1*HEXDIG [ chunk-ext ]`: the size; extensions are allowed and ignored (RFC 9112 §7.1.1).
    private static func chunkSize(_ line: ByteBufferView) throws(HTTP1ParseError) -> Int {
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = hexValue(line[index]) {
            guard digits < 15 else { throw .invalidChunk }  // 2^60 bytes and more: not a size anyone means
            size = size << 4 | digit
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw .invalidChunk }
        while index < line.endIndex, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") { index += 1 }
        if index < line.endIndex {
            guard line[index] == UInt8(ascii: ";") else { throw .invalidChunk }
            for byte in line[index...] where !HTTP1Bytes.isFieldValue(byte) { throw .invalidChunk }
        }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// One CRLF-terminated line (a chunk's size), without its CRLF. One over the line limit is a bad chunk, not a
    /// head too large (431 is about header fields).
    private mutating func readLine(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> ByteBufferView? {
        let found: (start: Int, length: Int)?
        do throws(HTTP1ParseError) {
            found = try scan.nextLine(in: buffer, limits: limits, maxBytes: limits.maxLineBytes + 2)
        } catch {
            throw error == .headTooLarge ? .invalidChunk : error
        }
        guard let line = found else { return nil }
        scan = LineScan()
        let view = buffer.readableBytesView.prefix(line.length)
        buffer.moveReaderIndex(forwardBy: line.length + 2)
        return view
    }

    /// The message's end once the trailer section after the last chunk is in, with the trailers if there are any.
    private mutating func readTrailers(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Part? {
        while let line = try scan.nextLine(in: buffer, limits: limits, maxBytes: limits.maxHeadBytes) {
            guard line.length == 0 else { continue }
            let length = scan.consumed
            let fieldCount = scan.lines
            scan = LineScan()
            guard line.start > 0 else {
                buffer.moveReaderIndex(forwardBy: 2)
                return finishMessage(trailers: nil)
            }
            let fields = try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) in
                try HeadReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<length]), fieldCount: fieldCount).trailers()
            }
            buffer.moveReaderIndex(forwardBy: length)
            return finishMessage(trailers: fields)
        }
        return nil
    }
}

/// Limits on what a peer may send in one head (or trailer section). Over them a client gets 431 (RFC 6585 §5).
struct HTTP1Limits {
    let maxHeadBytes = 64 * 1024
    let maxLineBytes = 16 * 1024
    let maxFields = 200

    /// The words for an error message.
    var description: String {
        "\(maxHeadBytes / 1024) KiB, \(maxLineBytes / 1024) KiB per line, \(maxFields) lines"
    }
}

/// Why bytes are not an HTTP/1.1 message. After one the stream cannot be framed any more.
enum HTTP1ParseError: Error, Equatable, CustomStringConvertible {
    /// A head over `HTTP1Limits`.
    case headTooLarge
    case invalidMethod
    case invalidTarget
    case invalidVersion
    case invalidStatus
    case invalidStartLine
    /// A line not ended by CRLF, or a CR or LF inside one.
    case invalidLineEnding
    case invalidField
    /// A field line starting with whitespace (RFC 9112 §5.2).
    case obsoleteLineFolding
    case invalidContentLength
    /// Content-Length beside Transfer-Encoding, Transfer-Encoding in HTTP/1.0, or `chunked` not last or twice.
    case conflictingFraming
    /// A request's Transfer-Encoding that does not end in `chunked`.
    case unsupportedTransferCoding
    case invalidChunk
    /// The peer closed in the middle of a message.
    case truncated

    var description: String {
        switch self {
        case .headTooLarge: "headers larger than the limit (\(HTTP1Limits().description))"
        case .invalidMethod: "invalid method"
        case .invalidTarget: "invalid request target"
        case .invalidVersion: "invalid HTTP version"
        case .invalidStatus: "invalid status code"
        case .invalidStartLine: "invalid start line"
        case .invalidLineEnding: "invalid line ending"
        case .invalidField: "invalid header"
        case .obsoleteLineFolding: "header folded over two lines (obsolete line folding)"
        case .invalidContentLength: "invalid Content-Length"
        case .conflictingFraming: "conflicting message framing (Content-Length with Transfer-Encoding, Transfer-Encoding in HTTP/1.0, or chunked not last)"
        case .unsupportedTransferCoding: "Transfer-Encoding that does not end in chunked"
        case .invalidChunk: "invalid chunk (its size line, or the line end after its data)"
        case .truncated: "connection closed in the middle of a message"
        }
    }
}

// MARK: - Lines

/// How far the search for the end of the current head (or line) got, so that bytes arriving a few at a time are
/// each looked at once.
private struct LineScan {
    /// Bytes from the reader index in the complete lines found so far.
    private(set) var consumed = 0
    /// Bytes after `consumed` already searched for a LF.
    private var searched = 0
    /// Non-empty lines found: the start line and the fields (or only fields, in a trailer section).
    private(set) var lines = 0

    var isEmpty: Bool { consumed == 0 && searched == 0 }

    /// The next complete line: where it starts (from the reader index) and its length without the CRLF; `nil` until
    /// its LF has come.
    /// - Parameter maxBytes: the most the lines scanned together may take, CRLFs included.
    mutating func nextLine(in buffer: ByteBuffer, limits: HTTP1Limits, maxBytes: Int) throws(HTTP1ParseError) -> (start: Int, length: Int)? {
        let from = consumed + searched
        let newline = buffer.withUnsafeReadableBytes { HTTP1Bytes.firstLF(in: $0, from: from) }
        guard let newline else {
            searched = buffer.readableBytes - consumed
            // Room for the CR of a line of the longest length.
            if searched > limits.maxLineBytes + 1 || buffer.readableBytes > maxBytes { throw .headTooLarge }
            return nil
        }
        let start = consumed
        // The limits before the line's form, as they are checked while the LF has not come: the outcome must not
        // depend on how the bytes were cut (found by fuzzing: a 16 KiB chunk extension ending in a bare LF was "too
        // long" read in pieces and "invalid line ending" read whole).
        guard newline - start <= limits.maxLineBytes + 1, newline < maxBytes else { throw .headTooLarge }
        guard newline > start, buffer.getInteger(at: buffer.readerIndex + newline - 1, as: UInt8.self) == 0x0D else {
            throw .invalidLineEnding
        }
        let length = newline - 1 - start
        consumed = newline + 1
        searched = 0
        if length > 0 {
            lines += 1
            guard lines <= limits.maxFields + 1 else { throw .headTooLarge }  // the start line and the fields
        }
        return (start, length)
    }
}

// MARK: - Head contents

/// What a head's fields say about the framing of its body, noted while they are read.
struct FramingFacts {
    var contentLength: Int?
    /// How many digits the first Content-Length had: a repeat must be the same text, not only the same number.
    var contentLengthDigits = 0
    /// The Transfer-Encoding fields, joined.
    var transferEncoding: String?
    var isChunked = false
}

/// How a message's body is delimited, as its start line decides.
enum BodyRule {
    /// A 1xx other than 101: a head only; the final response follows.
    case informational
    /// No body whatever the fields say (HEAD, 204, 304, 101, a 2xx to CONNECT).
    case none(switchesProtocol: Bool)
    /// As the fields say: Content-Length, chunked, or for a response without either the connection's close.
    case framed(switchesProtocol: Bool)
}

/// A head the parser can build: NIO's request and response heads.
protocol HTTP1ParsableHead: Equatable {
    associatedtype StartLine
    /// Responses: the parser then needs each request's method.
    static var answersRequests: Bool { get }
    static func startLine(_ bytes: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> StartLine
    init(startLine: StartLine, headers: HTTPHeaders)
    var version: HTTPVersion { get }
    func bodyRule(requestMethod: HTTPMethod?) -> BodyRule
}

extension HTTPRequestHead: HTTP1ParsableHead {
    struct StartLine {
        var method: HTTPMethod
        var uri: String
        var version: HTTPVersion
    }

    static var answersRequests: Bool { false }

    /// `method SP request-target SP HTTP-version` (RFC 9112 §3), one space each.
    static func startLine(_ bytes: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> StartLine {
        guard let firstSpace = bytes.firstIndex(of: UInt8(ascii: " ")) else { throw .invalidStartLine }
        guard firstSpace > 0, bytes[..<firstSpace].allSatisfy(HTTP1Bytes.isToken) else { throw .invalidMethod }
        guard let lastSpace = bytes.lastIndex(of: UInt8(ascii: " ")), lastSpace > firstSpace + 1 else { throw .invalidTarget }
        let target = UnsafeRawBufferPointer(rebasing: bytes[(firstSpace + 1)..<lastSpace])
        var ascii = true
        for byte in target {
            if byte >= 0x80 {
                ascii = false
            } else if byte <= 0x20 || byte == 0x7F {
                throw .invalidTarget
            }
        }
        let version = try HTTP1Bytes.version(UnsafeRawBufferPointer(rebasing: bytes[(lastSpace + 1)...]))
        let uri: String
        if ascii {
            uri = String(decoding: target, as: UTF8.self)
        } else {
            // Raw UTF-8 in a path is passed on as it came; anything else could not be (NIO's strings are UTF-8).
            guard let text = String(validating: target, as: UTF8.self) else { throw .invalidTarget }
            uri = text
        }
        let method = HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<firstSpace]), as: UTF8.self))
        return StartLine(method: method, uri: uri, version: version)
    }

    init(startLine: StartLine, headers: HTTPHeaders) {
        self.init(version: startLine.version, method: startLine.method, uri: startLine.uri, headers: headers)
    }

    /// A request has a body only when its fields say so (RFC 9112 §6.3 items 4–7). A tunnel follows CONNECT.
    func bodyRule(requestMethod: HTTPMethod?) -> BodyRule {
        .framed(switchesProtocol: method == .CONNECT)
    }
}

extension HTTPResponseHead: HTTP1ParsableHead {
    struct StartLine {
        var version: HTTPVersion
        var status: HTTPResponseStatus
    }

    static var answersRequests: Bool { true }

    /// `HTTP-version SP 3DIGIT SP [ reason-phrase ]` (RFC 9112 §4); the space before an empty reason may be missing.
    static func startLine(_ bytes: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> StartLine {
        guard bytes.starts(with: "HTTP/".utf8) else { throw .invalidStartLine }
        let version = try HTTP1Bytes.version(UnsafeRawBufferPointer(rebasing: bytes.prefix(8)))
        guard bytes.count >= 12, bytes[8] == UInt8(ascii: " ") else { throw .invalidStatus }
        var code = 0
        for byte in bytes[9..<12] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw .invalidStatus }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard code >= 100 else { throw .invalidStatus }
        var reason = ""
        if bytes.count > 12 {
            guard bytes[12] == UInt8(ascii: " ") else { throw .invalidStatus }
            let phrase = UnsafeRawBufferPointer(rebasing: bytes[13...])
            guard phrase.allSatisfy(HTTP1Bytes.isFieldValue) else { throw .invalidStatus }
            reason = String(decoding: phrase, as: UTF8.self)
        }
        return StartLine(version: version, status: HTTPResponseStatus(statusCode: code, reasonPhrase: reason))
    }

    init(startLine: StartLine, headers: HTTPHeaders) {
        self.init(version: startLine.version, status: startLine.status, headers: headers)
    }

    /// RFC 9112 §6.3 items 1–2: no body for HEAD, 1xx, 204 and 304; a 101, or a 2xx to CONNECT, hands the connection
    /// to another protocol.
    func bodyRule(requestMethod: HTTPMethod?) -> BodyRule {
        let code = status.code
        if code == 101 { return .none(switchesProtocol: true) }
        if code < 200 { return .informational }
        if requestMethod == .CONNECT && code < 300 { return .none(switchesProtocol: true) }
        if requestMethod == .HEAD || code == 204 || code == 304 { return .none(switchesProtocol: false) }
        return .framed(switchesProtocol: false)
    }
}

/// Reads a complete head (its lines known to end in CRLF) into a head value and its framing facts.
private struct HeadReader {
    let bytes: UnsafeRawBufferPointer
    /// How many field lines the head has (known from the scan): the field list is made that size at once.
    let fieldCount: Int

    func head<Head: HTTP1ParsableHead>(as: Head.Type) throws(HTTP1ParseError) -> (head: Head, facts: FramingFacts) {
        var lines = Lines(bytes: bytes)
        guard let first = lines.next() else { throw .invalidStartLine }
        let startLine = try Head.startLine(first)
        var facts = FramingFacts()
        let headers = try fields(&lines, facts: &facts)
        return (Head(startLine: startLine, headers: headers), facts)
    }

    func trailers() throws(HTTP1ParseError) -> HTTPHeaders {
        var lines = Lines(bytes: bytes)
        var facts = FramingFacts()
        return try fields(&lines, facts: &facts)
    }

    /// `field-name ":" OWS field-value OWS` lines (RFC 9112 §5).
    private func fields(_ lines: inout Lines, facts: inout FramingFacts) throws(HTTP1ParseError) -> HTTPHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(fieldCount)
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t") ? .obsoleteLineFolding : .invalidField
            }
            let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
            guard !name.isEmpty, name.allSatisfy(HTTP1Bytes.isToken) else {
                throw line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t") ? .obsoleteLineFolding : .invalidField
            }
            var start = colon + 1
            var end = line.count
            while start < end, line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t") { start += 1 }
            while end > start, line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
            guard value.allSatisfy(HTTP1Bytes.isFieldValue) else { throw .invalidField }
            try facts.note(name: name, value: value)
            fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return HTTPHeaders(fields)
    }

    /// The lines of a head, without their CRLF, the final empty one left out.
    struct Lines {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        mutating func next() -> UnsafeRawBufferPointer? {
            guard let newline = HTTP1Bytes.firstLF(in: bytes, from: position), newline - 1 > position else { return nil }
            let line = UnsafeRawBufferPointer(rebasing: bytes[position..<(newline - 1)])
            position = newline + 1
            return line
        }
    }
}

extension FramingFacts {
    /// Notes the fields that frame the body, checking them as RFC 9112 §6 asks.
    mutating func note(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(HTTP1ParseError) {
        switch name.count {
        case 14 where HTTP1Bytes.equalsLowercased(name, "content-length"):
            var length = 0
            guard !value.isEmpty, value.count <= 18 else { throw .invalidContentLength }
            for byte in value {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw .invalidContentLength }
                length = length * 10 + Int(byte - UInt8(ascii: "0"))
            }
            // RFC 9110 §8.6 lets a recipient accept repeats of one decimal value only if it forwards a single field;
            // Sluice forwards the fields as they came, so repeats must read alike to anyone: `3` and `03` are
            // refused, as Go's server refuses them. (Among digit strings, the same value and the same number of
            // digits is the same text.)
            if let earlier = contentLength, earlier != length || contentLengthDigits != value.count {
                throw .invalidContentLength
            }
            contentLength = length
            contentLengthDigits = value.count
        case 17 where HTTP1Bytes.equalsLowercased(name, "transfer-encoding"):
            let text = String(decoding: value, as: UTF8.self)
            transferEncoding = transferEncoding.map { $0 + ", " + text } ?? text
            let codings = transferEncoding?.split(separator: ",").map {
                $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            } ?? []
            let chunkedCount = codings.count { $0 == "chunked" }
            guard chunkedCount <= 1, chunkedCount == 0 || codings.last == "chunked" else { throw .conflictingFraming }
            isChunked = chunkedCount == 1
        default:
            break
        }
    }
}

/// Byte classes of RFC 9110 §5.6.2 and §5.5.
enum HTTP1Bytes {
    /// The offset of the first LF at or after `from`.
    static func firstLF(in bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + from, 0x0A, bytes.count - from) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    /// tchar: `!#$%&'*+-.^_`|~`, digits and letters.
    static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// VCHAR, SP, HTAB and obs-text: everything but the other control characters.
    static func isFieldValue(_ byte: UInt8) -> Bool {
        byte >= 0x20 ? byte != 0x7F : byte == 0x09
    }

    /// `HTTP/1.x`: HTTP/1.1 framing is all this reader knows.
    static func version(_ bytes: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> HTTPVersion {
        guard bytes.count == 8, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
            bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/"), bytes[5] == UInt8(ascii: "1"),
            bytes[6] == UInt8(ascii: "."), bytes[7] >= UInt8(ascii: "0"), bytes[7] <= UInt8(ascii: "9")
        else { throw .invalidVersion }
        return HTTPVersion(major: 1, minor: Int(bytes[7] - UInt8(ascii: "0")))
    }

    /// Whether `bytes`, ASCII-lowercased, are `lowercase`. For tokens only (field names): `| 0x20` also turns CR
    /// into `-`, which a token cannot hold.
    static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] {
            // `| 0x20` lowercases letters; `-` (0x2D) is unchanged by it.
            return false
        }
        return true
    }
}
