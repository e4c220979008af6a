import Foundation
import FuzzSupport

// The filter language (`f` and `i` in the TUI, `intercept:` in the config) through `Filter.init` and `matches`.
// SluiceModel's sources are compiled into this module (Filter.swift uses its types without importing them).

/// Flows of every kind with short fields, so that a hostile regular expression cannot take long on them. Made per
/// input: LeakSanitizer counts a global's buffers as leaked at exit, which fails a replay.
func makeSubjects() -> [FilterSubject] {
    let login = FilterSubject(
        kind: .http, client: Endpoint(host: "127.0.0.1", port: 50000),
        server: Endpoint(host: "example.test", port: 443), requestPayloads: [Data("user=alice&pass=x".utf8)],
        responsePayloads: [Data("{\"ok\":true}".utf8)], method: "POST", url: "https://example.test/login?next=/",
        requestHeaders: [HeaderField(name: "Host", value: "example.test")], statusCode: 200,
        responseHeaders: [HeaderField(name: "Content-Type", value: "text/html")]
    )
    let accept = HeaderField(name: "Accept", value: "*/*")
    return [
        login,
        FilterSubject(
            kind: .http, method: "GET", url: "http://a.test/", requestHeaders: [accept], isReplay: true, hasError: true,
            isHeld: true
        ),
        FilterSubject(
            kind: .tcp, client: Endpoint(host: "::1", port: 1), server: Endpoint(host: "db", port: 5432),
            requestPayloads: [Data([0, 0xFF, 0x41, 0x0A]), Data("SELECT 1".utf8)], isMarked: true
        ),
        FilterSubject(kind: .ssh, server: Endpoint(host: "10.0.0.7", port: 22), risk: .high, commands: ["rm /x", "ls"]),
        FilterSubject(
            kind: .websocket, requestPayloads: [Data("hello".utf8)], responsePayloads: [Data("hi".utf8)],
            url: "ws://w.test/chat", statusCode: 101
        ),
    ]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let text = String(decoding: input.bytes, as: UTF8.self)
    let filter: Filter
    do {
        filter = try Filter(text)
    } catch {
        // The column points into the text or just past it, and the message says what was expected.
        require((1...(text.count + 1)).contains(error.column), "column \(error.column) of \(text.count) characters")
        require(!error.message.isEmpty, "an empty message")
        return 0
    }
    require(filter.text == text, "text")
    let subjects = makeSubjects()
    let matches = subjects.map(filter.matches)

    // Wrapping changes nothing but what it says: `!( )` negates, `( ) | ( )` and `( ) & ( )` repeat. The lexer reads
    // characters (grapheme clusters), so this holds only when the parentheses stay characters of their own: a text
    // that starts with a combining mark would join the `(` before it.
    guard ("(" + text + ")").count == text.count + 2 else { return 0 }
    do {
        let negated = try Filter("!(\(text))")
        require(subjects.map(negated.matches) == matches.map { !$0 }, "!(\(text)) is not the negation")
        let either = try Filter("(\(text)) | (\(text))")
        require(subjects.map(either.matches) == matches, "(f) | (f) differs from f")
        let both = try Filter("(\(text)) (\(text))")
        require(subjects.map(both.matches) == matches, "(f) (f) differs from f")
    } catch {
        require(false, "a filter that parses stops parsing once wrapped: \(error)")
    }
    return 0
}

runFuzzer { testOneInput($0, $1) }
