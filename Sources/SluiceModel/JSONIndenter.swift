/// Lays a JSON object or array out one member per line, keeping every token as it travelled: keys in their order,
/// a key that appears twice shown twice, numbers and strings byte for byte (`1.0`, `"a\/b"`, `"caf\u00e9"`).
///
/// Only the white space between tokens changes. Parsing into values and printing them again (`JSONSerialization`)
/// would sort the keys, keep the last of two equal keys, and rewrite numbers and escapes; a proxy's detail view
/// must show what the peer sent, and duplicate keys are exactly what an operator looking for a parser
/// differential wants to see.
///
/// Iterative, so a hostile payload nested thousands deep costs no stack; nesting deeper than `maxDepth` is shown
/// as the text it is (its indentation alone would grow with the square of its size).
public enum JSONIndenter {
    /// Containers nested deeper than this are not laid out.
    public static let maxDepth = 32
    /// Spaces per level.
    public static let indentWidth = 2

    /// The lines of `bytes` laid out, or nil unless `bytes` is one JSON object or array in UTF-8 (RFC 8259 §8.1;
    /// white space around it allowed) nested at most `maxDepth` deep.
    public static func lines(_ bytes: some Collection<UInt8>) -> [String]? {
        let input = Array(bytes)
        guard String(validating: input, as: UTF8.self) != nil else { return nil }
        var layout = Layout(input)
        return layout.run()
    }

    /// What may come next.
    private enum Expect {
        /// The document itself: an object or an array.
        case document
        /// After `{`: a key or `}`.
        case keyOrClose
        /// After `,` in an object.
        case key
        case colon
        /// After `:`: a value, on the key's line.
        case memberValue
        /// After `[`: an element or `]`.
        case elementOrClose
        /// After `,` in an array.
        case element
        case commaOrClose
        case end
    }

    private struct Layout {
        let input: [UInt8]
        var index = 0
        /// The open containers, innermost last: `{` or `[`.
        var open: [UInt8] = []
        var lines: [String] = []
        var line: [UInt8] = []

        init(_ input: [UInt8]) {
            self.input = input
        }

        mutating func run() -> [String]? {
            var expect = Expect.document
            while true {
                skipWhiteSpace()
                guard index < input.count else { break }
                let byte = input[index]
                switch expect {
                case .document:
                    guard byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") else { return nil }
                    guard let next = openContainer(byte) else { return nil }
                    expect = next
                case .keyOrClose, .key:
                    if expect == .keyOrClose, byte == UInt8(ascii: "}") {
                        expect = closeContainer(onNewLine: false)
                        continue
                    }
                    guard byte == UInt8(ascii: "\"") else { return nil }
                    startLine()
                    guard copyString() else { return nil }
                    expect = .colon
                case .colon:
                    guard byte == UInt8(ascii: ":") else { return nil }
                    index += 1
                    line += Array(": ".utf8)
                    expect = .memberValue
                case .memberValue:
                    guard let next = value(byte) else { return nil }
                    expect = next
                case .elementOrClose, .element:
                    if expect == .elementOrClose, byte == UInt8(ascii: "]") {
                        expect = closeContainer(onNewLine: false)
                        continue
                    }
                    startLine()
                    guard let next = value(byte) else { return nil }
                    expect = next
                case .commaOrClose:
                    guard let innermost = open.last else { return nil }
                    if byte == UInt8(ascii: ",") {
                        index += 1
                        line.append(byte)
                        expect = innermost == UInt8(ascii: "{") ? .key : .element
                    } else if byte == (innermost == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        expect = closeContainer(onNewLine: true)
                    } else {
                        return nil
                    }
                case .end:
                    return nil
                }
            }
            guard expect == .end else { return nil }
            lines.append(String(decoding: line, as: UTF8.self))
            return lines
        }

        /// A value where one may stand: a container opens, a scalar is copied whole.
        mutating func value(_ byte: UInt8) -> Expect? {
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                return openContainer(byte)
            case UInt8(ascii: "\""):
                guard copyString() else { return nil }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard copyNumber() else { return nil }
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                guard copyLiteral() else { return nil }
            default:
                return nil
            }
            return afterValue
        }

        var afterValue: Expect { open.isEmpty ? .end : .commaOrClose }

        mutating func openContainer(_ byte: UInt8) -> Expect? {
            guard open.count < JSONIndenter.maxDepth else { return nil }
            index += 1
            open.append(byte)
            line.append(byte)
            return byte == UInt8(ascii: "{") ? .keyOrClose : .elementOrClose
        }

        /// Closes the innermost container: on a line of its own after members, right after its opener when empty.
        mutating func closeContainer(onNewLine: Bool) -> Expect {
            let opener = open.removeLast()
            index += 1
            if onNewLine { startLine() }
            line.append(opener == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]"))
            return afterValue
        }

        /// Ends the current line and starts the next at the current depth.
        mutating func startLine() {
            lines.append(String(decoding: line, as: UTF8.self))
            line = Array(repeating: UInt8(ascii: " "), count: open.count * JSONIndenter.indentWidth)
        }

        mutating func skipWhiteSpace() {
            while index < input.count {
                switch input[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// Copies a string as written, escapes included (RFC 8259 §7): false unless it is one.
        mutating func copyString() -> Bool {
            let start = index
            index += 1
            while index < input.count {
                let byte = input[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    line += input[start..<index]
                    return true
                case UInt8(ascii: "\\"):
                    guard index + 1 < input.count else { return false }
                    switch input[index + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 2
                    case UInt8(ascii: "u"):
                        guard index + 5 < input.count, input[(index + 2)...(index + 5)].allSatisfy(Self.isHexDigit) else {
                            return false
                        }
                        index += 6
                    default:
                        return false
                    }
                case 0x00..<0x20:
                    return false
                default:
                    index += 1
                }
            }
            return false
        }

        /// Copies a number as written (RFC 8259 §6): `-`, an integer part without leading zeros, a fraction, an
        /// exponent.
        mutating func copyNumber() -> Bool {
            let start = index
            if input[index] == UInt8(ascii: "-") { index += 1 }
            guard index < input.count else { return false }
            if input[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                guard digits() > 0 else { return false }
            }
            if index < input.count, input[index] == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { return false }
            }
            if index < input.count, input[index] == UInt8(ascii: "e") || input[index] == UInt8(ascii: "E") {
                index += 1
                if index < input.count, input[index] == UInt8(ascii: "+") || input[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { return false }
            }
            line += input[start..<index]
            return true
        }

        mutating func digits() -> Int {
            let start = index
            while index < input.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(input[index]) { index += 1 }
            return index - start
        }

        mutating func copyLiteral() -> Bool {
            for literal in ["true", "false", "null"] {
                let bytes = Array(literal.utf8)
                if input.count - index >= bytes.count, input[index..<(index + bytes.count)].elementsEqual(bytes) {
                    index += bytes.count
                    line += bytes
                    return true
                }
            }
            return false
        }

        static func isHexDigit(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"):
                return true
            default:
                return false
            }
        }
    }
}
