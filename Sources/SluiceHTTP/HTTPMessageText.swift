import Foundation
import SluiceModel

/// An HTTP request or response as the operator sees and edits it while it is held: the start line, the headers,
/// a blank line, the body. Written with CRLF; read back with CRLF or LF, since an editor may leave either.
///
/// Reading is strict about what could smuggle a second message (line breaks inside a header, a malformed start
/// line) and leaves framing to the proxy: `Content-Length` and `Transfer-Encoding` are recomputed from the body.
enum HTTPMessageText {
    struct Request: Equatable {
        var method: String
        var target: String
        var headers: [HeaderField]
        var body: Data
    }

    struct Response: Equatable {
        var status: Int
        var reason: String
        var headers: [HeaderField]
        var body: Data
    }

    static func request(method: String, url: String, headers: [HeaderField], body: Data) -> Data {
        text(startLine: "\(method) \(url) HTTP/1.1", headers: headers, body: body)
    }

    static func response(status: Int, reason: String, headers: [HeaderField], body: Data) -> Data {
        text(startLine: "HTTP/1.1 \(status) \(reason)", headers: headers, body: body)
    }

    private static func text(startLine: String, headers: [HeaderField], body: Data) -> Data {
        var out = startLine + "\r\n"
        for field in headers where !isFraming(field.name) {
            out += "\(field.name): \(field.value)\r\n"
        }
        var data = Data((out + "\r\n").utf8)
        data.append(body)
        return data
    }

    static func parseRequest(_ data: Data) throws(HTTPMessageTextError) -> Request {
        let (startLine, headers, body) = try split(data)
        let parts = startLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3 || parts.count == 2 else {
            throw HTTPMessageTextError("the first line must be METHOD URL [HTTP/1.1], got '\(startLine.prefix(80))'")
        }
        let method = String(parts[0])
        guard method.utf8.allSatisfy(isTokenByte) else { throw HTTPMessageTextError("'\(method.prefix(20))' is not a method") }
        let target = String(parts[1])
        guard target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw HTTPMessageTextError("the URL contains spaces or control characters")
        }
        return Request(method: method, target: target, headers: headers, body: body)
    }

    static func parseResponse(_ data: Data) throws(HTTPMessageTextError) -> Response {
        let (startLine, headers, body) = try split(data)
        let parts = startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]), (200...599).contains(status) else {
            throw HTTPMessageTextError("the first line must be HTTP/1.1 STATUS REASON with a status 200-599, got '\(startLine.prefix(80))'")
        }
        return Response(status: status, reason: parts.count == 3 ? String(parts[2]) : "", headers: headers, body: body)
    }

    private static func split(_ data: Data) throws(HTTPMessageTextError) -> (String, [HeaderField], Data) {
        let bytes = [UInt8](data)
        var lines: [String] = []
        var index = 0
        var lineStart = 0
        var bodyStart: Int?
        while index < bytes.count {
            if bytes[index] == 0x0a {
                var end = index
                if end > lineStart && bytes[end - 1] == 0x0d { end -= 1 }
                if end == lineStart {
                    bodyStart = index + 1
                    break
                }
                guard let line = String(bytes: bytes[lineStart..<end], encoding: .utf8) else {
                    throw HTTPMessageTextError("line \(lines.count + 1) is not UTF-8 text")
                }
                lines.append(line)
                lineStart = index + 1
            }
            index += 1
        }
        guard let bodyStart else { throw HTTPMessageTextError("no blank line after the headers") }
        guard let startLine = lines.first else { throw HTTPMessageTextError("empty message") }
        var headers: [HeaderField] = []
        for (number, line) in lines.dropFirst().enumerated() {
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPMessageTextError("header line \(number + 1) has no ':'")
            }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                throw HTTPMessageTextError("'\(name.prefix(40))' is not a header name")
            }
            guard !value.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) else {
                throw HTTPMessageTextError("header \(name) contains control characters")
            }
            if isFraming(name) { continue }  // recomputed from the body
            headers.append(HeaderField(name: name, value: value))
        }
        return (startLine, headers, Data(bytes[bodyStart...]))
    }

    static func isFraming(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "content-length" || lower == "transfer-encoding"
    }

    /// RFC 9110 §5.6.2 token characters.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

struct HTTPMessageTextError: Error, Equatable, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
