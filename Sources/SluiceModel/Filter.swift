import Foundation

/// The filter language, one for the view filter (`f`), the intercept filter (`i`) and the CLI (`sluice flows
/// --filter`, `sluice export`). Users bring mitmproxy's habits, so its operators mean what mitmproxy 11's
/// `flowfilter` makes them mean (checked against mitmproxy itself by tests/e2e/test_filter_parity.py):
///
///     ~k tcp & ~dst ':5432$'        ~m POST ~u /login         !(~c 200 | ~c 304)         ~b "pass word"
///
/// mitmproxy's: `~all`, `~http`, `~websocket`, `~tcp`, `~q` (request without response), `~s` (has a response),
/// `~e` (error), `~marked`, `~replay`, `~a` (asset response: CSS, JavaScript, image, font), `~c CODE`, and with a
/// regular expression `~b`/`~bq`/`~bs` (payload either way / client side / server side: bodies and messages),
/// `~h`/`~hq`/`~hs` (header lines `name: value`), `~t`/`~tq`/`~ts` (content type), `~m` (method), `~d` (domain),
/// `~u` (URL), `~src`/`~dst` (`host:port`). Sluice's own: `~k KIND` (tcp, http, ws, ssh, pg, mysql), `~held`,
/// `~risk LEVEL` (at least LEVEL), `~cmd RE`. Combine with `!`, `&` (or just a space), `|` and parentheses; `!`
/// binds tightest, then `&`, then `|`. Arguments may be quoted with '…' or "…" (backslash escapes); unquoted, one
/// ends at a space, `&`, `|` or a parenthesis. A bare word matches the URL or the payload (mitmproxy: the URL only).
/// Regular expressions are searched, case-insensitively. An operator that does not apply to a flow's kind is false.
public struct Filter: Sendable, CustomStringConvertible {
    public let text: String
    let expression: FilterExpression

    public init(_ text: String) throws(FilterError) {
        self.text = text
        var parser = FilterParser(text)
        self.expression = try parser.parse()
    }

    public func matches(_ subject: FilterSubject) -> Bool {
        expression.matches(subject)
    }

    public var description: String { text }

    /// The bare words that are plain words, not patterns (letters, digits and `.` `_` `-` `@` `:` `/`), as
    /// written: what a full-text index can look up (`FilterSubject.indexedWords`).
    public var plainWords: [String] {
        var words: [String] = []
        expression.collectBareWords(into: &words)
        let plain = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-@:/"))
        return words.filter { word in
            word.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) } && word.unicodeScalars.allSatisfy { plain.contains($0) }
        }
    }
}

/// Where a filter went wrong: the 1-based column and what was expected there.
public struct FilterError: Error, Equatable, CustomStringConvertible {
    public var column: Int
    public var message: String

    public var description: String { "column \(column): \(message)" }
}

indirect enum FilterExpression: Sendable {
    case and(FilterExpression, FilterExpression)
    case or(FilterExpression, FilterExpression)
    case not(FilterExpression)
    case predicate(FilterPredicate)

    func matches(_ subject: FilterSubject) -> Bool {
        switch self {
        case .and(let lhs, let rhs): return lhs.matches(subject) && rhs.matches(subject)
        case .or(let lhs, let rhs): return lhs.matches(subject) || rhs.matches(subject)
        case .not(let inner): return !inner.matches(subject)
        case .predicate(let predicate): return predicate.matches(subject)
        }
    }

    func collectBareWords(into words: inout [String]) {
        switch self {
        case .and(let lhs, let rhs), .or(let lhs, let rhs):
            lhs.collectBareWords(into: &words)
            rhs.collectBareWords(into: &words)
        case .not(let inner): inner.collectBareWords(into: &words)
        case .predicate(.anywhere(let re)): words.append(re.pattern)
        case .predicate: break
        }
    }
}

