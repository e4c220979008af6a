/// A filter's structure as terms a query language can translate, without its regular expressions: the store turns
/// the terms it can into SQL (`FlowQuery`), so a list of millions of flows is filtered where it lies, and the rest
/// are left to `Filter.matches` on the rows the SQL lets through.
public indirect enum FilterShape: Sendable, Equatable {
    case and(FilterShape, FilterShape)
    case or(FilterShape, FilterShape)
    case not(FilterShape)
    case term(FilterTerm)
}

/// One operator of a filter, as far as a query can see it. Each exact term means what `FilterPredicate` means for a
/// stored flow's columns; the `…Contains` terms only narrow (a row without the text cannot match), and `other` says
/// nothing a query can use.
public enum FilterTerm: Sendable, Equatable {
    case all
    case never
    case kind(FlowKind)
    /// `~http`: HTTP exchanges and WebSockets.
    case http
    case statusCode(Int)
    case requestWithoutResponse
    case hasResponse
    case hasError
    case replay
    case marked
    case held
    /// At least this risk among the flow's commands.
    case risk(RiskLevel)
    /// `~src` / `~dst` / `~m` whose pattern is plain text: the address (`host:port`) or method contains it, ASCII
    /// case aside. Necessary, not sufficient: the pattern is still matched as a regular expression on the row.
    case sourceContains(String)
    case destinationContains(String)
    case methodContains(String)
    /// `~b` / `~bq` / `~bs` whose pattern is plain text: the first bytes either way, the client's, the server's
    /// (what the list's rows hold of the payloads) contain it, ASCII case aside.
    case payloadContains(String)
    case requestPayloadContains(String)
    case responsePayloadContains(String)
    /// Regular expressions of payloads, headers, URLs, domains, commands; bare words.
    case other

    /// Whether a query can decide the term alone.
    public var isExact: Bool {
        switch self {
        case .sourceContains, .destinationContains, .methodContains, .payloadContains, .requestPayloadContains,
            .responsePayloadContains, .other:
            return false
        default: return true
        }
    }
}

extension Filter {
    public var shape: FilterShape { expression.shape }
}

extension FilterExpression {
    var shape: FilterShape {
        switch self {
        case .and(let lhs, let rhs): return .and(lhs.shape, rhs.shape)
        case .or(let lhs, let rhs): return .or(lhs.shape, rhs.shape)
        case .not(let inner): return .not(inner.shape)
        case .predicate(let predicate): return .term(predicate.term)
        }
    }
}

extension FilterPredicate {
    var term: FilterTerm {
        switch self {
        case .all: return .all
        case .never: return .never
        case .kind(let kind): return .kind(kind)
        case .http: return .http
        case .statusCode(let code): return .statusCode(code)
        case .requestWithoutResponse: return .requestWithoutResponse
        case .hasResponse: return .hasResponse
        case .hasError: return .hasError
        case .replay: return .replay
        case .marked: return .marked
        case .held: return .held
        case .risk(let level): return .risk(level)
        case .source(let re): return re.literal.map(FilterTerm.sourceContains) ?? .other
        case .destination(let re): return re.literal.map(FilterTerm.destinationContains) ?? .other
        case .method(let re): return re.literal.map(FilterTerm.methodContains) ?? .other
        case .body(let re): return re.literal.map(FilterTerm.payloadContains) ?? .other
        case .requestBody(let re): return re.literal.map(FilterTerm.requestPayloadContains) ?? .other
        case .responseBody(let re): return re.literal.map(FilterTerm.responsePayloadContains) ?? .other
        default: return .other
        }
    }
}

extension FilterRegex {
    /// The pattern as the text it matches, when it has no regular-expression syntax and is ASCII (so that SQL's
    /// ASCII-only case folding agrees with the regex's): `:5432` yes, `:22$` or `a.b` no.
    var literal: String? {
        let plain = pattern.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || " :/-_@=,#%&!<>~'\"".unicodeScalars.contains(scalar))
        }
        return plain && !pattern.isEmpty ? pattern : nil
    }
}
