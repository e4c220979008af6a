import Foundation
import SluiceModel

#if canImport(Glibc)
import Glibc
#endif

/// HAR 1.2 (PROTOCOLS.md §8): what browsers' DevTools and HAR viewers import.
///
/// A document is `prologue`, the entries joined by `separator`, then `epilogue`, so that an export of a large store
/// holds one flow's bodies in memory at a time rather than all of them.
public struct HARExport: Sendable {
    /// `log.creator.version`.
    public var creatorVersion: String
    /// Decoded response bodies stop here (see `BodyDecoding`); a bigger one is exported as it travelled.
    public var decodeLimit: Int

    public init(creatorVersion: String, decodeLimit: Int = BodyDecoding.defaultLimit) {
        self.creatorVersion = creatorVersion
        self.decodeLimit = decodeLimit
    }

    public var prologue: Data {
        let creator = "{\"name\":\"sluice\",\"version\":" + JSONObject.quote(creatorVersion) + "}"
        return Data(("{\"log\":{\"version\":\"1.2\",\"creator\":" + creator + ",\"pages\":[],\"entries\":[\n").utf8)
    }

    public static let separator = Data(",\n".utf8)
    public static let epilogue = Data("\n]}}\n".utf8)

    /// Whether a flow becomes an entry: an HTTP or WebSocket flow with a request head. A CONNECT is a tunnel, not a
    /// request a HAR viewer could show (its "URL" is `host:port`).
    public static func exports(_ flow: StoredFlow) -> Bool {
        guard flow.kind == FlowKind.http.rawValue || flow.kind == FlowKind.websocket.rawValue, let http = flow.http
        else {
            return false
        }
        return http.method.uppercased() != "CONNECT"
    }

    /// A whole document in memory, for tests and small exports. Flows that `exports` rejects are left out.
    public func document(_ flows: [(flow: StoredFlow, messages: [StoredMessage], errors: [StoredError])]) -> Data {
        var data = prologue
        var first = true
        for item in flows {
            guard let entry = entryJSON(flow: item.flow, messages: item.messages, errors: item.errors) else { continue }
            if !first { data.append(Self.separator) }
            data.append(entry)
            first = false
        }
        data.append(Self.epilogue)
        return data
    }

