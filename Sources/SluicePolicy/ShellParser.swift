/// Reads a shell line the way bash would split it into commands, so that rules see `rm` and `-rf` and `/` whatever
/// quoting, escaping or `$IFS` tricks spelled them: `r''m`, `\rm`, `"rm"`, `$'\x72m'`, `rm$IFS-rf$IFS/` and
/// `{rm,-rf,/}` all become the words `rm -rf /`.
///
/// It is not a full shell grammar. It splits on the control operators, removes quotes and escapes, expands `$IFS`
/// and variables assigned earlier in the same text, parses command substitutions recursively, sets redirections
/// and here-documents aside, and notices function definitions (for fork bombs). Anything it does not understand
/// stays literal text, and unterminated quotes or substitutions run to the end of the input: hostile input can make
/// the result meaningless, never crash it or make it slow (one pass, recursion capped at `maxDepth`).
struct ShellParser {
    /// Nested substitutions and `sh -c` strings deeper than this are not parsed.
    static let maxDepth = 8

    private enum Operator: Equatable {
        case semicolon, and, or, pipe, background, newline, openParen, closeParen
    }

    private enum RedirectKind: Equatable {
        case file
        case heredoc(stripTabs: Bool)
        case herestring
    }

    private enum Token: Equatable {
        case word(String, plain: Bool)
        case op(Operator)
        case redirect(RedirectKind, target: String)
    }

    /// A function body being read, to tell whether it calls itself in a pipeline or in the background.
    private struct FunctionFrame {
        var name: String
        var usesBraces: Bool
        var depth: Int
        var isForkBomb = false
    }

    private let bytes: [UInt8]
    private var index: Int
    private let depth: Int
    private var variables: [String: String]
    /// Words split off the last word (by `$IFS` or a variable's blanks), last first.
    private var queued: [Token] = []
    private var lookahead: Token??
    private var pendingHeredocs: [(delimiter: String, stripTabs: Bool)] = []
    private var substitutions: [ShellScript] = []

    private init(bytes: [UInt8], index: Int, depth: Int, variables: [String: String]) {
        self.bytes = bytes
        self.index = index
        self.depth = depth
        self.variables = variables
    }

    /// Parses a whole text. `variables` are known values (for `$X`), normally none.
    static func parse(_ text: String, depth: Int = 0, variables: [String: String] = [:]) -> ShellScript {
        var parser = ShellParser(bytes: Array(text.utf8), index: 0, depth: depth, variables: variables)
        return parser.parseScript(untilCloseParen: false)
    }

    // MARK: - Commands