/// A compiled regular expression (case-insensitive unless asked), used the way mitmproxy uses its own: searched,
/// not anchored, with only `\n` ending a line as in Python.
///
/// mitmproxy matches bodies, headers, content types and methods as bytes and URLs, domains and addresses as text.
/// `matches(bytes:)` does the same: each byte becomes the character of that code point (Latin-1), and so does each
/// byte of the pattern's UTF-8, so `\xff` finds a 0xff byte and `é` finds its two UTF-8 bytes, as in mitmproxy.
struct FilterRegex: @unchecked Sendable {
    // @unchecked: NSRegularExpression is immutable and documented thread-safe.
    let pattern: String
    private let textRegex: NSRegularExpression
    private let bytesRegex: NSRegularExpression

    /// Python's flags that some of mitmproxy's operators add: `DOTALL` for bodies, `MULTILINE` for header lines.
    enum Flag {
        case dotAll, multiline
    }

    init(_ pattern: String, flag: Flag? = nil, caseInsensitive: Bool = true) throws {
        var options: NSRegularExpression.Options = [.useUnixLineSeparators]
        if caseInsensitive { options.insert(.caseInsensitive) }
        switch flag {
        case .dotAll: options.insert(.dotMatchesLineSeparators)
        case .multiline: options.insert(.anchorsMatchLines)
        case nil: break
        }
        self.pattern = pattern
        textRegex = try NSRegularExpression(pattern: pattern, options: options)
        let bytesPattern = Self.latin1(Data(pattern.utf8))
        bytesRegex =
            bytesPattern == pattern ? textRegex : try NSRegularExpression(pattern: bytesPattern, options: options)
    }

    func matches(text: String) -> Bool {
        textRegex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    func matches(bytes: Data) -> Bool {
        let text = Self.latin1(bytes)
        return bytesRegex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Text as mitmproxy's bytes patterns see it: its UTF-8, one character per byte.
    func matches(utf8 text: String) -> Bool {
        matches(bytes: Data(text.utf8))
    }

    /// One character per byte, U+0000 to U+00FF.
    static func latin1(_ bytes: Data) -> String {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: bytes.lazy.map { Unicode.Scalar($0) })
        return String(scalars)
    }
}

enum FilterPredicate: Sendable {
    case all
    case kind(FlowKind)
    /// mitmproxy's `~http`: HTTP exchanges and WebSockets, which begin as one.
    case http
    /// A kind Sluice never records (`~udp`, `~dns`): accepted so that mitmproxy filters parse, never true.
    case never
    case source(FilterRegex)
    case destination(FilterRegex)
    case body(FilterRegex)
    case requestBody(FilterRegex)
    case responseBody(FilterRegex)
    case method(FilterRegex)
    case domain(FilterRegex)
    case url(FilterRegex)
    case statusCode(Int)
    case header(FilterRegex)
    case requestHeader(FilterRegex)
    case responseHeader(FilterRegex)
    case contentType(FilterRegex)
    case requestContentType(FilterRegex)
    case responseContentType(FilterRegex)
    case asset
    case requestWithoutResponse
    case hasResponse
    case hasError
    case replay
    case marked
    case held
    case risk(RiskLevel)
    case command(FilterRegex)
    /// A bare word: the URL or the payload.
    case anywhere(FilterRegex)

    /// mitmproxy's `~a`: response content types of CSS, JavaScript, images and fonts. Matched case-sensitively, as
    /// mitmproxy compiles these without its usual ignore-case flag.
    static let assetTypes: [FilterRegex] = [
        "text/javascript", "application/x-javascript", "application/javascript", "text/css", "image/.*", "font/.*",
        "application/font.*",
    ].compactMap { try? FilterRegex($0, caseInsensitive: false) }