    /// One entry as JSON text (keys sorted, so exports of the same flows compare equal); nil when `exports` says no.
    public func entryJSON(flow: StoredFlow, messages: [StoredMessage], errors: [StoredError]) -> Data? {
        guard let entry = entry(flow: flow, messages: messages, errors: errors) else { return nil }
        // Only strings, numbers that `finite` checked, booleans, arrays and dictionaries go in, so this cannot fail.
        return try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// One entry as a JSON-ready dictionary; nil when `exports` says no.
    public func entry(flow: StoredFlow, messages: [StoredMessage], errors: [StoredError]) -> [String: Any]? {
        guard Self.exports(flow), let http = flow.http else { return nil }
        var notes: [String] = []
        let requestBody = flow.body(.up, in: messages)
        let responseBody = flow.body(.down, in: messages)

        var request: [String: Any] = [
            "method": http.method, "url": http.url, "httpVersion": http.version,
            "cookies": Self.requestCookies(http.requestHeaders), "headers": Self.headerList(http.requestHeaders),
            "queryString": Self.queryString(http.url), "headersSize": -1, "bodySize": requestBody.travelled,
        ]
        if requestBody.travelled > 0 {
            request["postData"] = Self.postData(requestBody, headers: http.requestHeaders, notes: &notes)
        }

        var response: [String: Any]
        if let status = http.status {
            response = [
                "status": status, "statusText": http.reason ?? "", "httpVersion": http.responseVersion ?? http.version,
                "cookies": Self.responseCookies(http.responseHeaders, receivedAt: http.respondedAt ?? http.requestedAt),
                "headers": Self.headerList(http.responseHeaders),
                "content": content(responseBody, headers: http.responseHeaders, notes: &notes),
                "redirectURL": http.responseHeaders.first(named: "Location") ?? "",
                "headersSize": -1, "bodySize": responseBody.travelled,
            ]
        } else {
            // Status 0 and empty strings: how browsers export a request that got no answer.
            response = [
                "status": 0, "statusText": "", "httpVersion": "", "cookies": [Any](), "headers": [Any](),
                "content": ["size": 0, "mimeType": ""] as [String: Any], "redirectURL": "", "headersSize": -1,
                "bodySize": 0,
            ]
            let reason = flow.error ?? errors.first.map { "\($0.phase): \($0.message)" }
            let why = reason ?? (flow.state == "open" ? "still waiting" : "none recorded")
            notes.insert("no response: " + why, at: 0)
        }
        if http.status != nil, let error = flow.error {
            notes.insert(error, at: 0)
        }

        let (timings, time) = Self.timings(flow: flow, http: http)
        var entry: [String: Any] = [
            "startedDateTime": Timestamp.iso8601(http.requestedAt), "time": time, "request": request,
            "response": response, "cache": [String: Any](), "timings": timings,
        ]
        if let address = Self.ipAddress(of: flow.server) {
            entry["serverIPAddress"] = address
        }
        if flow.kind == FlowKind.websocket.rawValue {
            entry["_resourceType"] = "websocket"
            entry["_webSocketMessages"] = Self.webSocketMessages(messages, notes: &notes)
        }
        if http.synthetic {
            notes.append("the response was written by Sluice, not the server")
        }
        if !notes.isEmpty {
            entry["comment"] = notes.joined(separator: "; ")
        }
        return entry
    }

    // MARK: Bodies

    /// HAR 1.2's postData has no `encoding` field, so a binary body goes in as base64 text and says so.
    static func postData(_ body: StoredBody, headers: [HeaderField], notes: inout [String]) -> [String: Any] {
        var postData: [String: Any] = ["mimeType": headers.first(named: "Content-Type") ?? ""]
        var comments: [String] = []
        if let text = utf8Text(body.stored) {
            postData["text"] = text
        } else {
            postData["text"] = body.stored.base64EncodedString()
            comments.append("binary body: text is its base64")
        }
        if body.isTruncated {
            let note = "request body truncated: " + body.truncationNote
            comments.append(note)
            notes.append(note)
        }
        if !comments.isEmpty {
            postData["comment"] = comments.joined(separator: "; ")
        }
        return postData
    }

    /// `size` is the decoded length and `text` the decoded body (PROTOCOLS.md §8); a body that cannot be decoded
    /// (`br`, corrupt, over the limit) is given as it travelled, with a comment.
    func content(_ body: StoredBody, headers: [HeaderField], notes: inout [String]) -> [String: Any] {
        var content: [String: Any] = ["mimeType": headers.first(named: "Content-Type") ?? ""]
        var comments: [String] = []
        let encoding = headers.first(named: "Content-Encoding")
        var bytes = body.stored
        var size = body.travelled
        if !BodyDecoding.codings(encoding).isEmpty, !body.stored.isEmpty {
            if let decoded = BodyDecoding.decode(
                body.stored, contentEncoding: encoding, limit: decodeLimit, truncated: body.isTruncated
            ) {
                bytes = decoded
                size = Int64(decoded.count)
                if !body.isTruncated {
                    // HAR's "bytes saved"; negative for the tiny bodies that compression makes larger.
                    content["compression"] = size - body.travelled
                }
            } else {
                size = Int64(body.stored.count)
                comments.append(
                    "Content-Encoding \(encoding ?? "") not decoded (unsupported, corrupt or too large); "
                        + "text is the body as received"
                )
            }
        }
        if body.isTruncated {
            comments.append("response body truncated: " + body.truncationNote)
        }
        content["size"] = size
        if !bytes.isEmpty {
            if let text = Self.utf8Text(bytes) {
                content["text"] = text
            } else {
                content["text"] = bytes.base64EncodedString()
                content["encoding"] = "base64"
            }
        }
        if !comments.isEmpty {
            content["comment"] = comments.joined(separator: "; ")
            notes += comments
        }
        return content
    }

    /// Chrome's form: data frames only (opcode 1 text, 2 binary), binary data as base64.
    static func webSocketMessages(_ messages: [StoredMessage], notes: inout [String]) -> [[String: Any]] {
        var truncated = 0
        let frames: [[String: Any]] = messages.compactMap { message in
            let opcode: Int
            let data: String
            switch message.kind {
            case .text:
                opcode = 1
                data = String(decoding: message.payload, as: UTF8.self)
            case .binary:
                opcode = 2
                data = message.payload.base64EncodedString()
            default:
                return nil
            }
            if message.isTruncated { truncated += 1 }
            return [
                "type": message.direction == .up ? "send" : "receive",
                "time": finite(message.time.timeIntervalSince1970) ?? 0, "opcode": opcode, "data": data,
            ]
        }
        if truncated > 0 {
            notes.append("\(truncated) WebSocket message\(truncated == 1 ? "" : "s") truncated (recording limits)")
        }
        return frames
    }

    /// The bytes as a string when they are valid UTF-8 throughout.
    static func utf8Text(_ data: Data) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        return text.utf8.elementsEqual(data) ? text : nil
    }

