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

    init(plan: ExchangePlan, recorder: FlowRecorder, owner: HTTPProxyHandler) {
        self.plan = plan
        self.recorder = recorder
        self.owner = owner
    }

    /// More request body may be read from the client: the server's connection is up and can take it.
    var wantsMoreRequest: Bool {
        !requestComplete && !finished && (upstream?.isWritable ?? false)
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
        upstream.write(.head(plan.upstreamHead))
        requestSentAt = .now()
        for part in pending { upstream.write(part) }
        pending = []
        upstream.flush()
        upstream.read()
        owner.readClientIfWanted()
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
        case .body(let buffer):
            recorder.chunk(buffer, direction: .up, kind: .body)
            toUpstream(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            requestComplete = true
            toUpstream(.end(trailers))
            upstream?.flush()
        }
    }

    private func toUpstream(_ part: HTTPClientRequestPart) {
        if let upstream {
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
        switch part {
        case .head(let head):
            responseHead(head)
        case .body(let buffer):
            recorder.chunk(buffer, direction: .down, kind: .body)
            owner.writeToClient(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            if upgradeAccepted, let upstream {
                finished = true
                owner.upgradeAccepted(self, upstream: upstream)
                return
            }
            owner.writeToClient(.end(trailers), flush: true)
            end(reusing: upstreamEnds || !requestComplete ? nil : upstream)
        }
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
            let (clientHead, _) = plan.clientResponseHead(head, closing: false)
            owner.writeToClient(.head(clientHead))
            owner.writeToClient(.end(nil), flush: true)
            upgradeAccepted = true
            return
        }
        let framed = head.headers.contains(name: "content-length") || head.headers.contains(name: "transfer-encoding")
        let bodyEndsByClose = !framed && !plan.isHead && head.status.allowsBody
        upstreamEnds = bodyEndsByClose || HopByHop.wantsClose(head.headers, version: head.version)
        let (clientHead, endsByClose) = plan.clientResponseHead(head, closing: owner.closeAfterResponse)
        if endsByClose { owner.closeAfterResponse = true }
        owner.writeToClient(.head(clientHead))
        responseHeadSent = true
    }

    func upstreamReadComplete() {
        owner.flushClient()
        guard !finished else { return }
        if owner.clientIsWritable {
            upstream?.read()
        } else {
            upstreamReadDeferred = true
        }
    }

    func clientBecameWritable() {
        guard upstreamReadDeferred, !finished else { return }
        upstreamReadDeferred = false
        upstream?.read()
    }

    func upstreamBecameWritable() {
        owner.readClientIfWanted()
    }

    // MARK: Endings

    func upstreamClosed() {
        guard !finished else { return }
        upstream = nil
        if responseHeadSent {
            fail(.server, "server closed the connection before the response was complete")
        } else {
            fail(.server, "server closed the connection before responding")
        }
    }

    func upstreamFailed(_ error: Error) {
        guard !finished else { return }
        if let parserError = error as? HTTPParserError {
            fail(.server, "invalid response from the server: \(describeParserError(parserError))")
        } else {
            fail(.server, describe(error))
        }
    }

    /// The client went away before the response was complete.
    func clientClosed() {
        guard !finished else { return }
        recorder.failed(.client, "client closed the connection before the response was complete")
        finished = true
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

    /// A server-side failure: the client gets a 502 while no response has started, else a cut connection.
    private func fail(_ phase: FlowErrorPhase, _ message: String) {
        recorder.failed(phase, message)
        upstream?.close()
        if responseHeadSent {
            owner.closeAfterResponse = true
        } else {
            owner.respond(.badGateway, message: message, recorder: recorder, timings: timings)
        }
        end(reusing: nil)
    }

    private func end(reusing upstream: Upstream?) {
        guard !finished else { return }
        finished = true
        if upstream == nil { self.upstream?.close() }
        recorder.finish()
        owner.exchangeEnded(self, reusableUpstream: upstream)
    }
}

@available(*, unavailable)
extension Exchange: Sendable {}
