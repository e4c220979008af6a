import Foundation
import SluiceModel

/// A bash command that repeats one recorded HTTP request with curl, straight to the server (not through Sluice):
/// for a bug report, or to retry a request by hand.
///
/// The printed text goes to a terminal and then to a shell, and every byte of it came from the network, so nothing
/// is pasted in raw: control characters and bidirectional overrides, which could rewrite what the operator sees,
/// are escaped, and a body that is not plain text is piped in through `printf` with octal escapes.
public enum CurlExport {
    /// Bodies up to this size go on the command line; larger ones through a pipe, because Linux limits one
    /// argument to 128 KiB (MAX_ARG_STRLEN) and `printf`, a shell builtin, has no such limit.
    public static let inlineBodyLimit = 64 << 10

    public struct Command: Sendable, Equatable {
        public var text: String
        /// What the command cannot reproduce (a body cut by recording limits), for stderr.
        public var warnings: [String]
    }

    /// The command for an HTTP flow; WebSocket, CONNECT and non-HTTP flows are refused with a reason.
    public static func command(for flow: StoredFlow, messages: [StoredMessage]) throws(CurlExportError) -> Command {
        guard let http = flow.http, flow.kind == FlowKind.http.rawValue else {
            let what = flow.kind == FlowKind.websocket.rawValue ? "a WebSocket flow" : "a \(flow.kind) flow"
            throw CurlExportError("flow \(flow.id) is \(what), not an HTTP request curl can repeat")
        }
        guard http.method.uppercased() != "CONNECT" else {
            throw CurlExportError("flow \(flow.id) is a CONNECT tunnel, not a request curl can repeat")
        }
        guard URLParts(http.url) != nil else {
            throw CurlExportError("flow \(flow.id) has no absolute http(s) URL (\(http.url))")
        }
        let body = flow.body(.up, in: messages)
        var warnings: [String] = []
        if body.isTruncated {
            warnings.append(
                "flow \(flow.id): request body truncated, \(body.truncationNote); the command sends the stored part"
            )
        }
        let text = command(
            method: http.method, url: http.url, version: http.version, headers: http.requestHeaders, body: body.stored
        )
        return Command(text: text, warnings: warnings)
    }

