import Foundation

/// What a filter expression can look at in one flow. Fields that a flow's kind does not have stay nil/empty, and
/// operators on them are false (a `~m GET` never matches a TCP flow), never an error.
public struct FilterSubject: Sendable {
    public var kind: FlowKind
    public var client: Endpoint?
    public var server: Endpoint?
    /// Client-to-server bytes: a TCP stream's up direction, an HTTP request body, a WebSocket's client messages.
    public var requestPayload: Data
    /// Server-to-client bytes.
    public var responsePayload: Data
    // HTTP
    public var method: String?
    public var url: String?
    public var statusCode: Int?
    /// Header lines, `Name: value`, request and response together.
    public var headers: [String]
    public var contentType: String?
    public var hasResponse: Bool
    // Every kind
    public var hasError: Bool
    public var isMarked: Bool
    public var isHeld: Bool
    // SSH and SQL
    public var risk: RiskLevel?
    public var commands: [String]

    public init(
        kind: FlowKind, client: Endpoint? = nil, server: Endpoint? = nil, requestPayload: Data = Data(),
        responsePayload: Data = Data(), method: String? = nil, url: String? = nil, statusCode: Int? = nil,
        headers: [String] = [], contentType: String? = nil, hasResponse: Bool = false, hasError: Bool = false,
        isMarked: Bool = false, isHeld: Bool = false, risk: RiskLevel? = nil, commands: [String] = []
    ) {
        self.kind = kind
        self.client = client
        self.server = server
        self.requestPayload = requestPayload
        self.responsePayload = responsePayload
        self.method = method
        self.url = url
        self.statusCode = statusCode
        self.headers = headers
        self.contentType = contentType
        self.hasResponse = hasResponse
        self.hasError = hasError
        self.isMarked = isMarked
        self.isHeld = isHeld
        self.risk = risk
        self.commands = commands
    }
}
