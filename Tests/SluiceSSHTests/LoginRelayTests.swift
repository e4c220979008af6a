import NIOCore
import NIOEmbedded
import NIOSSH
import Testing

@testable import SluiceSSH

/// The login relay as a state machine: the client's attempts and the upstream's questions, in either order.
@Suite struct LoginRelayTests {
    let loop = EmbeddedEventLoop()

    func attempt(_ passthrough: LoginRelay, _ user: String = "alice", _ password: String = "pw")
        -> EventLoopFuture<NIOSSHUserAuthenticationOutcome>
    {
        let promise = loop.makePromise(of: NIOSSHUserAuthenticationOutcome.self)
        let offer = NIOSSHUserAuthenticationOffer(username: user, serviceName: "", offer: .password(.init(password: password)))
        passthrough.clientAttempt(user: user, offer: offer, outcome: promise)
        return promise.futureResult
    }

    func ask(_ passthrough: LoginRelay, _ methods: NIOSSHAvailableUserAuthenticationMethods = .all)
        -> EventLoopFuture<NIOSSHUserAuthenticationOffer?>
    {
        let promise = loop.makePromise(of: NIOSSHUserAuthenticationOffer?.self)
        passthrough.upstreamWantsOffer(available: methods, promise: promise)
        return promise.futureResult
    }

    /// Fails whatever a test left waiting, so no promise leaks.
    func end(_ passthrough: LoginRelay) {
        passthrough.upstreamFailed("test over")
        loop.run()
    }

    func outcome(_ future: EventLoopFuture<NIOSSHUserAuthenticationOutcome>) throws -> String? {
        var result: String?
        future.assumeIsolated().whenSuccess { result = "\($0)" }
        loop.run()
        return result
    }

    @Test func anAttemptWaitsForTheUpstreamThenSucceedsWithIt() throws {
        let passthrough = LoginRelay()
        var accepted: String?
        passthrough.onAuthenticated = { accepted = $0 }
        let first = attempt(passthrough)
        #expect(try outcome(first) == nil)
        var offered: NIOSSHUserAuthenticationOffer?
        ask(passthrough).assumeIsolated().whenSuccess { offered = $0 }
        loop.run()
        #expect(offered?.username == "alice")
        passthrough.upstreamAccepted()
        #expect(try outcome(first) == "success")
        #expect(accepted == "alice")
        #expect(passthrough.isAuthenticated)
        end(passthrough)
    }

    @Test func aRefusedPasswordFailsThatAttemptAndTheNextOneIsTried() throws {
        let passthrough = LoginRelay()
        _ = ask(passthrough)
        let first = attempt(passthrough, "alice", "wrong")
        _ = ask(passthrough)  // the upstream asks again: the offer was refused
        #expect(try outcome(first) == "failure")
        #expect(passthrough.refusals == 1)
        let second = attempt(passthrough, "alice", "right")
        passthrough.upstreamAccepted()
        #expect(try outcome(second) == "success")
        end(passthrough)
    }

    @Test func aChangeOfUserIsRefusedWithoutReachingTheTarget() throws {
        let passthrough = LoginRelay()
        _ = attempt(passthrough, "alice")
        _ = ask(passthrough)
        _ = ask(passthrough)
        let other = attempt(passthrough, "bob")
        #expect(try outcome(other) == "failure")
        end(passthrough)
    }

    @Test func aTargetWithoutPasswordLoginsFailsEveryAttemptWithAReason() throws {
        let passthrough = LoginRelay()
        let first = attempt(passthrough)
        var failed = false
        ask(passthrough, .publicKey).assumeIsolated().whenFailure { _ in failed = true }
        #expect(try outcome(first) == "failure")
        #expect(failed)
        #expect(passthrough.upstreamFailure?.contains("no password logins") == true)
        #expect(try outcome(attempt(passthrough)) == "failure")
    }

    @Test func theUpstreamGoingAwayFailsWhatWaits() throws {
        let passthrough = LoginRelay()
        let waiting = attempt(passthrough)
        passthrough.upstreamFailed("cannot connect")
        #expect(try outcome(waiting) == "failure")
        #expect(passthrough.upstreamFailure == "cannot connect")
    }
}
