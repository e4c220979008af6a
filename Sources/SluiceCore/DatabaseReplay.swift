import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SluiceModel

/// A protocol module whose sessions can be replayed: it brings the database client that logs in and sends the
/// recorded statements again.
public protocol DatabaseProtocolModule: ProtocolModule {
    func clientSession(login: DatabaseLogin) -> any DatabaseClientSession
}

/// Sends a flow's recorded statements again, through the engine: the replay connects to an in-process listener of
/// the original's kind (`Engine.serveReplay`), so the module's inspector records it as a new flow linked to the
/// original and the policy judges, holds or blocks each statement as it would a client's.
public struct DatabaseReplayer: Sendable {
    public let engine: Engine
    /// How long the server may stay silent about one statement (a hold's wait comes on top).
    public let responseTimeout: TimeInterval

    public init(engine: Engine, responseTimeout: TimeInterval = 60) {
        self.engine = engine
        self.responseTimeout = responseTimeout
    }

    /// - Parameters:
    ///   - spec: the listener the original came in on, its target replaced when the replay goes elsewhere.
    ///   - holdTimeout: how long a statement the policy holds may wait for the operator.
    public func replay(
        _ original: FlowID, on spec: ListenSpec, login: DatabaseLogin, statements: [ReplayStatement], holdTimeout: TimeInterval
    ) -> EventLoopFuture<DatabaseReplayResult> {
        let eventLoop = engine.eventLoopGroup.next()
        guard let module = engine.module(for: spec.scheme) as? DatabaseProtocolModule else {
            return eventLoop.makeSucceededFuture(
                DatabaseReplayResult(original: original, failure: "\(spec.scheme.name):// sessions cannot be replayed")
            )
        }
        let newFlow = NIOLockedValueBox<FlowID?>(nil)
        let promise = eventLoop.makePromise(of: DatabaseReplayResult.self)
        let wait = TimeAmount.nanoseconds(Int64((responseTimeout + holdTimeout) * 1_000_000_000))
        let connected = engine.serveReplay(
            of: original, on: spec, flowOpened: { id in newFlow.withLockedValue { $0 = id } },
            client: { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = DatabaseReplayHandler(
                        session: module.clientSession(login: login), statements: statements, statementTimeout: wait, promise: promise
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        )
        connected.whenFailure { error in
            promise.succeed(DatabaseReplayResult(original: original, failure: "cannot start the replay: \(error)"))
        }
        return promise.futureResult.map { result in
            var result = result
            result.original = original
            result.flowID = newFlow.withLockedValue { $0 }
            return result
        }
    }
}

/// What a replay of a flow's statements came to.
public struct DatabaseReplayResult: Sendable, Equatable {
    public var original: FlowID
    /// The flow that recorded the replay; nil when it never started.
    public var flowID: FlowID?
    /// The server's answer to each statement sent, in order.
    public var outcomes: [ReplayOutcome] = []
    /// Why the replay stopped before its last statement was answered, in one line.
    public var failure: String?
    /// The server refused the login (a wrong or missing password, an unknown user).
    public var loginRefused = false

    public init(original: FlowID, flowID: FlowID? = nil, outcomes: [ReplayOutcome] = [], failure: String? = nil) {
        self.original = original
        self.flowID = flowID
        self.outcomes = outcomes
        self.failure = failure
    }
}

/// Drives a `DatabaseClientSession` on a channel: logs in, runs the statements one after another, each once the
/// previous one is answered, then says goodbye and closes. Fulfils its promise exactly once, with every answer that
/// came, whatever ends the connection.
final class DatabaseReplayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: any DatabaseClientSession
    private let statements: [ReplayStatement]
    private let statementTimeout: TimeAmount
    private let promise: EventLoopPromise<DatabaseReplayResult>
    private var result = DatabaseReplayResult(original: FlowID(0))
    private var next = 0
    private var loggedIn = false
    private var done = false
    private var deadline: Scheduled<Void>?

    init(
        session: any DatabaseClientSession, statements: [ReplayStatement], statementTimeout: TimeAmount,
        promise: EventLoopPromise<DatabaseReplayResult>
    ) {
        self.session = session
        self.statements = statements
        self.statementTimeout = statementTimeout
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        armDeadline(context: context, waitingFor: "the login")
        if let greeting = session.start() {
            context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        let steps: [DatabaseClientStep]
        do {
            steps = try session.receive(unwrapInboundIn(data))
        } catch {
            result.loginRefused = !loggedIn
            finish(context: context, failure: loggedIn ? "the server: \(error)" : "login refused: \(error)")
            return
        }
        for step in steps where !done {
            switch step {
            case .send(let bytes):
                context.write(wrapOutboundOut(bytes), promise: nil)
            case .ready:
                loggedIn = true
                runNext(context: context)
            case .finished(let outcome):
                result.outcomes.append(outcome)
                runNext(context: context)
            }
        }
        if !done { context.flush() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context, failure: loggedIn ? "the connection closed before the last statement was answered" : "the connection closed during the login")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(context: context, failure: "the connection failed: \(error)")
    }

    private func runNext(context: ChannelHandlerContext) {
        guard next < statements.count else {
            context.write(wrapOutboundOut(session.quit()), promise: nil)
            finish(context: context, failure: nil)
            return
        }
        let index = next
        next += 1
        do {
            let bytes = try session.run(statements[index])
            context.write(wrapOutboundOut(bytes), promise: nil)
            armDeadline(context: context, waitingFor: "statement \(index + 1)")
        } catch {
            context.write(wrapOutboundOut(session.quit()), promise: nil)
            finish(context: context, failure: "statement \(index + 1) not sent: \(error)")
        }
    }

    private func armDeadline(context: ChannelHandlerContext, waitingFor what: String) {
        deadline?.cancel()
        let seconds = Double(statementTimeout.nanoseconds) / 1_000_000_000
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: statementTimeout) {
            let (handler, context) = loopBound.value
            handler.finish(context: context, failure: "no answer to \(what) in \(Formatting.seconds(seconds))")
        }
    }

    /// Ends the replay once: hands over what came and closes the connection (after what was written is flushed).
    private func finish(context: ChannelHandlerContext, failure: String?) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        result.failure = failure
        promise.succeed(result)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
