import SluiceModel

/// The action for each risk level; a rule's own `action` overrides it.
public struct LevelActions: Sendable, Equatable {
    public var low: PolicyAction = .allow
    public var medium: PolicyAction = .alert
    public var high: PolicyAction = .hold
    public var critical: PolicyAction = .block

    public init() {}

    public subscript(risk: RiskLevel) -> PolicyAction {
        get {
            switch risk {
            case .low: return low
            case .medium: return medium
            case .high: return high
            case .critical: return critical
            }
        }
        set {
            switch risk {
            case .low: low = newValue
            case .medium: medium = newValue
            case .high: high = newValue
            case .critical: critical = newValue
            }
        }
    }
}
