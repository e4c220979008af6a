import Foundation
import NIOCore
import NIOHTTP1
import SluiceCore
import SluiceModel

/// One request and its response: relays the request to the server, the response back to the client, records
/// both, and ends the flow exactly once, however the exchange ends.
///
/// Lives on the client connection's event loop; its owner and its upstream are on the same loop.
final class Exchange {
    let plan: ExchangePlan
    let recorder: FlowRecorder
    private unowned let owner: HTTPProxyHandler
    private var upstream: Upstream?
    /// Request parts read before the upstream connection was up.
    private var pending: [HTTPClientRequestPart] = []
    private(set) var requestComplete = false
    private var responseHeadSent = false
    private var finished = false
    private var timings = HTTPTimings()
    private var requestSentAt: NIODeadline?
    /// The server will close after this response, or its body ends by closing: the connection cannot be reused.
    private var upstreamEnds = false
    /// The client cannot take more right now; read the server again once it can.
    private var upstreamReadDeferred = false
    /// The server accepted a WebSocket upgrade; the switch happens at the `101`'s end, once its decoder is done.
    private var upgradeAccepted = false
    /// The head the server gets: the plan's, or the operator's edit of it.
    private var upstreamHead: HTTPRequestHead
    /// False while the request is kept back for the intercept filter: it is read whole (up to `holdLimit` bytes of
    /// body), then held or sent.
    private var requestReleased: Bool
    private var collectedBody = ByteBuffer()
    /// The request body as the intercept filter saw it (or the operator's edit of it), kept for the response's
    /// turn: mitmproxy's `~bq` still sees the request when the response is judged. Empty when it was not collected.
    private var requestBody = Data()
    /// The server's `101`, for what the WebSocket's messages are judged with.
    private var switchingHead: HTTPResponseHead?
    private let gate: InterceptGate
    private let holdLimit: Int
    /// A response kept back for the intercept filter until it is complete (bodies up to `holdLimit`).
    private var collectedResponse: CollectedResponse?
    /// What decides whether a request the server dropped unanswered may be sent again (`RetryPolicy`).
    private var retry = RetryPolicy()
    /// From the moment the whole request is out until the response has ended, the server owes an answer; the
    /// connection's clock measures its silence (`timeouts.server`) from each time Sluice asked it for more.
    private var awaitingServer = false

    private struct CollectedResponse {
        var head: HTTPResponseHead
        var clientHead: HTTPResponseHead
        var body = ByteBuffer()
    }

    init(plan: ExchangePlan, recorder: FlowRecorder, owner: HTTPProxyHandler, gate: InterceptGate, holdLimit: Int) {
        self.plan = plan
        self.recorder = recorder
        self.owner = owner
        self.gate = gate
        self.holdLimit = holdLimit
        self.upstreamHead = plan.upstreamHead
        self.requestReleased = !(gate.isActive && !plan.isWebSocket)
        if let length = plan.requestBodyBytes { recorder.expectBody(bytes: length, direction: .up) }
        if !requestReleased && plan.expectsContinue {
            // The body is wanted before the server is asked, so Sluice answers the client's Expect itself and the
            // server never sees it (as mitmproxy does).
            upstreamHead.headers.remove(name: "expect")
            owner.writeToClient(.head(HTTPResponseHead(version: .http1_1, status: .continue)), flush: true, countedIn: recorder)
        }
    }

    /// More request body may be read from the client: the server's connection is up and can take it, or the
    /// request is being collected for the intercept filter.
    var wantsMoreRequest: Bool {
        guard !requestComplete, !finished else { return false }
        return requestReleased ? (upstream?.isWritable ?? false) : collectedBody.readableBytes < holdLimit
    }

    /// The server connection is up (or could not be made): send the request head and what was read of the body.
    func upstreamReady(_ result: Result<Upstream, Error>) {
        switch result {
        case .success(let upstream): connected(upstream)
        case .failure(let error): connectFailed(error)
        }
    }

    private func connected(_ upstream: Upstream) {
        guard !finished else {
            upstream.close()
            return
        }
        self.upstream = upstream
        (timings.connect, timings.tls) = upstream.attach(self)
        retry.attached(reused: timings.connect == nil)
        if requestReleased { sendRequest() }
        owner.readClientIfWanted()
    }