    func matches(_ s: FilterSubject) -> Bool {
        switch self {
        case .all: return true
        case .kind(let kind): return s.kind == kind
        case .http: return s.isHTTP
        case .never: return false
        case .source(let re): return FilterSubject.address(s.client).map { re.matches(text: $0) } ?? false
        case .destination(let re): return FilterSubject.address(s.server).map { re.matches(text: $0) } ?? false
        case .body(let re): return Self.any(s.requestPayloads, re) || Self.any(s.responsePayloads, re)
        case .requestBody(let re): return Self.any(s.requestPayloads, re)
        case .responseBody(let re): return Self.any(s.responsePayloads, re)
        case .method(let re): return s.isHTTP && (s.method.map { re.matches(utf8: $0) } ?? false)
        case .domain(let re): return s.isHTTP && s.domains.contains { re.matches(text: $0) }
        case .url(let re): return s.isHTTP && (s.prettyURL.map { re.matches(text: $0) } ?? false)
        case .statusCode(let code): return s.isHTTP && s.statusCode == code
        case .header(let re):
            return Self.requestHeader(s, re) || Self.responseHeader(s, re)
        case .requestHeader(let re): return Self.requestHeader(s, re)
        case .responseHeader(let re): return Self.responseHeader(s, re)
        case .contentType(let re):
            return Self.requestContentType(s, re) || Self.responseContentType(s, re)
        case .requestContentType(let re): return Self.requestContentType(s, re)
        case .responseContentType(let re): return Self.responseContentType(s, re)
        case .asset: return Self.assetTypes.contains { Self.responseContentType(s, $0) }
        case .requestWithoutResponse: return s.isHTTP && !s.hasResponse
        case .hasResponse: return s.isHTTP && s.hasResponse
        case .hasError: return s.hasError
        case .replay: return s.isReplay
        case .marked: return s.isMarked
        case .held: return s.isHeld
        case .risk(let level): return s.risk.map { $0 >= level } ?? false
        case .command(let re): return s.commands.contains { re.matches(text: $0) }
        case .anywhere(let re):
            return s.indexedWords.contains(re.pattern) || (s.url.map { re.matches(text: $0) } ?? false)
                || Self.any(s.requestPayloads, re) || Self.any(s.responsePayloads, re)
        }
    }

    private static func any(_ payloads: [Data], _ re: FilterRegex) -> Bool {
        payloads.contains { re.matches(bytes: $0) }
    }

    private static func requestHeader(_ s: FilterSubject, _ re: FilterRegex) -> Bool {
        s.isHTTP && re.matches(utf8: FilterSubject.headerText(s.requestHeaders))
    }

    private static func responseHeader(_ s: FilterSubject, _ re: FilterRegex) -> Bool {
        s.isHTTP && s.hasResponse && re.matches(utf8: FilterSubject.headerText(s.responseHeaders))
    }

    private static func requestContentType(_ s: FilterSubject, _ re: FilterRegex) -> Bool {
        s.isHTTP && FilterSubject.contentTypes(s.requestHeaders).contains { re.matches(utf8: $0) }
    }

    private static func responseContentType(_ s: FilterSubject, _ re: FilterRegex) -> Bool {
        s.isHTTP && s.hasResponse && FilterSubject.contentTypes(s.responseHeaders).contains { re.matches(utf8: $0) }
    }
}

/// Recursive descent over tokens: `or := and ('|' and)*`, `and := unary ('&'? unary)*`,
/// `unary := '!' unary | '(' or ')' | operator | word`.
struct FilterParser {
    enum TokenKind: Equatable {
        case word(String)
        case quoted(String)
        case not, and, or, open, close
    }

    struct Token {
        var kind: TokenKind
        var column: Int
    }

    private var tokens: [Token] = []
    private var position = 0
    private let endColumn: Int
    private var lexError: FilterError?