    // MARK: Heads

    /// In wire order, repeats kept.
    static func headerList(_ headers: [HeaderField]) -> [[String: Any]] {
        headers.map { ["name": $0.name, "value": $0.value] }
    }

    /// Every `name=value` of every Cookie header (RFC 6265 §4.2).
    static func requestCookies(_ headers: [HeaderField]) -> [[String: Any]] {
        headers.filter { $0.name.lowercased() == "cookie" }
            .flatMap { $0.value.split(separator: ";") }
            .compactMap { piece -> [String: Any]? in
                let trimmed = piece.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty else { return nil }
                let (name, value) = pair(Substring(trimmed))
                return ["name": name, "value": value]
            }
    }

    /// One cookie per Set-Cookie header, with the attributes HAR 1.2 names (RFC 6265 §5.2).
    static func responseCookies(_ headers: [HeaderField], receivedAt: Date) -> [[String: Any]] {
        headers.filter { $0.name.lowercased() == "set-cookie" }.compactMap { header -> [String: Any]? in
            let parts = header.value.split(separator: ";", omittingEmptySubsequences: false)
            guard let first = parts.first else { return nil }
            let (name, value) = pair(Substring(first.trimmingCharacters(in: .whitespaces)))
            guard !name.isEmpty || !value.isEmpty else { return nil }
            var cookie: [String: Any] = ["name": name, "value": value]
            var expires: Date?
            var maxAge: Double?
            for attribute in parts.dropFirst() {
                let (key, argument) = pair(Substring(attribute.trimmingCharacters(in: .whitespaces)))
                switch key.lowercased() {
                case "path": cookie["path"] = argument
                case "domain": cookie["domain"] = argument
                case "expires": expires = httpDate(argument)
                case "max-age": maxAge = Int64(argument).map(Double.init)
                case "httponly": cookie["httpOnly"] = true
                case "secure": cookie["secure"] = true
                default: break
                }
            }
            // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
            if let maxAge, let date = finite(receivedAt.timeIntervalSince1970 + maxAge) {
                cookie["expires"] = Timestamp.iso8601(Date(timeIntervalSince1970: min(max(date, 0), 253_402_300_799)))
            } else if let expires {
                cookie["expires"] = Timestamp.iso8601(expires)
            }
            return cookie
        }
    }

