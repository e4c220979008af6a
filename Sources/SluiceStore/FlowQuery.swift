import SluiceModel

/// Which stored flows a list may show, as an SQL condition over `flows f LEFT JOIN http h`: the view filter's terms
/// that SQL can decide (kinds, status, errors, marks, holds, risk, `z`), so that paging through millions of flows
/// reads only the ones listed.
///
/// A term SQL cannot decide (a regular expression on a payload, a header, a URL) becomes a condition every match
/// meets (`1`, or "the address contains this text"): the condition may then let through rows the filter rejects,
/// never the other way round, and the caller checks those rows with `Filter.matches` (`isExact` says whether it
/// must). Under a `!`, the two bounds swap: `!A` is sure to hold only where `A` surely fails.
public struct FlowQuery: Sendable, Equatable {
    public var shape: FilterShape?
    /// `z`: flows up to this one are no longer listed.
    public var after: FlowID?
    /// Marks made and taken back in this session, which the store may not have (a read-only view keeps them in
    /// memory only); the store's `marked` column counts for every other flow.
    public var marked: Set<FlowID>
    public var unmarked: Set<FlowID>
    /// The flows with a message held now.
    public var held: Set<FlowID>

    public init(
        shape: FilterShape? = nil, after: FlowID? = nil, marked: Set<FlowID> = [], unmarked: Set<FlowID> = [], held: Set<FlowID> = []
    ) {
        self.shape = shape
        self.after = after
        self.marked = marked
        self.unmarked = unmarked
        self.held = held
    }

    /// Whether the condition lists exactly the flows the filter does.
    public var isExact: Bool { shape.map(Self.isExact) ?? true }

    /// The SQL condition (no arguments: the few literals are quoted in it).
    public var condition: String {
        var parts: [String] = []
        if let after { parts.append("f.id > \(after.rawValue)") }
        if let shape { parts.append(bounds(shape).wide) }
        return parts.isEmpty ? "1" : parts.map { "(\($0))" }.joined(separator: " AND ")
    }

    private static func isExact(_ shape: FilterShape) -> Bool {
        switch shape {
        case .and(let lhs, let rhs), .or(let lhs, let rhs): return isExact(lhs) && isExact(rhs)
        case .not(let inner): return isExact(inner)
        case .term(let term): return term.isExact
        }
    }

    /// `wide`: met by every row the shape matches; `narrow`: met only by rows it matches.
    private func bounds(_ shape: FilterShape) -> (wide: String, narrow: String) {
        switch shape {
        case .and(let lhs, let rhs):
            let (a, b) = (bounds(lhs), bounds(rhs))
            return ("(\(a.wide)) AND (\(b.wide))", "(\(a.narrow)) AND (\(b.narrow))")
        case .or(let lhs, let rhs):
            let (a, b) = (bounds(lhs), bounds(rhs))
            return ("(\(a.wide)) OR (\(b.wide))", "(\(a.narrow)) OR (\(b.narrow))")
        case .not(let inner):
            let bound = bounds(inner)
            return ("NOT (\(bound.narrow))", "NOT (\(bound.wide))")
        case .term(let term):
            // SQL's NULL (a flow without a response has no status) would make `NOT` false as well: a term is 0 or 1.
            let sql = "coalesce((\(sql(term))), 0)"
            return term.isExact ? (sql, sql) : (sql, "0")
        }
    }

    private static let httpKinds = "f.kind IN ('\(FlowKind.http.rawValue)', '\(FlowKind.websocket.rawValue)')"

    private func sql(_ term: FilterTerm) -> String {
        switch term {
        case .all: return "1"
        case .never: return "0"
        case .kind(let kind): return "f.kind = \(Self.quoted(kind.rawValue))"
        case .http: return Self.httpKinds
        case .statusCode(let code): return "\(Self.httpKinds) AND h.status = \(code)"
        case .requestWithoutResponse: return "\(Self.httpKinds) AND h.status IS NULL"
        case .hasResponse: return "\(Self.httpKinds) AND h.status IS NOT NULL"
        case .hasError: return "f.state = \(Self.quoted(FlowState.error.rawValue))"
        case .replay: return "f.replay_of_flow IS NOT NULL OR h.replay_of IS NOT NULL"
        case .marked:
            return "(f.marked = 1 AND f.id NOT IN (\(Self.list(unmarked)))) OR f.id IN (\(Self.list(marked)))"
        case .held: return "f.id IN (\(Self.list(held)))"
        case .risk(let level):
            let levels = RiskLevel.allCases.filter { $0 >= level }.map { Self.quoted($0.rawValue) }.joined(separator: ", ")
            return "EXISTS (SELECT 1 FROM commands c WHERE c.flow_id = f.id AND c.risk IN (\(levels)))"
        // The filter sees `host:port` with an IPv6 host unbracketed; the store keeps `[host]:port`.
        case .sourceContains(let text): return "instr(lower(replace(replace(f.client, '[', ''), ']', '')), \(Self.quoted(text.lowercased()))) > 0"
        case .destinationContains(let text):
            return "instr(lower(replace(replace(f.server, '[', ''), ']', '')), \(Self.quoted(text.lowercased()))) > 0"
        case .methodContains(let text): return "\(Self.httpKinds) AND instr(lower(h.method), \(Self.quoted(text.lowercased()))) > 0"
        case .payloadContains(let text): return "\(Self.preview(.up, contains: text)) OR \(Self.preview(.down, contains: text))"
        case .requestPayloadContains(let text): return Self.preview(.up, contains: text)
        case .responsePayloadContains(let text): return Self.preview(.down, contains: text)
        case .other: return "1"
        }
    }

    /// How many bytes of a flow's first message each way a page carries: what the list's payload filters see.
    public static let previewBytes = 256

    /// The first `previewBytes` of the flow's first message one way (a body kept once in `bodies` comes from there).
    static func preview(_ direction: Direction) -> String {
        """
        (SELECT substr(coalesce((SELECT data FROM bodies b WHERE b.id = m.body_id), payload), 1, \(previewBytes))
           FROM messages m WHERE m.flow_id = f.id AND m.direction = '\(direction.rawValue)' ORDER BY seq LIMIT 1)
        """
    }

    private static func preview(_ direction: Direction, contains text: String) -> String {
        "instr(lower(\(preview(direction))), \(quoted(text.lowercased()))) > 0"
    }

    private static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    private static func list(_ ids: Set<FlowID>) -> String {
        ids.map { String($0.rawValue) }.sorted().joined(separator: ", ")
    }
}
