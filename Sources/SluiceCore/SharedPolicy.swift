import NIOConcurrencyHelpers
import SluiceModel
import SluicePolicy

/// The risk policy every connection judges commands by, replaced whole when the operator reloads it (SIGHUP, or
/// `r` in the TUI's Commands view): a command is judged by the policy of the moment it was submitted.
public final class SharedPolicy: Sendable {
    /// The policy, and how many times it has been replaced (so a judgement cached under an older one is not used).
    private let box: NIOLockedValueBox<(policy: Policy, generation: Int)>

    public init(_ policy: Policy) {
        box = NIOLockedValueBox((policy, 0))
    }

    public var current: Policy { box.withLockedValue { $0.policy } }

    /// The policy of the moment with its generation.
    public var snapshot: (policy: Policy, generation: Int) { box.withLockedValue { $0 } }

    public func replace(with policy: Policy) {
        box.withLockedValue { $0 = (policy, $0.generation + 1) }
    }

    public func judge(_ text: String, kind: CommandKind) -> Judgement {
        current.judge(text, kind: kind)
    }
}
