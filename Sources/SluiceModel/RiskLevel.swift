/// How dangerous a shell command or SQL statement is, as the policy rates it. Ordered: `low < critical`.
public enum RiskLevel: String, Sendable, CaseIterable, Comparable, Codable {
    case low
    case medium
    case high
    case critical

    private var rank: Int {
        switch self {
        case .low: return 0
        case .medium: return 1
        case .high: return 2
        case .critical: return 3
        }
    }

    public static func < (lhs: RiskLevel, rhs: RiskLevel) -> Bool { lhs.rank < rhs.rank }
}
