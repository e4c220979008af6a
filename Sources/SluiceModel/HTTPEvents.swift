import Foundation

/// One header line as it travelled: order and repeats matter (cookies, HAR export), so headers are a list.
public struct HeaderField: Sendable, Hashable, Codable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == HeaderField {
    /// The first value of a header, compared case-insensitively as RFC 9110 §5.1 says.
    public func first(named name: String) -> String? {
        first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A request head was read from the client. Its body follows as `up` messages of the same flow.
public struct HTTPRequestStarted: Sendable, Equatable {
    public var flowID: FlowID
    public var time: Date
    public var method: String
    /// Absolute: `http://example.com:8080/path?q`, as the request reached the server.
    public var url: String
    /// `HTTP/1.1`
    public var version: String
    public var headers: [HeaderField]
    /// Set when this flow was made by replaying another one.
    public var replayOf: FlowID?

    public init(
        flowID: FlowID, time: Date, method: String, url: String, version: String, headers: [HeaderField],
        replayOf: FlowID? = nil
    ) {
        self.flowID = flowID
        self.time = time
        self.method = method
        self.url = url
        self.version = version
        self.headers = headers
        self.replayOf = replayOf
    }
}

/// Milliseconds spent in each phase of an exchange; nil when the phase did not happen (a reused upstream
/// connection has no connect or TLS time).
public struct HTTPTimings: Sendable, Equatable {
    public var connect: Double?
    public var tls: Double?
    /// From the request head sent upstream to the response head read.
    public var firstByte: Double?

    public init(connect: Double? = nil, tls: Double? = nil, firstByte: Double? = nil) {
        self.connect = connect
        self.tls = tls
        self.firstByte = firstByte
    }
}

/// The final response head was read from the server (or made by Sluice: a 502, a 407, a canned answer).
/// Its body follows as `down` messages.
public struct HTTPResponseStarted: Sendable, Equatable {
    public var flowID: FlowID
    public var time: Date
    public var status: Int
    public var reason: String
    public var version: String
    public var headers: [HeaderField]
    public var timings: HTTPTimings
    /// True when Sluice wrote this response itself instead of relaying the server's.
    public var synthetic: Bool

    public init(
        flowID: FlowID, time: Date, status: Int, reason: String, version: String, headers: [HeaderField],
        timings: HTTPTimings, synthetic: Bool = false
    ) {
        self.flowID = flowID
        self.time = time
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.timings = timings
        self.synthetic = synthetic
    }
}
