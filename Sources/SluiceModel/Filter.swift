import Foundation

/// The filter language, one for the view filter (`f`) and the intercept filter (`i`), close to mitmproxy's:
///
///     ~k tcp & ~dst :5432            ~m POST ~u /login         !(~c 200 | ~c 304)         ~b "pass word"
///
/// Operators: `~k KIND` (tcp, http, ws, ssh, pg, mysql), `~src ADDR` and `~dst ADDR` (`host`, `:port`,
/// `host:port`), `~b RE` (payload either way), `~bq RE` (request / client side), `~bs RE` (response / server side),
/// `~m METHOD`, `~u RE`, `~c CODE`, `~h RE` (a header line), `~t RE` (content type), `~q` (request without
/// response), `~s` (has a response), `~e` (has an error), `~marked`, `~held`, `~risk LEVEL` (at least LEVEL),
/// `~cmd RE`. Combine with `!`, `&` (or just a space), `|` and parentheses; `!` binds tightest, then `&`, then `|`.
/// Arguments may be quoted with '…' or "…" (backslash escapes). A bare word matches the URL or the payload.
/// Regular expressions are case-insensitive. An operator that does not apply to a flow's kind is false.
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
}

/// `host`, `:port` or `host:port`, for `~src` and `~dst`.
struct AddressPattern: Sendable, Equatable {
    var host: String?
    var port: Int?

    func matches(_ endpoint: Endpoint?) -> Bool {
        guard let endpoint else { return false }
        if let host, host.lowercased() != endpoint.host.lowercased() { return false }
        if let port, port != endpoint.port { return false }
        return true
    }
}

/// A compiled, case-insensitive regular expression.
struct FilterRegex: @unchecked Sendable {
    // @unchecked: NSRegularExpression is immutable and documented thread-safe.
    let pattern: String
    let regex: NSRegularExpression

    init(_ pattern: String) throws {
        self.pattern = pattern
        self.regex = try NSRegularExpression(pattern: pattern, options: [.caseInsensitive])
    }

    func matches(_ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Payloads are matched as text; bytes that are not UTF-8 become U+FFFD and match nothing in particular.
    func matches(_ data: Data) -> Bool {
        !data.isEmpty && matches(String(decoding: data, as: UTF8.self))
    }
}

enum FilterPredicate: Sendable {
    case kind(FlowKind)
    case source(AddressPattern)
    case destination(AddressPattern)
    case body(FilterRegex)
    case requestBody(FilterRegex)
    case responseBody(FilterRegex)
    case method(String)
    case url(FilterRegex)
    case statusCode(Int)
    case header(FilterRegex)
    case contentType(FilterRegex)
    case requestWithoutResponse
    case hasResponse
    case hasError
    case marked
    case held
    case risk(RiskLevel)
    case command(FilterRegex)
    /// A bare word: the URL or the payload.
    case anywhere(FilterRegex)

    func matches(_ s: FilterSubject) -> Bool {
        switch self {
        case .kind(let kind): return s.kind == kind
        case .source(let pattern): return pattern.matches(s.client)
        case .destination(let pattern): return pattern.matches(s.server)
        case .body(let re): return re.matches(s.requestPayload) || re.matches(s.responsePayload)
        case .requestBody(let re): return re.matches(s.requestPayload)
        case .responseBody(let re): return re.matches(s.responsePayload)
        case .method(let method): return s.method?.uppercased() == method.uppercased()
        case .url(let re): return s.url.map(re.matches) ?? false
        case .statusCode(let code): return s.statusCode == code
        case .header(let re): return s.headers.contains(where: re.matches)
        case .contentType(let re): return s.contentType.map(re.matches) ?? false
        case .requestWithoutResponse: return s.method != nil && !s.hasResponse
        case .hasResponse: return s.hasResponse
        case .hasError: return s.hasError
        case .marked: return s.isMarked
        case .held: return s.isHeld
        case .risk(let level): return s.risk.map { $0 >= level } ?? false
        case .command(let re): return s.commands.contains(where: re.matches)
        case .anywhere(let re):
            return (s.url.map(re.matches) ?? false) || re.matches(s.requestPayload) || re.matches(s.responsePayload)
        }
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
        switch name {
        case "~q": return .requestWithoutResponse
        case "~s": return .hasResponse
        case "~e": return .hasError
        case "~marked": return .marked
        case "~held": return .held
        case "~k":
            let (value, at) = try argument(for: name, expected: "a flow kind (tcp, http, ws, ssh, pg, mysql)")
            guard let kind = Self.kinds[value.lowercased()] else {
                throw FilterError(column: at, message: "expected a flow kind (tcp, http, ws, ssh, pg, mysql), got '\(value)'")
            }
            return .kind(kind)
        case "~src", "~dst":
            let (value, at) = try argument(for: name, expected: "an address (host, :port or host:port)")
            let pattern = try address(value, column: at)
            return name == "~src" ? .source(pattern) : .destination(pattern)
        case "~b", "~bq", "~bs", "~u", "~h", "~t", "~cmd":
            let (value, at) = try argument(for: name, expected: "a regular expression")
            let re = try regex(value, column: at)
            switch name {
            case "~b": return .body(re)
            case "~bq": return .requestBody(re)
            case "~bs": return .responseBody(re)
            case "~u": return .url(re)
            case "~h": return .header(re)
            case "~t": return .contentType(re)
            default: return .command(re)
            }
        case "~m":
            let (value, at) = try argument(for: name, expected: "an HTTP method")
            guard !value.isEmpty, value.allSatisfy({ $0.isLetter }) else {
                throw FilterError(column: at, message: "expected an HTTP method, got '\(value)'")
            }
            return .method(value)
        case "~c":
            let (value, at) = try argument(for: name, expected: "a status code")
            guard let code = Int(value), (100...599).contains(code) else {
                throw FilterError(column: at, message: "expected a status code (100-599), got '\(value)'")
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

    private func regex(_ pattern: String, column: Int) throws(FilterError) -> FilterRegex {
        do {
            return try FilterRegex(pattern)
        } catch {
            throw FilterError(column: column, message: "'\(pattern)' is not a valid regular expression")
        }
    }

    private func address(_ text: String, column: Int) throws(FilterError) -> AddressPattern {
        var host: String? = text
        var port: Int?
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) ?? -1 }
        } else if let colon = text.lastIndex(of: ":"), text.filter({ $0 == ":" }).count == 1 {
            host = colon == text.startIndex ? nil : String(text[..<colon])
            port = Int(text[text.index(after: colon)...]) ?? -1
        }
        if let port, !(1...65535).contains(port) {
            throw FilterError(column: column, message: "expected a port (1-65535) in '\(text)'")
        }
        if host?.isEmpty == true { host = nil }
        guard host != nil || port != nil else { throw FilterError(column: column, message: "expected an address, got '\(text)'") }
        return AddressPattern(host: host, port: port)
    }

    static let kinds: [String: FlowKind] = [
        "tcp": .tcp, "http": .http, "https": .http, "ws": .websocket, "websocket": .websocket, "ssh": .ssh,
        "pg": .postgres, "postgres": .postgres, "postgresql": .postgres, "mysql": .mysql,
    ]
}