    /// The query's pairs, form-decoded (`+` is a space, then percent-decoding); a pair that does not decode to
    /// UTF-8 stays as written.
    static func queryString(_ url: String) -> [[String: Any]] {
        guard let mark = url.firstIndex(of: "?") else { return [] }
        var query = url[url.index(after: mark)...]
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        return query.split(separator: "&").map { piece in
            let (name, value) = pair(piece)
            return ["name": formDecoded(name), "value": formDecoded(value)]
        }
    }

    static func formDecoded(_ text: String) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? text
    }

    /// `name=value` split at the first `=`; without one, all of it is the name.
    static func pair(_ text: Substring) -> (String, String) {
        guard let equals = text.firstIndex(of: "=") else { return (String(text), "") }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    /// An HTTP date in any of the three forms RFC 9110 §5.6.7 says to accept, plus the dashed form cookies use.
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in [
            "EEE, dd MMM yyyy HH:mm:ss zzz", "EEE, dd-MMM-yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz",
            "EEE MMM d HH:mm:ss yyyy",
        ] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    /// The server's address when the flow recorded an IP literal (`1.2.3.4:80`, `[::1]:443`), not a name.
    static func ipAddress(of server: String) -> String? {
        let host: String
        if server.hasPrefix("["), let close = server.firstIndex(of: "]") {
            host = String(server[server.index(after: server.startIndex)..<close])
        } else if let colon = server.lastIndex(of: ":") {
            host = String(server[..<colon])
        } else {
            host = server
        }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 { return host }
        return nil
    }

    // MARK: Timings

    /// HAR's phases from Sluice's: `ssl` is also counted in `connect` (HAR 1.2 says so), so `time` is the sum of
    /// the others. `wait` is required and non-negative, so an unknown one is the time to the response head (or 0),
    /// and `receive` is whatever remains of the exchange.
    static func timings(flow: StoredFlow, http: StoredHTTP) -> ([String: Any], Double) {
        let connect = finite(http.timings.connect).map { max(0, $0) }
        let tls = finite(http.timings.tls).map { max(0, $0) }
        let connectWithTLS: Double? = connect == nil && tls == nil ? nil : (connect ?? 0) + (tls ?? 0)
        let start = http.requestedAt.timeIntervalSince1970
        // A WebSocket flow lasts as long as its connection; its entry, like Chrome's, ends with the handshake.
        let endDate =
            flow.kind == FlowKind.websocket.rawValue
            ? (http.respondedAt ?? flow.endedAt) : (flow.endedAt ?? http.respondedAt)
        let elapsed = max(0, ((endDate?.timeIntervalSince1970 ?? start) - start) * 1000)
        let untilHead = http.respondedAt.map { head in
            max(0, (head.timeIntervalSince1970 - start) * 1000 - (connectWithTLS ?? 0))
        }
        let wait: Double
        if http.status == nil {
            wait = max(0, elapsed - (connectWithTLS ?? 0))
        } else {
            wait = finite(http.timings.firstByte).map { max(0, $0) } ?? untilHead ?? 0
        }
        let receive = max(0, elapsed - (connectWithTLS ?? 0) - wait)
        let parts = (connect: connectWithTLS.map(rounded), ssl: tls.map(rounded), wait: rounded(wait))
        let total = rounded((parts.connect ?? 0) + parts.wait + rounded(receive))
        let timings: [String: Any] = [
            "blocked": -1, "dns": -1, "connect": parts.connect ?? -1, "ssl": parts.ssl ?? -1, "send": 0,
            "wait": parts.wait, "receive": rounded(receive),
        ]
        return (timings, total)
    }

    /// Microsecond precision is all a clock reading carries, and it keeps `12.300000000000001` out of the file.
    static func rounded(_ milliseconds: Double) -> Double {
        (milliseconds * 1000).rounded() / 1000
    }

    static func finite(_ value: Double?) -> Double? {
        guard let value, value.isFinite else { return nil }
        return value
    }
}