    private mutating func parseScript(untilCloseParen: Bool) -> ShellScript {
        var script = ShellScript(depth: depth)
        var pipeline = ShellPipeline()
        var command = SimpleCommand()
        var plainWords: [Bool] = []
        var parenDepth = 0
        var braceDepth = 0
        var frames: [FunctionFrame] = []
        var pendingFunction: String?
        var heredocOwners: [(pipeline: Int, stage: Int, count: Int)] = []
        var commandHeredocs = 0

        func finishCommand() {
            var words = command.words
            var plain = plainWords
            // Reserved words that open or close compound commands are not programs.
            while let first = words.first, plain.first == true, Self.reservedWords.contains(first) {
                if first == "{" { braceDepth += 1 }
                if first == "}" {
                    braceDepth -= 1
                    closeFrames(usesBraces: true, depth: braceDepth)
                }
                words.removeFirst()
                plain.removeFirst()
            }
            command.words = words
            if !command.isEmpty {
                if commandHeredocs > 0 {
                    heredocOwners.append((script.pipelines.count, pipeline.stages.count, commandHeredocs))
                }
                recordAssignments(command.words)
                pipeline.stages.append(command)
            }
            command = SimpleCommand()
            plainWords = []
            commandHeredocs = 0
        }

        func finishPipeline(background: Bool) {
            finishCommand()
            guard !pipeline.stages.isEmpty else { return }
            pipeline.isBackground = background
            for frameIndex in frames.indices {
                let name = frames[frameIndex].name
                let callsItself = pipeline.stages.contains { $0.words.first == name }
                if callsItself && (pipeline.stages.count > 1 || background) { frames[frameIndex].isForkBomb = true }
            }
            script.pipelines.append(pipeline)
            pipeline = ShellPipeline()
        }

        func closeFrames(usesBraces: Bool, depth: Int) {
            while let last = frames.last, last.usesBraces == usesBraces, last.depth == depth {
                if last.isForkBomb { script.forkBombs.append(last.name) }
                frames.removeLast()
            }
        }

        loop: while let token = nextToken() {
            switch token {
            case .word(let text, let plain):
                if let name = pendingFunction, command.words.isEmpty {
                    pendingFunction = nil
                    if plain && text == "{" {
                        frames.append(FunctionFrame(name: name, usesBraces: true, depth: braceDepth))
                        braceDepth += 1
                        continue loop
                    }
                }
                if plain, text == "{", command.words.count == 2, command.words[0] == "function", plainWords[0] {
                    // `function name {`
                    let name = command.words[1]
                    command.words = []
                    plainWords = []
                    frames.append(FunctionFrame(name: name, usesBraces: true, depth: braceDepth))
                    braceDepth += 1
                    continue loop
                }
                if plain, let expanded = Self.braceList(text) {
                    command.words += expanded
                    plainWords += expanded.map { _ in false }
                } else {
                    command.words.append(text)
                    plainWords.append(plain)
                }
            case .redirect(let kind, let target):
                switch kind {
                case .file: command.redirections.append(target)
                case .herestring: command.stdin.append(target)
                case .heredoc(let stripTabs):
                    pendingHeredocs.append((target, stripTabs))
                    commandHeredocs += 1
                }
            case .op(let op):
                switch op {
                case .pipe:
                    finishCommand()
                case .semicolon, .and, .or:
                    finishPipeline(background: false)
                case .background:
                    finishPipeline(background: true)
                case .newline:
                    finishPipeline(background: false)
                    let bodies = readHeredocBodies()
                    var next = 0
                    for owner in heredocOwners {
                        for _ in 0..<owner.count where next < bodies.count {
                            if owner.pipeline < script.pipelines.count,
                                owner.stage < script.pipelines[owner.pipeline].stages.count
                            {
                                script.pipelines[owner.pipeline].stages[owner.stage].stdin.append(bodies[next])
                            }
                            next += 1
                        }
                    }
                    heredocOwners = []
                case .openParen:
                    // `name()` or `function name()` defines a function; otherwise a subshell opens.
                    let words = command.words
                    let isDefinition =
                        (words.count == 1 || (words.count == 2 && words[0] == "function"))
                        && peekToken() == .op(.closeParen)
                    if isDefinition, let name = words.last {
                        _ = nextToken()
                        command = SimpleCommand()
                        plainWords = []
                        pendingFunction = name
                        continue loop
                    }
                    finishPipeline(background: false)
                    if let name = pendingFunction {
                        pendingFunction = nil
                        frames.append(FunctionFrame(name: name, usesBraces: false, depth: parenDepth))
                    }
                    parenDepth += 1
                case .closeParen:
                    finishPipeline(background: false)
                    if parenDepth == 0 && untilCloseParen { break loop }
                    parenDepth = max(0, parenDepth - 1)
                    closeFrames(usesBraces: false, depth: parenDepth)
                }
            }
        }
        finishPipeline(background: false)
        // An unterminated definition still counts: `:(){ :|:& ` is as much a fork bomb as the whole.
        for frame in frames.reversed() where frame.isForkBomb { script.forkBombs.append(frame.name) }
        script.substitutions = substitutions
        return script
    }

    /// Words that begin or end compound commands; dropped from the front of a command.
    private static let reservedWords: Set<String> = [
        "{", "}", "!", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "esac", "in",
    ]