    init(_ text: String) {
        let characters = Array(text)
        endColumn = characters.count + 1
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let column = index + 1
            switch character {
            case " ", "\t", "\n":
                index += 1
            case "!": tokens.append(Token(kind: .not, column: column)); index += 1
            case "&": tokens.append(Token(kind: .and, column: column)); index += 1
            case "|": tokens.append(Token(kind: .or, column: column)); index += 1
            case "(": tokens.append(Token(kind: .open, column: column)); index += 1
            case ")": tokens.append(Token(kind: .close, column: column)); index += 1
            case "\"", "'":
                var value = ""
                var cursor = index + 1
                var closed = false
                while cursor < characters.count {
                    let next = characters[cursor]
                    if next == "\\", cursor + 1 < characters.count {
                        value.append(characters[cursor + 1])
                        cursor += 2
                    } else if next == character {
                        closed = true
                        cursor += 1
                        break
                    } else {
                        value.append(next)
                        cursor += 1
                    }
                }
                if !closed, lexError == nil {
                    lexError = FilterError(column: column, message: "unclosed quote \(character)")
                }
                tokens.append(Token(kind: .quoted(value), column: column))
                index = cursor
            default:
                var value = ""
                var cursor = index
                while cursor < characters.count, !" \t\n&|()".contains(characters[cursor]) {
                    value.append(characters[cursor])
                    cursor += 1
                }
                tokens.append(Token(kind: .word(value), column: column))
                index = cursor
            }
        }
    }

    mutating func parse() throws(FilterError) -> FilterExpression {
        if let lexError { throw lexError }
        guard !tokens.isEmpty else { throw FilterError(column: 1, message: "expected an expression") }
        let expression = try parseOr()
        if let extra = peek {
            throw FilterError(column: extra.column, message: extra.kind == .close ? "unmatched ')'" : "expected '&', '|' or the end")
        }
        return expression
    }

    private var peek: Token? { position < tokens.count ? tokens[position] : nil }

    private var nextColumn: Int { peek?.column ?? endColumn }

    private mutating func parseOr() throws(FilterError) -> FilterExpression {
        var expression = try parseAnd()
        while peek?.kind == .or {
            position += 1
            guard peek != nil, peek?.kind != .close, peek?.kind != .or, peek?.kind != .and else {
                throw FilterError(column: nextColumn, message: "expected an expression after '|'")
            }
            expression = .or(expression, try parseAnd())
        }
        return expression
    }

    private mutating func parseAnd() throws(FilterError) -> FilterExpression {
        var expression = try parseUnary()
        while let token = peek, token.kind != .or, token.kind != .close {
            if token.kind == .and {
                position += 1
                guard peek != nil, peek?.kind != .close, peek?.kind != .or else {
                    throw FilterError(column: nextColumn, message: "expected an expression after '&'")
                }
            }
            expression = .and(expression, try parseUnary())
        }
        return expression
    }

    private mutating func parseUnary() throws(FilterError) -> FilterExpression {
        guard let token = peek else { throw FilterError(column: endColumn, message: "expected an expression") }
        switch token.kind {
        case .not:
            position += 1
            guard peek != nil else { throw FilterError(column: endColumn, message: "expected an expression after '!'") }
            return .not(try parseUnary())
        case .open:
            position += 1
            guard peek?.kind != .close else { throw FilterError(column: nextColumn, message: "expected an expression inside '( )'") }
            let inner = try parseOr()
            guard peek?.kind == .close else { throw FilterError(column: nextColumn, message: "expected ')' to close '(' at column \(token.column)") }
            position += 1
            return inner
        case .close:
            throw FilterError(column: token.column, message: "unmatched ')'")
        case .and, .or:
            throw FilterError(column: token.column, message: "expected an expression before '\(token.kind == .and ? "&" : "|")'")
        case .quoted(let value):
            position += 1
            return .predicate(.anywhere(try regex(value, column: token.column)))
        case .word(let word):
            position += 1
            guard word.hasPrefix("~") else { return .predicate(.anywhere(try regex(word, column: token.column))) }
            return .predicate(try parseOperator(word, column: token.column))
        }
    }

