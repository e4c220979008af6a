import NIOCore
import NIOSSH

/// Logs the client in on the target: each login attempt the client makes to Sluice becomes one attempt on the
/// target, and the target's answer is the client's answer. One attempt at a time crosses, in order, over the one
/// upstream connection, so a mistyped password gets "Permission denied, please try again" from the real server's
/// judgement, and a target that refuses Sluice's own credentials is a failed login for the client, not a dropped
/// connection.
///
/// What an attempt offers the target depends on `Credentials`: with `.passthrough` the client's own user name and
/// password (never stored); with `.configured` Sluice's key or password for the target, once the client has proved
/// itself to Sluice with a key it lists.
///
/// Both halves of swift-nio-ssh call in here on the session's event loop: the server side with the client's
/// attempts (`clientAttempt`), the client side when it may offer the next one (`upstreamWantsOffer`).
final class LoginRelay {
    struct Attempt {
        /// The name the client logged in to Sluice with.
        var user: String
        var offer: NIOSSHUserAuthenticationOffer
        var outcome: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    }

    /// The client's attempt waiting for the upstream to ask for one.
    private var waiting: Attempt?
    /// The attempt now being tried upstream.
    private var offered: Attempt?
    /// The upstream's request for its next offer.
    private var upstreamAsks: EventLoopPromise<NIOSSHUserAuthenticationOffer?>?
    /// Set once the upstream is gone or accepts no method Sluice can offer: every attempt from then on fails.
    private(set) var upstreamFailure: String?
    /// The user the first attempt named: OpenSSH's server refuses a change of user within one connection.
    private(set) var user: String?
    private(set) var isAuthenticated = false
    /// Attempts the target refused, and attempts Sluice refused itself (a key it does not list).
    private(set) var refusals = 0
    private(set) var localRefusals = 0
    /// Called once, when the target accepted the login, with the client's user name.
    var onAuthenticated: ((String) -> Void)?

    /// An attempt from the client, already turned into what to offer the target.
    func clientAttempt(user: String, offer: NIOSSHUserAuthenticationOffer, outcome: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
        guard upstreamFailure == nil, !isAuthenticated, waiting == nil, offered == nil else {
            outcome.succeed(.failure)
            return
        }
        if let first = self.user, first != user {
            outcome.succeed(.failure)
            return
        }
        self.user = user
        waiting = Attempt(user: user, offer: offer, outcome: outcome)
        offerIfReady()
    }

    /// Sluice refused an attempt itself (a key it does not list for that user): counted for the flow's error.
    func clientRefused(user: String) {
        if self.user == nil { self.user = user }
        localRefusals += 1
    }

    /// The upstream asks for an offer: the first time after its key exchange, and again after each rejection.
    func upstreamWantsOffer(available: NIOSSHAvailableUserAuthenticationMethods, promise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>) {
        if let rejected = offered {
            offered = nil
            refusals += 1
            rejected.outcome.succeed(.failure)
        }
        upstreamMethods = available
        upstreamAsks = promise
        offerIfReady()
    }

    /// What the target said it accepts, the last time it asked.
    private var upstreamMethods: NIOSSHAvailableUserAuthenticationMethods = .all

    /// The target accepted the offer.
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
        upstreamAsks?.fail(LoginError.upstreamGone)
        upstreamAsks = nil
    }

    private func offerIfReady() {
        guard let attempt = waiting, let ask = upstreamAsks else { return }
        let method: NIOSSHAvailableUserAuthenticationMethods
        switch attempt.offer.offer {
        case .password: method = .password
        case .privateKey: method = .publicKey
        default: method = .all
        }
        guard upstreamMethods.contains(method) else {
            upstreamFailed("the target accepts no \(Self.describe(method)) logins (it offers: \(Self.describe(upstreamMethods)))")
            ask.fail(LoginError.noCommonMethod)
            return
        }
        waiting = nil
        upstreamAsks = nil
        offered = attempt
        ask.succeed(attempt.offer)
    }

    static func describe(_ methods: NIOSSHAvailableUserAuthenticationMethods) -> String {
        var names: [String] = []
        if methods.contains(.publicKey) { names.append("publickey") }
        if methods.contains(.password) { names.append("password") }
        if methods.contains(.hostBased) { names.append("hostbased") }
        return names.isEmpty ? "keyboard-interactive or nothing swift-nio-ssh speaks" : names.joined(separator: ", ")
    }

    enum LoginError: Error {
        case noCommonMethod
        case upstreamGone
    }

    /// What the client-facing half of swift-nio-ssh asks: how the client may log in to Sluice.
    final class ServerSide: NIOSSHServerUserAuthenticationDelegate {
        let relay: LoginRelay
        let credentials: SSHCredentials

        init(_ relay: LoginRelay, credentials: SSHCredentials) {
            self.relay = relay
            self.credentials = credentials
        }

        var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods {
            switch credentials {
            case .passthrough: return .password
            case .configured: return .publicKey
            }
        }

        func requestReceived(request: NIOSSHUserAuthenticationRequest, responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>) {
            switch (credentials, request.request) {
            case (.passthrough, .password(let password)):
                let offer = NIOSSHUserAuthenticationOffer(
                    username: request.username, serviceName: "", offer: .password(.init(password: password.password))
                )
                relay.clientAttempt(user: request.username, offer: offer, outcome: responsePromise)
            case (.configured(let login, let users), .publicKey(let key)):
                // swift-nio-ssh has checked the signature: the client holds this key. Is it one Sluice lists?
                guard users[request.username]?.contains(key.publicKey) == true else {
                    relay.clientRefused(user: request.username)
                    responsePromise.succeed(.failure)
                    return
                }
                let offer = NIOSSHUserAuthenticationOffer(username: login.user ?? request.username, serviceName: "", offer: login.offer)
                relay.clientAttempt(user: request.username, offer: offer, outcome: responsePromise)
            default:
                // `none` probes, and methods this mode does not take (a key cannot pass through: its signature
                // covers this session, not the target's): the client moves on to the next it has.
                responsePromise.succeed(.failure)
            }
        }
    }

    /// What the target-facing half of swift-nio-ssh asks.
    final class ClientSide: NIOSSHClientUserAuthenticationDelegate {
        let relay: LoginRelay
        init(_ relay: LoginRelay) { self.relay = relay }

        func nextAuthenticationType(
            availableMethods: NIOSSHAvailableUserAuthenticationMethods, nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
        ) {
            relay.upstreamWantsOffer(available: availableMethods, promise: nextChallengePromise)
        }
    }
}
