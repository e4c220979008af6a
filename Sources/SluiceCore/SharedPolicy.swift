import NIOConcurrencyHelpers
import SluiceModel
import SluicePolicy

/// The risk policy every connection judges commands by, replaced whole when the operator reloads it (SIGHUP, or
/// `r` in the TUI's Commands view): a command is judged by the policy of the moment it was submitted.
public final class SharedPolicy: Sendable {
    private let box: NIOLockedValueBox<Policy>

    public init(_ policy: Policy) {
        box = NIOLockedValueBox(policy)
    }

    public var current: Policy { box.withLockedValue { $0 } }

    public func replace(with policy: Policy) {
        box.withLockedValue { $0 = policy }
    }

    public func judge(_ text: String, kind: CommandKind) -> Judgement {
        current.judge(text, kind: kind)
    }
}