    private mutating func parseOperator(_ name: String, column: Int) throws(FilterError) -> FilterPredicate {
        if let predicate = Self.unary[name] { return predicate }
        if let (flag, make) = Self.regexOperators[name] {
            let (value, at) = try argument(for: name, expected: "a regular expression")
            return make(try regex(value, flag: flag, column: at))
        }
        switch name {
        case "~k":
            let (value, at) = try argument(for: name, expected: "a flow kind (tcp, http, ws, ssh, pg, mysql)")
            guard let kind = Self.kinds[value.lowercased()] else {
                throw FilterError(column: at, message: "expected a flow kind (tcp, http, ws, ssh, pg, mysql), got '\(value)'")
            }
            return .kind(kind)
        case "~c":
            // Any number, as mitmproxy's `~c` takes; a status that cannot be is simply never matched.
            let (value, at) = try argument(for: name, expected: "a status code")
            guard !value.isEmpty, value.allSatisfy({ ("0"..."9").contains($0) }), let code = Int(value) else {
                throw FilterError(column: at, message: "expected a status code, got '\(value)'")
            }
            return .statusCode(code)
        case "~risk":
            let (value, at) = try argument(for: name, expected: "a risk level (low, medium, high, critical)")
            guard let level = RiskLevel(rawValue: value.lowercased()) else {
                throw FilterError(column: at, message: "expected a risk level (low, medium, high, critical), got '\(value)'")
            }
            return .risk(level)
        default:
            throw FilterError(column: column, message: "unknown operator \(name)")
        }
    }

    /// Operators without an argument.
    static let unary: [String: FilterPredicate] = [
        "~all": .all, "~a": .asset, "~e": .hasError, "~q": .requestWithoutResponse, "~s": .hasResponse,
        "~http": .http, "~websocket": .kind(.websocket), "~tcp": .kind(.tcp), "~udp": .never, "~dns": .never,
        "~replay": .replay, "~replayq": .replay, "~replays": .never, "~marked": .marked, "~held": .held,
    ]

    /// Operators that take a regular expression, with the flag mitmproxy compiles it with.
    static let regexOperators: [String: (FilterRegex.Flag?, @Sendable (FilterRegex) -> FilterPredicate)] = [
        "~b": (.dotAll, { .body($0) }), "~bq": (.dotAll, { .requestBody($0) }), "~bs": (.dotAll, { .responseBody($0) }),
        "~h": (.multiline, { .header($0) }), "~hq": (.multiline, { .requestHeader($0) }),
        "~hs": (.multiline, { .responseHeader($0) }),
        "~t": (nil, { .contentType($0) }), "~tq": (nil, { .requestContentType($0) }),
        "~ts": (nil, { .responseContentType($0) }),
        "~m": (nil, { .method($0) }), "~d": (nil, { .domain($0) }), "~u": (nil, { .url($0) }),
        "~src": (nil, { .source($0) }), "~dst": (nil, { .destination($0) }), "~cmd": (nil, { .command($0) }),
    ]

    private mutating func argument(for name: String, expected: String) throws(FilterError) -> (String, Int) {
        guard let token = peek else { throw FilterError(column: endColumn, message: "expected \(expected) after \(name)") }
        switch token.kind {
        case .word(let value) where !value.hasPrefix("~"):
            position += 1
            return (value, token.column)
        case .quoted(let value):
            position += 1
            return (value, token.column)
        default:
            throw FilterError(column: token.column, message: "expected \(expected) after \(name)")
        }
    }

    private func regex(
        _ pattern: String, flag: FilterRegex.Flag? = nil, column: Int
    ) throws(FilterError) -> FilterRegex {
        do {
            return try FilterRegex(pattern, flag: flag)
        } catch {
            throw FilterError(column: column, message: "'\(pattern)' is not a valid regular expression")
        }
    }

    static let kinds: [String: FlowKind] = [
        "tcp": .tcp, "http": .http, "https": .http, "ws": .websocket, "websocket": .websocket, "ssh": .ssh,
        "pg": .postgres, "postgres": .postgres, "postgresql": .postgres, "mysql": .mysql,
    ]
}
