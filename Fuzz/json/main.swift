import Foundation
import FuzzSupport

// A recorded body through `JSONIndenter.lines`, as the TUI's detail shows it: any bytes a peer sends.
// Invariants: what is laid out keeps every token (the lines, white space outside strings taken out, are the input
// with the same taken out) and is laid out the same again; and an object or array Foundation writes, no deeper than
// `maxDepth`, is laid out. Foundation's parser is no oracle the other way: it takes a trailing comma, and refuses a
// number beyond a Double's range, which JSON allows.

/// The bytes with the white space between tokens removed (strings kept whole, escapes included).
func tokens(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var inString = false
    var escaped = false
    for byte in bytes {
        if inString {
            out.append(byte)
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            }
        } else if byte == UInt8(ascii: "\"") {
            inString = true
            out.append(byte)
        } else if ![0x20, 0x09, 0x0A, 0x0D].contains(byte) {
            out.append(byte)
        }
    }
    return out
}

/// How deep Foundation's value nests: an object or array is one level.
func depth(_ value: Any) -> Int {
    if let array = value as? [Any] { return 1 + (array.map(depth).max() ?? 0) }
    if let object = value as? [String: Any] { return 1 + (object.values.map(depth).max() ?? 0) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let lines = JSONIndenter.lines(input.bytes)
    let parsed = try? JSONSerialization.jsonObject(with: Data(input.bytes))
    if let lines {
        let joined = Array(lines.joined(separator: "\n").utf8)
        require(tokens(joined) == tokens(input.bytes), "the layout changed a token: \(lines)")
        require(JSONIndenter.lines(joined) == lines, "laying out the layout changed it")
        require(lines.allSatisfy { !$0.hasSuffix(" ") }, "a line ends in a space")
    }
    // Foundation accepts more than JSON (a trailing comma), so what it parses is not an oracle; what it writes is.
    if let parsed, parsed is [Any] || parsed is [String: Any], depth(parsed) <= JSONIndenter.maxDepth,
        let written = try? JSONSerialization.data(withJSONObject: parsed)
    {
        require(JSONIndenter.lines(Array(written)) != nil, "did not lay out JSON Foundation wrote: \(String(decoding: written, as: UTF8.self))")
    }
    return 0
}

runFuzzer(testOneInput)
