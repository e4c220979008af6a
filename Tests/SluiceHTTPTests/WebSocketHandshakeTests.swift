import SluiceHTTP
import Testing

@Suite("WebSocketHandshake")
struct WebSocketHandshakeTests {
    @Test("RFC 6455 §1.3 example")
    func rfcExample() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    /// Expected values from Python's hashlib; key lengths chosen so key + GUID straddles SHA-1 padding boundaries
    /// (55/56 bytes, one and two full blocks).
    @Test("known answers across SHA-1 block boundaries", arguments: [
        ("x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
        ("", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="),
        ("a", "FtgH8qqfEKHvZKEZYEWkYDhlXNY="),
        (String(repeating: "A", count: 19), "aY4PwGcVNJA8APkO5DyVUWJM+GI="),
        (String(repeating: "A", count: 20), "/3M+5HFywElctYU7s1JYO+XV104="),
        (String(repeating: "B", count: 28), "Jm6i/o6zMU2cZVSOTvhRLDESc9I="),
        (String(repeating: "C", count: 92), "r7aU1yHARnTSb+nxK58rnRDoN5g="),
        (String(repeating: "D", count: 200), "32dV+iNpSoJQJ9UgUnx8QUTKPaI="),
    ])
    func knownAnswers(key: String, accept: String) {
        #expect(WebSocketHandshake.acceptValue(forKey: key) == accept)
    }
}
