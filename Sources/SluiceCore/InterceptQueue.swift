import SluiceModel

/// The intercept queue as an operator works it: the filter that decides what is held, the held messages and
/// commands, and verdicts on them. The engine's `InterceptGate` is one; a TUI attached to a recorder elsewhere
/// (`sluice attach`) works the recorder's queue through the control API instead.
public protocol InterceptQueue: AnyObject, Sendable {
    /// What is held from now on; nil holds nothing.
    var filter: Filter? { get set }
    /// Held messages and commands, oldest first.
    var held: [HeldMessage] { get }
    /// The operator's verdict on one held message. False when it is no longer held: decided already (by another
    /// operator, or its deadline), or its flow ended. The first verdict wins.
    @discardableResult func resolve(_ id: Int64, _ verdict: Verdict) -> Bool
    /// The same verdict on everything held now.
    func resolveAll(_ verdict: Verdict)
}

extension InterceptGate: InterceptQueue {}
