/// A shell-style pattern (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\` escapes; `*` and `?` do not match `/`, as in
/// pathname expansion), compiled once when a rule is parsed so that judging a command never parses a pattern.
/// Matching works on UTF-8 bytes: every pattern in a policy names programs, options and paths, where a byte-wise
/// `?` is as good as a character-wise one and much cheaper.
struct Glob: Sendable, Equatable {
    enum Element: Sendable, Equatable {
        case literal([UInt8])
        case anyByte
        case anyRun
        /// A bracket expression: byte ranges, negated with `!` or `^`.
        case set(ranges: [ClosedRange<UInt8>], negated: Bool)
    }

    let pattern: String
    let elements: [Element]
    /// The pattern without wildcards, for a plain comparison.
    let literal: String?

    init(_ pattern: String) {
        self.pattern = pattern
        var elements: [Element] = []
        var pending: [UInt8] = []
        let bytes = Array(pattern.utf8)
        var index = 0
        func flush() {
            if !pending.isEmpty {
                elements.append(.literal(pending))
                pending = []
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "*"):
                flush()
                if elements.last != .anyRun { elements.append(.anyRun) }
                index += 1
            case UInt8(ascii: "?"):
                flush()
                elements.append(.anyByte)
                index += 1
            case UInt8(ascii: "\\") where index + 1 < bytes.count:
                pending.append(bytes[index + 1])
                index += 2
            case UInt8(ascii: "["):
                if let (set, next) = Self.bracket(bytes, from: index) {
                    flush()
                    elements.append(set)
                    index = next
                } else {
                    // An unclosed `[` is an ordinary character, as in the shell.
                    pending.append(byte)
                    index += 1
                }
            default:
                pending.append(byte)
                index += 1
            }
        }
        flush()
        self.elements = elements
        if elements.isEmpty {
            literal = ""
        } else if elements.count == 1, case .literal(let bytes) = elements[0] {
            literal = String(decoding: bytes, as: UTF8.self)
        } else {
            literal = nil
        }
    }

    /// Parses `[...]` starting at `start`; nil when there is no closing `]`.
    private static func bracket(_ bytes: [UInt8], from start: Int) -> (Element, Int)? {
        var index = start + 1
        var negated = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "!") || bytes[index] == UInt8(ascii: "^") {
            negated = true
            index += 1
        }
        var ranges: [ClosedRange<UInt8>] = []
        var first = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "]") && !first {
                return (.set(ranges: ranges, negated: negated), index + 1)
            }
            first = false
            if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "-"), bytes[index + 2] != UInt8(ascii: "]") {
                let low = min(byte, bytes[index + 2])
                let high = max(byte, bytes[index + 2])
                ranges.append(low...high)
                index += 3
            } else {
                ranges.append(byte...byte)
                index += 1
            }
        }
        return nil
    }

    func matches(_ text: String) -> Bool {
        if let literal { return literal == text }
        return text.utf8.withContiguousStorageIfAvailable { matches(bytes: $0) } ?? matches(bytes: Array(text.utf8))
    }

    /// Iterative matching with one backtrack point per `*` (the classic wildcard algorithm): linear in practice and
    /// never recursive, so a hostile argument cannot make it slow.
    private func matches<C: RandomAccessCollection>(bytes text: C) -> Bool where C.Element == UInt8, C.Index == Int {
        var element = 0
        var position = text.startIndex
        var star: (element: Int, position: Int)?
        while true {
            if element < elements.count {
                switch elements[element] {
                case .anyRun:
                    star = (element, position)
                    element += 1
                    continue
                case .anyByte:
                    if position < text.endIndex, text[position] != UInt8(ascii: "/") {
                        element += 1
                        position += 1
                        continue
                    }
                case .literal(let literal):
                    if text.endIndex - position >= literal.count
                        && zip(literal, text[position..<(position + literal.count)]).allSatisfy({ $0 == $1 })
                    {
                        element += 1
                        position += literal.count
                        continue
                    }
                case .set(let ranges, let negated):
                    if position < text.endIndex, ranges.contains(where: { $0.contains(text[position]) }) != negated {
                        element += 1
                        position += 1
                        continue
                    }
                }
            } else if position == text.endIndex {
                return true
            }
            // Mismatch: let the last `*` swallow one more byte, or fail. As in pathname expansion, `*` never
            // swallows a `/`: `/*` is what is directly in `/`, not `/tmp/x`.
            guard let last = star, last.position < text.endIndex, text[last.position] != UInt8(ascii: "/") else {
                return false
            }
            star = (last.element, last.position + 1)
            element = last.element + 1
            position = last.position + 1
        }
    }
}