    /// Sends the head and what was read of the body so far; later parts follow as they are read.
    private func sendRequest() {
        guard let upstream else { return }
        upstream.write(.head(upstreamHead))
        requestSentAt = .now()
        for part in pending {
            retry.sent(part)
            upstream.write(part)
        }
        pending = []
        upstream.flush()
        if requestComplete { startServerClock() }
        upstream.read()
    }

    private func connectFailed(_ error: Error) {
        guard !finished else { return }
        let message = "cannot connect to \(plan.server): \(describe(error))"
        recorder.failed(.connect, message)
        owner.respond(.badGateway, message: message, recorder: recorder, timings: timings)
        end(reusing: nil)
    }

    // MARK: Request, from the client

    func requestPart(_ part: HTTPServerRequestPart) {
        switch part {
        case .head:
            return  // a new head only follows `.end`, which completed this request
        case .body(var buffer):
            recorder.bodyPiece(buffer, direction: .up)
            if !requestReleased {
                pending.append(.body(.byteBuffer(buffer)))
                collectedBody.writeBuffer(&buffer)
                if collectedBody.readableBytes >= holdLimit { releaseRequest() }  // too big to hold: sent as it is
                return
            }
            toUpstream(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            requestComplete = true
            recorder.bodyEnded(direction: .up)
            if !requestReleased {
                pending.append(.end(trailers))
                considerHoldingRequest()
                return
            }
            toUpstream(.end(trailers))
            upstream?.flush()
            if upstream != nil { startServerClock() }
        }
    }

    // MARK: What the intercept filter sees

    /// This exchange as far as it has got: the request as the server gets it, and the response once its head (and
    /// for a held one its body) is here.
    private func subject(response: HTTPResponseHead? = nil, responseBody: Data = Data()) -> FilterSubject {
        FilterSubject(
            kind: plan.isWebSocket ? .websocket : .http, client: owner.clientEndpoint, server: plan.server,
            requestPayloads: [requestBody], responsePayloads: response == nil ? [] : [responseBody],
            method: upstreamHead.method.rawValue, url: plan.target.url, requestHeaders: upstreamHead.headers.fields,
            statusCode: response.map { Int($0.status.code) }, responseHeaders: response?.headers.fields ?? []
        )
    }

    /// What each message of the WebSocket this exchange became is judged with, beside the message itself.
    var webSocketSubject: FilterSubject { subject(response: switchingHead) }

    // MARK: Holding the request

    /// The whole request is here: hold it when the intercept filter matches, else send it.
    private func considerHoldingRequest() {
        requestBody = Data(copying: collectedBody.readableBytesView)
        guard gate.shouldHold(subject()), let eventLoop = owner.eventLoop else {
            releaseRequest()
            return
        }
        let text = HTTPMessageText.request(
            method: upstreamHead.method.rawValue, url: plan.target.url, headers: upstreamHead.headers.fields,
            body: requestBody
        )
        let sequence = recorder.recordCopy(text, direction: .up, kind: .request)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        gate.hold(flowID: recorder.flowID, sequence: sequence, direction: .up, payload: text, on: eventLoop) { verdict, decidedBy in
            loopBound.value.requestDecided(verdict, sequence: sequence, decidedBy: decidedBy)
        }
    }

    private func requestDecided(_ verdict: Verdict, sequence: Int64, decidedBy: Decider) {
        guard !finished else { return }
        switch verdict {
        case .forward(edited: nil):
            releaseRequest()
        case .forward(edited: let text?) where text.starts(with: Data("HTTP/".utf8)):
            // The operator rewrote the held request into a response: a canned answer, the server is never asked.
            do {
                let canned = try HTTPMessageText.parseResponse(text)
                recorder.edited(text, from: sequence, direction: .down, kind: .response)
                answerWithCannedResponse(canned)
            } catch {
                recorder.failed(.proxy, "the operator's canned response is not valid: \(error)")
                owner.respond(.badGateway, message: "the operator's canned response is not valid: \(error)", recorder: recorder, timings: timings)
                end(reusing: nil)
            }
        case .forward(edited: let text?):
            do {
                let edited = try HTTPMessageText.parseRequest(text)
                recorder.edited(text, from: sequence, direction: .up, kind: .request)
                releaseRequest(edited: edited)
            } catch {
                recorder.failed(.proxy, "the operator's edit is not a valid request: \(error)")
                owner.respond(.badGateway, message: "the operator's edit is not a valid request: \(error)", recorder: recorder, timings: timings)
                end(reusing: nil)
            }
        case .drop:
            owner.respond(.badGateway, message: Self.dropReason("request", decidedBy), recorder: recorder, timings: timings)
            upstream?.close()
            end(reusing: nil)
        case .block(let message):
            owner.respond(.forbidden, message: message.isEmpty ? "the operator blocked this request" : message, recorder: recorder, timings: timings)
            upstream?.close()
            end(reusing: nil)
        case .kill:
            killedByOperator()
        }
    }

    private func answerWithCannedResponse(_ canned: HTTPMessageText.Response) {
        upstream?.close()
        upstream = nil
        var headers = HTTPHeaders(canned.headers.map { ($0.name, $0.value) })
        HopByHop.strip(&headers, keepUpgrade: false)
        headers.replaceOrAdd(name: "Content-Length", value: String(plan.isHead ? 0 : canned.body.count))
        if owner.closeAfterResponse { headers.replaceOrAdd(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: canned.status, reasonPhrase: canned.reason)
        recorder.responseStarted(
            HTTPResponseStarted(
                flowID: recorder.flowID, time: Date(), status: canned.status, reason: canned.reason, version: "HTTP/1.1",
                headers: headers.fields, timings: timings, synthetic: true
            )
        )
        recorder.injected(canned.body, direction: .down, kind: .body)
        owner.writeToClient(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        responseHeadSent = true
        if !plan.isHead && !canned.body.isEmpty {
            owner.writeToClient(.body(.byteBuffer(ByteBuffer(bytes: canned.body))))
        }
        owner.writeToClient(.end(nil), flush: true)
        end(reusing: nil)
    }

    /// Lets the kept-back request go: as it came, or as the operator edited it (framed anew: Content-Length from
    /// the edited body).
    private func releaseRequest(edited: HTTPMessageText.Request? = nil) {
        requestReleased = true
        collectedBody = ByteBuffer()
        if let edited {
            var headers = HTTPHeaders(edited.headers.map { ($0.name, $0.value) })
            HopByHop.strip(&headers, keepUpgrade: false)
            if !edited.body.isEmpty || headers.contains(name: "content-length") || ["POST", "PUT", "PATCH"].contains(edited.method) {
                headers.replaceOrAdd(name: "Content-Length", value: String(edited.body.count))
            }
            var path = edited.target
            if let absolute = try? RequestTarget.absolute(edited.target) { path = absolute.path }
            upstreamHead = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: edited.method), uri: path, headers: headers)
            pending = edited.body.isEmpty ? [.end(nil)] : [.body(.byteBuffer(ByteBuffer(bytes: edited.body))), .end(nil)]
            requestBody = edited.body
            var target = plan.target
            target.path = path
            recorder.requestStarted(
                HTTPRequestStarted(
                    flowID: recorder.flowID, time: Date(), method: edited.method, url: target.url, version: plan.clientVersion.text,
                    headers: headers.redacted
                )
            )
        }
        if upstream != nil { sendRequest() }
        owner.readClientIfWanted()
    }

    private func toUpstream(_ part: HTTPClientRequestPart) {
        if let upstream {
            retry.sent(part)
            upstream.write(part)
        } else {
            pending.append(part)
        }
    }

    func flushUpstream() {
        upstream?.flush()
    }

    // MARK: Response, from the server

    func responsePart(_ part: HTTPClientResponsePart) {
        guard !finished else { return }
        retry.answered()
        switch part {
        case .head(let head):
            responseHead(head)
        case .body(var buffer):
            recorder.bodyPiece(buffer, direction: .down)
            if collectedResponse != nil {
                collectedResponse?.body.writeBuffer(&buffer)
                if (collectedResponse?.body.readableBytes ?? 0) >= holdLimit { releaseResponse() }  // too big to hold
                return
            }
            owner.writeToClient(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            recorder.bodyEnded(direction: .down)
            stopServerClock()
            if upgradeAccepted, let upstream {
                finished = true
                stopServerClock()
                owner.upgradeAccepted(self, upstream: upstream)
                return
            }
            if let collected = collectedResponse {
                considerHoldingResponse(collected)
                return
            }
            owner.writeToClient(.end(trailers), flush: true)
            responseComplete()
        }
    }

    private func responseComplete() {
        end(reusing: upstreamEnds || !requestComplete ? nil : upstream)
    }

    // MARK: Holding the response

    private func considerHoldingResponse(_ collected: CollectedResponse) {
        let body = Data(copying: collected.body.readableBytesView)
        guard gate.shouldHold(subject(response: collected.head, responseBody: body)), let eventLoop = owner.eventLoop
        else {
            releaseResponse()
            owner.writeToClient(.end(nil), flush: true)
            responseComplete()
            return
        }
        let text = HTTPMessageText.response(
            status: Int(collected.head.status.code), reason: collected.head.status.reasonPhrase, headers: collected.head.headers.fields,
            body: body
        )
        let sequence = recorder.recordCopy(text, direction: .down, kind: .response)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        gate.hold(flowID: recorder.flowID, sequence: sequence, direction: .down, payload: text, on: eventLoop) { verdict, decidedBy in
            loopBound.value.responseDecided(verdict, sequence: sequence, decidedBy: decidedBy)
        }
    }

    private func responseDecided(_ verdict: Verdict, sequence: Int64, decidedBy: Decider) {
        guard !finished, collectedResponse != nil else { return }
        switch verdict {
        case .forward(edited: nil):
            releaseResponse()
            owner.writeToClient(.end(nil), flush: true)
            responseComplete()
        case .forward(edited: let text?):
            do {
                let edited = try HTTPMessageText.parseResponse(text)
                recorder.edited(text, from: sequence, direction: .down, kind: .response)
                collectedResponse = nil
                var headers = HTTPHeaders(edited.headers.map { ($0.name, $0.value) })
                HopByHop.strip(&headers, keepUpgrade: false)
                headers.replaceOrAdd(name: "Content-Length", value: String(plan.isHead ? 0 : edited.body.count))
                if owner.closeAfterResponse { headers.replaceOrAdd(name: "Connection", value: "close") }
                let status = HTTPResponseStatus(statusCode: edited.status, reasonPhrase: edited.reason)
                owner.writeToClient(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
                responseHeadSent = true
                if !plan.isHead && !edited.body.isEmpty {
                    owner.writeToClient(.body(.byteBuffer(ByteBuffer(bytes: edited.body))))
                }
                owner.writeToClient(.end(nil), flush: true)
                responseComplete()
            } catch {
                fail(.proxy, "the operator's edit is not a valid response: \(error)")
            }
        case .drop:
            collectedResponse = nil
            owner.respond(.badGateway, message: Self.dropReason("response", decidedBy), recorder: recorder, timings: timings)
            end(reusing: nil)
        case .block(let message):
            collectedResponse = nil
            owner.respond(.forbidden, message: message.isEmpty ? "the operator blocked this response" : message, recorder: recorder, timings: timings)
            end(reusing: nil)
        case .kill:
            killedByOperator()
        }
    }

    /// `x` on a held request or response: both connections end, the flow says why.
    private func killedByOperator() {
        recorder.failed(.proxy, "killed by the operator")
        finished = true
        stopServerClock()
        upstream?.close()
        recorder.finish()
        owner.closeNow()
    }

    /// The body of the 502 a client gets for a dropped request or response.
    static func dropReason(_ what: String, _ decidedBy: Decider) -> String {
        decidedBy == .operator
            ? "the operator dropped this \(what)"
            : "this \(what) was held and nobody decided within hold_timeout, so hold_default dropped it"
    }

    /// Lets a kept-back response go as it came: its head, then what was read of its body.
    private func releaseResponse() {
        guard let collected = collectedResponse else { return }
        collectedResponse = nil
        owner.writeToClient(.head(collected.clientHead))
        responseHeadSent = true
        if collected.body.readableBytes > 0 {
            owner.writeToClient(.body(.byteBuffer(collected.body)))
        }
        owner.flushClient()
    }

    private func responseHead(_ head: HTTPResponseHead) {
        if head.status.code < 200 && head.status != .switchingProtocols {
            // 100 Continue, 103 Early Hints: relayed as they come, before the final response (RFC 9110 §15.2).
            var headers = head.headers
            HopByHop.strip(&headers, keepUpgrade: false)
            owner.writeToClient(.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers)), flush: true)
            return
        }
        if let sentAt = requestSentAt {
            timings.firstByte = Double((NIODeadline.now() - sentAt).nanoseconds) / 1_000_000
        }
        let scan = HeaderScan(head.headers)
        if plan.authorizationIsConnectionBound || scan.authenticateIsConnectionBound {
            // NTLM and Negotiate authenticate the connection: it never serves another client.
            upstream?.isPrivate = true
        }
        recorder.responseStarted(
            HTTPResponseStarted(
                flowID: recorder.flowID, time: Date(), status: Int(head.status.code), reason: head.status.reasonPhrase,
                version: head.version.text, headers: head.headers.fields, timings: timings
            )
        )
        if head.status == .switchingProtocols {
            guard plan.isWebSocket, upstream != nil else {
                fail(.server, "server switched protocols without being asked")
                return
            }
            let (clientHead, _) = plan.clientResponseHead(head, closing: false, scan: scan)
            owner.writeToClient(.head(clientHead))
            owner.writeToClient(.end(nil), flush: true)
            upgradeAccepted = true
            switchingHead = head
            return
        }
        let framed = scan.hasContentLength || scan.hasTransferEncoding
        if let length = scan.contentLength, !plan.isHead, head.status.allowsBody {
            recorder.expectBody(bytes: length, direction: .down)
        }
        let bodyEndsByClose = !framed && !plan.isHead && head.status.allowsBody
        upstreamEnds = bodyEndsByClose || scan.wantsClose(version: head.version)
        let (clientHead, endsByClose) = plan.clientResponseHead(head, closing: owner.closeAfterResponse, scan: scan)
        if endsByClose { owner.closeAfterResponse = true }
        if gate.isActive && !plan.isWebSocket {
            collectedResponse = CollectedResponse(head: head, clientHead: clientHead)
            return
        }
        owner.writeToClient(.head(clientHead))
        responseHeadSent = true
    }

    func upstreamReadComplete() {
        owner.flushClient()
        guard !finished else { return }
        readUpstreamIfWanted()
    }

    /// Reads more of the response while the client can take it (or it is being collected for a hold) and the store
    /// keeps up.
    private func readUpstreamIfWanted() {
        guard !finished else { return }
        guard owner.clientIsWritable || collectedResponse != nil else {
            upstreamReadDeferred = true
            return
        }
        guard !owner.storeIsBackedUp else {
            owner.whenStoreDrained { [weak self] _ in self?.readUpstreamIfWanted() }
            return
        }
        if awaitingServer { owner.waitForServer(since: .now()) }
        upstream?.read()
    }

    // MARK: The server's silence

    private func startServerClock() {
        guard !awaitingServer, !finished else { return }
        awaitingServer = true
        owner.waitForServer(since: .now())
    }

    private func stopServerClock() {
        guard awaitingServer else { return }
        awaitingServer = false
        owner.serverAnswered()
    }

    /// The server said nothing for `timeouts.server` since Sluice last asked it for more: `504` (or the connection
    /// cut once the response has begun). Time spent not reading, for a slow client or a busy store, is not the
    /// server's: the clock starts again.
    func serverWasSilent() {
        guard awaitingServer, !finished else { return }
        if upstreamReadDeferred || owner.storeIsBackedUp {
            owner.waitForServer(since: .now())
            return
        }
        awaitingServer = false
        fail(.server, "the server sent nothing for \(Formatting.seconds(owner.serverTimeout)) (timeouts.server)", status: .gatewayTimeout)
    }

    func clientBecameWritable() {
        guard upstreamReadDeferred, !finished else { return }
        upstreamReadDeferred = false
        readUpstreamIfWanted()
    }

    func upstreamBecameWritable() {
        owner.readClientIfWanted()
    }

    // MARK: Endings

    func upstreamClosed() {
        guard !finished else { return }
        upstream = nil
        if retrySent() { return }
        if responseHeadSent {
            fail(.server, "server closed the connection before the response was complete")
        } else {
            fail(.server, "server closed the connection before responding")
        }
    }

    func upstreamFailed(_ error: Error) {
        guard !finished else { return }
        if let parserError = error as? HTTP1ParseError {
            fail(.server, "invalid response from the server: \(parserError)")
            return
        }
        upstream = nil
        if retrySent() { return }
        fail(.server, describe(error))
    }

    /// A kept-alive connection the server closed as the request arrived: the request goes again on a fresh
    /// connection when that is safe (`RetryPolicy`). Returns whether it did.
    private func retrySent() -> Bool {
        guard requestComplete, requestReleased, let end = retry.retry(method: upstreamHead.method) else { return false }
        pending = [end]
        stopServerClock()
        owner.freshUpstream(for: plan) { [weak self] result in self?.upstreamReady(result) }
        return true
    }

    /// The client went away before the response was complete.
    func clientClosed() {
        guard !finished else { return }
        recorder.failed(.client, "client closed the connection before the response was complete")
        finished = true
        stopServerClock()
        upstream?.close()
        recorder.finish()
    }

    /// The client's request could not be parsed further (a bad chunk size, say).
    func clientFailed(_ reason: String, status: HTTPResponseStatus) {
        guard !finished else { return }
        recorder.failed(.client, reason)
        upstream?.close()
        if !responseHeadSent {
            owner.respond(status, message: reason, recorder: recorder, timings: timings)
        }
        end(reusing: nil)
    }

    /// A server-side failure: the client gets a 502 (or `status`) while no response has started, else a cut
    /// connection.
    private func fail(_ phase: FlowErrorPhase, _ message: String, status: HTTPResponseStatus = .badGateway) {
        recorder.failed(phase, message)
        upstream?.close()
        if responseHeadSent {
            owner.closeAfterResponse = true
        } else {
            owner.respond(status, message: message, recorder: recorder, timings: timings)
        }
        end(reusing: nil)
    }

    private func end(reusing upstream: Upstream?) {
        guard !finished else { return }
        finished = true
        stopServerClock()
        if upstream == nil { self.upstream?.close() }
        recorder.finish()
        owner.exchangeEnded(self, reusableUpstream: upstream)
    }
}

@available(*, unavailable)
extension Exchange: Sendable {}

/// Whether a request that a reused server connection dropped unanswered may be sent again on a fresh one.
///
/// A server may close a kept-alive connection just as a request arrives on it (its idle timeout); the client did
/// nothing wrong. Sent again, once, when the server cannot have acted on it: nothing came back, the connection
/// had served before, the method is idempotent (RFC 9110 §9.2.2) and the request had no body, so nothing of it
/// needs keeping (as browsers and haproxy's `retry-on conn-failure empty-response` do).
struct RetryPolicy {
    private var reused = false
    private var bodySent = false
    private var gotAnswer = false
    private var retried = false
    /// The request's end as it was sent: a retry sends the head again, then this.
    private var end: HTTPClientRequestPart?

    mutating func attached(reused: Bool) {
        self.reused = reused
    }

    mutating func sent(_ part: HTTPClientRequestPart) {
        switch part {
        case .head: break
        case .body(let body): if body.readableBytes > 0 { bodySent = true }
        case .end: end = part
        }
    }

    mutating func answered() {
        gotAnswer = true
    }

    /// The request's end to send after its head on a fresh connection, or nil when it must not go again.
    mutating func retry(method: HTTPMethod) -> HTTPClientRequestPart? {
        guard reused, !gotAnswer, !bodySent, !retried, let end, Self.isIdempotent(method) else { return nil }
        retried = true
        reused = false
        return end
    }

    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }
}