    /// `curl --http1.1 -X METHOD 'URL' -H 'Name: value' ... [--data-binary ...]`, one option per line.
    public static func command(
        method: String, url: String, version: String, headers: [HeaderField], body: Data
    ) -> String {
        var lines = [version == "HTTP/1.0" ? "curl --http1.0" : "curl --http1.1"]
        // `-X HEAD` would leave curl waiting for a body that never comes.
        lines[0] += method.uppercased() == "HEAD" ? " --head" : " -X " + token(method)
        let parts = URLParts(url)
        // curl expands [] and {} in URLs as globs, and removes /./ and /../ unless told not to.
        if url.contains(where: { "[]{}".contains($0) }) { lines[0] += " --globoff" }
        if parts?.hasDotSegments == true { lines[0] += " --path-as-is" }
        lines[0] += " " + quote(url)

        var hasContentType = false
        for header in headers {
            switch header.name.lowercased() {
            case "host":
                // curl sends the URL's authority; a different Host (a virtual host behind an address) is kept.
                if let parts, parts.sameAuthority(asHostHeader: header.value) { continue }
            case "content-length":
                // curl counts the body it sends; a recorded length would be wrong for a truncated body and make
                // the server wait. Only an explicit zero on an empty body is worth keeping.
                guard body.isEmpty, header.value.trimmingCharacters(in: .whitespaces) == "0" else { continue }
            case "content-type":
                hasContentType = true
            default:
                break
            }
            // `Name:` with nothing after it tells curl to remove the header; `Name;` sends it empty.
            lines.append("-H " + quote(header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)"))
        }
        let acceptEncoding = headers.filter { $0.name.lowercased() == "accept-encoding" }
            .map { $0.value.lowercased() }.joined(separator: ",")
        if acceptEncoding.contains("gzip") || acceptEncoding.contains("deflate") {
            lines.append("--compressed")
        }

        var pipe = ""
        if !body.isEmpty {
            if !hasContentType {
                // Otherwise curl adds its own `application/x-www-form-urlencoded`.
                lines.append("-H 'Content-Type:'")
            }
            let text = String(decoding: body, as: UTF8.self)
            let isPlainText = text.utf8.elementsEqual(body) && text.unicodeScalars.allSatisfy(isPlain)
            if isPlainText && body.count <= inlineBodyLimit {
                // `--data-binary @x` would read the file x; `--data-raw` takes the text as it is.
                lines.append((text.hasPrefix("@") ? "--data-raw " : "--data-binary ") + quote(text))
            } else {
                pipe = (isPlainText ? "printf '%s' " + quote(text) : "printf " + printfFormat(body)) + " | "
                lines.append("--data-binary @-")
            }
        }
        return pipe + lines.joined(separator: " \\\n  ") + "\n"
    }

    // MARK: Shell quoting

    /// `'text'` (a `'` written as `'\''`), or bash's `$'text'` with escapes when the text holds a character that a
    /// terminal would act on rather than show.
    public static func quote(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy(isPlain) {
            return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }
        var out = "$'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where isPlain(scalar): out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x80: out += "\\x" + hex(scalar.value, width: 2)
            default: out += "\\u" + hex(scalar.value, width: 4)
            }
        }
        return out + "'"
    }

    /// A method is a plain word and reads better bare; anything else a shell might act on is quoted.
    static func token(_ text: String) -> String {
        let safe = Set("-_.+0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        return !text.isEmpty && text.allSatisfy(safe.contains) ? text : quote(text)
    }

    /// Shown as itself in a terminal: not a C0 or C1 control (except tab and newline), not DEL, not a
    /// bidirectional override or isolate (which can make a command read differently from what runs).
    static func isPlain(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0a: return true
        case 0x00..<0x20, 0x7f...0x9f: return false
        case 0x200e, 0x200f, 0x202a...0x202e, 0x2066...0x2069: return false
        default: return true
        }
    }

    /// A `printf` format (single-quoted) that writes exactly `bytes`: printable ASCII as itself, `%` and `\`
    /// doubled, everything else as a three-digit octal escape, which POSIX printf (bash, dash, /usr/bin) reads.
    static func printfFormat(_ bytes: Data) -> String {
        var out = "'"
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "'"): out += "'\\''"
            case UInt8(ascii: "%"): out += "%%"
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20...0x7e: out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let octal = String(byte, radix: 8)
                out += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
            }
        }
        return out + "'"
    }

    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// Why a flow has no curl command.
public struct CurlExportError: Error, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The pieces of an absolute http(s) URL that the Host header and curl's options depend on.
struct URLParts {
    var scheme: String
    /// `host[:port]` as written, without user info, lowercased.
    var authority: String
    var path: String

    init?(_ url: String) {
        guard let separator = url.range(of: "://") else { return nil }
        scheme = url[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = url[separator.upperBound...]
        let authorityEnd = rest.firstIndex(where: { "/?#".contains($0) }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard !authority.isEmpty else { return nil }
        self.authority = authority.lowercased()
        let afterAuthority = rest[authorityEnd...]
        path = String(afterAuthority.prefix(while: { $0 != "?" && $0 != "#" }))
    }

    var hasDotSegments: Bool {
        path.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == "." || $0 == ".." }
    }

    /// Equal up to case and the scheme's default port, which curl leaves out of the Host it sends.
    func sameAuthority(asHostHeader value: String) -> Bool {
        normalized(authority) == normalized(value.trimmingCharacters(in: .whitespaces).lowercased())
    }

    private func normalized(_ authority: String) -> String {
        let defaultPort = scheme == "https" ? ":443" : ":80"
        return authority.hasSuffix(defaultPort) ? String(authority.dropLast(defaultPort.count)) : authority
    }
}