    /// `NAME=value` commands (alone, or after `export`, `declare`, `local`, `readonly`, `typeset`) set variables
    /// that later commands of the same text may use: `X=/; rm -rf $X` is `rm -rf /`.
    private mutating func recordAssignments(_ words: [String]) {
        var rest = words[...]
        if let first = rest.first, ["export", "declare", "local", "readonly", "typeset"].contains(first) {
            rest = rest.dropFirst()
            while let option = rest.first, option.hasPrefix("-") { rest = rest.dropFirst() }
        }
        guard !rest.isEmpty else { return }
        var assignments: [(String, String)] = []
        for word in rest {
            guard let (name, value) = Self.assignment(word) else { return }
            assignments.append((name, value))
        }
        for (name, value) in assignments { variables[name] = value }
    }

    /// Splits `NAME=value`; nil when the word is not an assignment.
    static func assignment(_ word: String) -> (String, String)? {
        guard let equals = word.utf8.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let name = word.utf8[word.utf8.startIndex..<equals]
        guard let first = name.first, isNameStart(first), name.allSatisfy(isNameByte) else { return nil }
        let value = word.utf8[word.utf8.index(after: equals)...]
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// `{a,b,c}` (unquoted, with a comma and no nested braces) expands to its parts, as bash's brace expansion does.
    private static func braceList(_ text: String) -> [String]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 3, utf8.first == UInt8(ascii: "{"), utf8.last == UInt8(ascii: "}") else { return nil }
        let inner = utf8[1..<(utf8.count - 1)]
        guard inner.contains(UInt8(ascii: ",")),
            !inner.contains(UInt8(ascii: "{")), !inner.contains(UInt8(ascii: "}"))
        else { return nil }
        return inner.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    // MARK: - Tokens

    private mutating func peekToken() -> Token? {
        if let lookahead { return lookahead }
        let token = nextToken()
        lookahead = .some(token)
        return token
    }

    private mutating func nextToken() -> Token? {
        if let pending = lookahead {
            lookahead = nil
            return pending
        }
        if let next = queued.popLast() { return next }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "\\") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n"):
                index += 2
            case UInt8(ascii: "#"):
                // A comment runs to the end of the line.
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\n"):
                index += 1
                return .op(.newline)
            case UInt8(ascii: ";"):
                index += 1
                // `;;`, `;&` and `;;&` end a case branch.
                while index < bytes.count && (bytes[index] == UInt8(ascii: ";") || bytes[index] == UInt8(ascii: "&")) {
                    index += 1
                }
                return .op(.semicolon)
            case UInt8(ascii: "&"):
                if peek(1) == UInt8(ascii: "&") {
                    index += 2
                    return .op(.and)
                }
                if peek(1) == UInt8(ascii: ">") {
                    index += 1
                    return redirect()
                }
                index += 1
                return .op(.background)
            case UInt8(ascii: "|"):
                if peek(1) == UInt8(ascii: "|") {
                    index += 2
                    return .op(.or)
                }
                index += peek(1) == UInt8(ascii: "&") ? 2 : 1
                return .op(.pipe)
            case UInt8(ascii: "("):
                index += 1
                return .op(.openParen)
            case UInt8(ascii: ")"):
                index += 1
                return .op(.closeParen)
            case UInt8(ascii: "<"), UInt8(ascii: ">"):
                if peek(1) == UInt8(ascii: "(") {
                    // Process substitution: the command runs; the word is a file name.
                    index += 2
                    substitute()
                    return .word("/dev/fd/63", plain: false)
                }
                return redirect()
            default:
                // A word that expanded to nothing (an unquoted `$(…)`) is no word at all.
                if let word = word() { return word }
            }
        }
        return nil
    }

    private func peek(_ offset: Int) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    /// At `<`, `>` or `&>` (any file-descriptor number already consumed): the operator and its target word.
    private mutating func redirect() -> Token {
        var kind = RedirectKind.file
        if bytes[index] == UInt8(ascii: "&") { index += 1 }
        if bytes[index] == UInt8(ascii: "<") {
            index += 1
            if peek(0) == UInt8(ascii: "<") {
                index += 1
                if peek(0) == UInt8(ascii: "<") {
                    index += 1
                    kind = .herestring
                } else if peek(0) == UInt8(ascii: "-") {
                    index += 1
                    kind = .heredoc(stripTabs: true)
                } else {
                    kind = .heredoc(stripTabs: false)
                }
            }
        } else {
            index += 1
        }
        // The rest of the operator: `>>`, `>|`, `<>`, `>&`, `<&`.
        while let next = peek(0), next == UInt8(ascii: ">") || next == UInt8(ascii: "|") || next == UInt8(ascii: "&") {
            if next == UInt8(ascii: "&") && peek(1) == UInt8(ascii: "&") { break }
            index += 1
        }
        while let next = peek(0), next == UInt8(ascii: " ") || next == UInt8(ascii: "\t") { index += 1 }
        guard let next = peek(0), !Self.isOperatorByte(next), next != UInt8(ascii: "\n") else {
            return .redirect(kind, target: "")
        }
        // The target is one word; an `$IFS` in it would split it, so take the first piece only.
        let target = word()
        queued = []
        if case .word(let text, _)? = target { return .redirect(kind, target: text) }
        return .redirect(kind, target: "")
    }

    private static func isOperatorByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: ";"), UInt8(ascii: "&"), UInt8(ascii: "|"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "<"), UInt8(ascii: ">"):
            return true
        default:
            return false
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
            || byte == UInt8(ascii: "\r")
    }

    static func isNameStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        isNameStart(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }

    /// One word, with quotes removed and expansions done. An unquoted `$IFS` or a variable's whitespace splits it:
    /// the first piece is returned and the rest queued.
    private mutating func word() -> Token? {
        var current: [UInt8] = []
        var started = false
        var plain = true
        var pieces: [Token] = []

        func split() {
            if started || !current.isEmpty {
                pieces.append(.word(String(decoding: current, as: UTF8.self), plain: false))
            }
            current = []
            started = false
        }

        /// Appends an expansion's value; unquoted, its blanks separate words.
        func append(_ value: String, quoted: Bool) {
            if quoted {
                current += value.utf8
                return
            }
            for byte in value.utf8 {
                if Self.isBlank(byte) { split() } else { current.append(byte) }
            }
        }

        while index < bytes.count {
            let byte = bytes[index]
            if Self.isBlank(byte) { break }
            if byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") {
                // `2>file`: a number right before the operator is the descriptor, not a word.
                if plain, !current.isEmpty, current.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                    return redirect()
                }
                break
            }
            if Self.isOperatorByte(byte) { break }
            switch byte {
            case UInt8(ascii: "'"):
                plain = false
                started = true
                index += 1
                while index < bytes.count && bytes[index] != UInt8(ascii: "'") {
                    current.append(bytes[index])
                    index += 1
                }
                index += 1
            case UInt8(ascii: "\""):
                plain = false
                started = true
                index += 1
                doubleQuoted(into: &current)
            case UInt8(ascii: "\\"):
                plain = false
                if index + 1 < bytes.count {
                    if bytes[index + 1] != UInt8(ascii: "\n") { current.append(bytes[index + 1]) }
                    index += 2
                } else {
                    index += 1
                }
            case UInt8(ascii: "`"):
                plain = false
                index += 1
                backticks()
            case UInt8(ascii: "$"):
                plain = false
                index += 1
                switch dollar(quoted: false) {
                case .literal(let text):
                    started = true
                    current += text
                case .value(let value):
                    append(value, quoted: false)
                case .none:
                    break
                }
            default:
                current.append(byte)
                index += 1
            }
        }
        if started || !current.isEmpty {
            pieces.append(.word(String(decoding: current, as: UTF8.self), plain: plain && pieces.isEmpty))
        }
        guard let first = pieces.first else { return nil }
        queued = pieces.dropFirst().reversed()
        return first
    }

    /// Inside `"…"` (opening quote consumed): `\` escapes only `$`, `` ` ``, `"`, `\` and newline; expansions
    /// and substitutions still happen.
    private mutating func doubleQuoted(into current: inout [UInt8]) {
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                if let next = peek(1),
                    next == UInt8(ascii: "$") || next == UInt8(ascii: "`") || next == UInt8(ascii: "\"")
                        || next == UInt8(ascii: "\\") || next == UInt8(ascii: "\n")
                {
                    if next != UInt8(ascii: "\n") { current.append(next) }
                    index += 2
                } else {
                    current.append(byte)
                    index += 1
                }
            case UInt8(ascii: "`"):
                index += 1
                backticks()
            case UInt8(ascii: "$"):
                index += 1
                switch dollar(quoted: true) {
                case .literal(let text): current += text
                case .value(let value): current += value.utf8
                case .none: break
                }
            default:
                current.append(byte)
                index += 1
            }
        }
    }

    /// What a `$` turned into.
    private enum Expansion {
        /// Text that is part of the word as it stands (`$'…'`, an unknown `$X` kept as written).
        case literal([UInt8])
        /// A variable's value: unquoted, its blanks separate words.
        case value(String)
        /// A command substitution: its output is unknown, the command itself was parsed.
        case none
    }

    /// After a `$`: `$'…'`, `$"…"`, `$(…)`, `$((…))`, `${…}`, `$NAME` or a lone `$`.
    private mutating func dollar(quoted: Bool) -> Expansion {
        guard let next = peek(0) else { return .literal([UInt8(ascii: "$")]) }
        switch next {
        case UInt8(ascii: "'") where !quoted:
            index += 1
            var text: [UInt8] = []
            ansiC(into: &text)
            return .literal(text)
        case UInt8(ascii: "\"") where !quoted:
            index += 1
            var text: [UInt8] = []
            doubleQuoted(into: &text)
            return .literal(text)
        case UInt8(ascii: "(") where peek(1) == UInt8(ascii: "("):
            // Arithmetic: no command runs (a substitution inside it is not looked at: a known gap).
            index += 2
            var open = 2
            while index < bytes.count && open > 0 {
                if bytes[index] == UInt8(ascii: "(") { open += 1 }
                if bytes[index] == UInt8(ascii: ")") { open -= 1 }
                index += 1
            }
            return .literal(Array("$((…))".utf8))
        case UInt8(ascii: "("):
            index += 1
            substitute()
            return .none
        case UInt8(ascii: "{"):
            let start = index + 1
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "}") { end += 1 }
            let name = String(decoding: bytes[start..<end], as: UTF8.self)
            index = min(end + 1, bytes.count)
            return expand(name, literal: "${\(name)}")
        default:
            guard Self.isNameStart(next) else { return .literal([UInt8(ascii: "$")]) }
            let start = index
            while index < bytes.count && Self.isNameByte(bytes[index]) { index += 1 }
            let name = String(decoding: bytes[start..<index], as: UTF8.self)
            return expand(name, literal: "$" + name)
        }
    }

    /// `$IFS` is whitespace (the classic way to write `rm -rf /` without a space); a variable assigned earlier in
    /// the text is its value; anything else stays as written, since its value is unknown here.
    private func expand(_ name: String, literal: String) -> Expansion {
        if name == "IFS" { return .value(" ") }
        if let value = variables[name] { return .value(value) }
        return .literal(Array(literal.utf8))
    }

    /// `$'…'` (opening quote consumed): C escapes.
    private mutating func ansiC(into current: inout [UInt8]) {
        func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "'") { return }
            guard byte == UInt8(ascii: "\\"), index < bytes.count else {
                current.append(byte)
                continue
            }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "n"): current.append(10)
            case UInt8(ascii: "t"): current.append(9)
            case UInt8(ascii: "r"): current.append(13)
            case UInt8(ascii: "a"): current.append(7)
            case UInt8(ascii: "b"): current.append(8)
            case UInt8(ascii: "e"), UInt8(ascii: "E"): current.append(27)
            case UInt8(ascii: "f"): current.append(12)
            case UInt8(ascii: "v"): current.append(11)
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                let limit = escape == UInt8(ascii: "x") ? 2 : (escape == UInt8(ascii: "u") ? 4 : 8)
                var value: UInt32 = 0
                var digits = 0
                while digits < limit, index < bytes.count, let digit = hexValue(bytes[index]) {
                    value = value * 16 + digit
                    digits += 1
                    index += 1
                }
                if digits == 0 {
                    current += [UInt8(ascii: "\\"), escape]
                } else if escape == UInt8(ascii: "x") {
                    current.append(UInt8(truncatingIfNeeded: value))
                } else if let scalar = Unicode.Scalar(value) {
                    current += Array(String(Character(scalar)).utf8)
                }
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = UInt32(escape - UInt8(ascii: "0"))
                var digits = 1
                while digits < 3, index < bytes.count, bytes[index] >= UInt8(ascii: "0"),
                    bytes[index] <= UInt8(ascii: "7")
                {
                    value = value * 8 + UInt32(bytes[index] - UInt8(ascii: "0"))
                    digits += 1
                    index += 1
                }
                current.append(UInt8(truncatingIfNeeded: value))
            case UInt8(ascii: "c"):
                if index < bytes.count {
                    current.append(bytes[index] & 0x1f)
                    index += 1
                }
            default:
                // `\\`, `\'`, `\"`, `\?` and unknown escapes: the character itself.
                current.append(escape)
            }
        }
    }

    /// After `$(` or `<(`: parses the command up to the matching `)` as a script of its own.
    private mutating func substitute() {
        guard depth < Self.maxDepth else {
            // Too deep to look inside: skip to the matching parenthesis without recursing.
            var open = 1
            while index < bytes.count && open > 0 {
                if bytes[index] == UInt8(ascii: "(") { open += 1 }
                if bytes[index] == UInt8(ascii: ")") { open -= 1 }
                index += 1
            }
            return
        }
        var inner = ShellParser(bytes: bytes, index: index, depth: depth + 1, variables: variables)
        let script = inner.parseScript(untilCloseParen: true)
        index = inner.index
        substitutions.append(script)
    }

    /// After an opening backtick: the text up to the closing one, with `\``, `\\` and `\$` unescaped, as a script.
    private mutating func backticks() {
        var text: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "`") {
                index += 1
                break
            }
            if byte == UInt8(ascii: "\\"), let next = peek(1),
                next == UInt8(ascii: "`") || next == UInt8(ascii: "\\") || next == UInt8(ascii: "$")
            {
                text.append(next)
                index += 2
                continue
            }
            text.append(byte)
            index += 1
        }
        guard depth < Self.maxDepth else { return }
        substitutions.append(
            Self.parse(String(decoding: text, as: UTF8.self), depth: depth + 1, variables: variables)
        )
    }

    /// At the start of the line after `<<DELIM`: the here-documents' bodies, in order, each up to its delimiter
    /// line (or the end of the text).
    private mutating func readHeredocBodies() -> [String] {
        var bodies: [String] = []
        for heredoc in pendingHeredocs {
            var lines: [String] = []
            while index < bytes.count {
                var end = index
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                var line = bytes[index..<end]
                index = min(end + 1, bytes.count)
                if heredoc.stripTabs { line = line.drop { $0 == UInt8(ascii: "\t") } }
                let text = String(decoding: line, as: UTF8.self)
                if text == heredoc.delimiter { break }
                lines.append(text)
            }
            bodies.append(lines.joined(separator: "\n"))
        }
        pendingHeredocs = []
        return bodies
    }
}
