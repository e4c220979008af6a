import NIOCore
import NIOSSH

/// Password passthrough: the client's user name and password, as the client sends them to Sluice, are tried on the
/// target; the target's answer is the client's answer. One login attempt at a time crosses, in order, over the one
/// upstream connection, so a mistyped password gets "Permission denied, please try again" from the real server's
/// judgement, and the password is never stored.
///
/// Both halves of swift-nio-ssh call in here on the session's event loop: the server side with the client's
/// attempts (`clientAttempt`), the client side when it may offer the next one (`upstreamWantsOffer`).
final class PasswordPassthrough {
    struct Attempt {
        var user: String
        var password: String
        var outcome: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    }

    /// The client's attempt waiting for the upstream to ask for one.
    private var waiting: Attempt?
    /// The attempt now being tried upstream.
    private var offered: Attempt?
    /// The upstream's request for its next offer.
    private var upstreamAsks: EventLoopPromise<NIOSSHUserAuthenticationOffer?>?
    /// Set once the upstream is gone or refuses passwords: every attempt from then on fails.
    private(set) var upstreamFailure: String?
    /// The user the first attempt named: OpenSSH's server refuses a change of user within one connection.
    private(set) var user: String?
    private(set) var isAuthenticated = false
    /// Passwords the target refused.
    private(set) var refusals = 0
    /// Called once, when the target accepted a password.
    var onAuthenticated: ((String) -> Void)?

    /// A password attempt from the client (other methods are answered at once by `ServerSide`).
    func clientAttempt(user: String, password: String, outcome: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
        guard upstreamFailure == nil, !isAuthenticated, waiting == nil, offered == nil else {
            outcome.succeed(.failure)
            return
        }
        if let first = self.user, first != user {
            outcome.succeed(.failure)
            return
        }
        self.user = user
        waiting = Attempt(user: user, password: password, outcome: outcome)
        offerIfReady()
    }

    /// The upstream asks for an offer: the first time after its key exchange, and again after each rejection.
    func upstreamWantsOffer(available: NIOSSHAvailableUserAuthenticationMethods, promise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>) {
        if let rejected = offered {
            offered = nil
            refusals += 1
            rejected.outcome.succeed(.failure)
        }
        guard available.contains(.password) else {
            upstreamFailed("the target accepts no password logins (it offers: \(Self.describe(available)))")
            promise.fail(PassthroughError.noPasswordMethod)
            return
        }
        upstreamAsks = promise
        offerIfReady()
    }

    /// The target accepted the offered password.
    func upstreamAccepted() {
        guard let accepted = offered else { return }
        offered = nil
        isAuthenticated = true
        accepted.outcome.succeed(.success)
        onAuthenticated?(accepted.user)
    }

    /// The upstream is gone (refused, host key not trusted, closed): attempts now fail, the pending ones too.
    func upstreamFailed(_ reason: String) {
        if upstreamFailure == nil { upstreamFailure = reason }
        waiting?.outcome.succeed(.failure)
        offered?.outcome.succeed(.failure)
        waiting = nil
        offered = nil
        upstreamAsks?.fail(PassthroughError.upstreamGone)
        upstreamAsks = nil
    }

    private func offerIfReady() {
        guard let attempt = waiting, let ask = upstreamAsks else { return }
        waiting = nil
        upstreamAsks = nil
        offered = attempt
        ask.succeed(NIOSSHUserAuthenticationOffer(username: attempt.user, serviceName: "", offer: .password(.init(password: attempt.password))))
    }

    static func describe(_ methods: NIOSSHAvailableUserAuthenticationMethods) -> String {
        var names: [String] = []
        if methods.contains(.publicKey) { names.append("publickey") }
        if methods.contains(.password) { names.append("password") }
        if methods.contains(.hostBased) { names.append("hostbased") }
        return names.isEmpty ? "keyboard-interactive or nothing swift-nio-ssh speaks" : names.joined(separator: ", ")
    }

    enum PassthroughError: Error {
        case noPasswordMethod
        case upstreamGone
    }

    /// What the client-facing half of swift-nio-ssh asks.
    final class ServerSide: NIOSSHServerUserAuthenticationDelegate {
        let passthrough: PasswordPassthrough
        init(_ passthrough: PasswordPassthrough) { self.passthrough = passthrough }

        var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .password }

        func requestReceived(request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
            guard case .password(let password) = request.request else {
                // `none` probes and public keys: a key cannot pass through (its signature covers this session, not
                // the target's), so the client moves on to its password.
                responsePromise.succeed(.failure)
                return
            }
            passthrough.clientAttempt(user: request.username, password: password.password, outcome: responsePromise)
        }
    }

    /// What the target-facing half of swift-nio-ssh asks.
    final class ClientSide: NIOSSHClientUserAuthenticationDelegate {
        let passthrough: PasswordPassthrough
        init(_ passthrough: PasswordPassthrough) { self.passthrough = passthrough }

        func nextAuthenticationType(
            availableMethods: NIOSSHAvailableUserAuthenticationMethods, nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
        ) {
            passthrough.upstreamWantsOffer(available: availableMethods, promise: nextChallengePromise)
        }
    }
}
