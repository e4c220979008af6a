/// Everything a shell line runs, seen through wrappers and into nested scripts: the input of shell rules.
struct ShellAnalysis: Sendable {
    var views: [CommandView] = []
    /// Function names defined as fork bombs anywhere in the text.
    var forkBombs: [String] = []

    /// How many programs of the later stages a command's view keeps: enough for any real pipeline, and a bound on
    /// the work a hostile one of thousands of stages can cause.
    private static let maxDownstream = 64

    /// Programs that print their arguments, for `echo 'cmd' | sh`.
    private static let printers: Set<String> = ["echo", "printf"]

    init(_ text: String) {
        analyse(ShellParser.parse(text))
    }

    private init() {}

    private mutating func merge(_ other: ShellAnalysis) {
        views += other.views
        forkBombs += other.forkBombs
    }

    private mutating func analyse(_ script: ShellScript) {
        forkBombs += script.forkBombs
        for pipeline in script.pipelines {
            var stages = pipeline.stages.map { views(of: $0, depth: script.depth) }
            for index in stages.indices {
                var downstream: [String] = []
                for later in stages[(index + 1)...] where downstream.count < Self.maxDownstream {
                    downstream += later.map(\.program)
                }
                for view in stages[index].indices { stages[index][view].downstream = downstream }
                // `echo 'rm -rf /' | sh`: the printed words are the script the shell runs.
                if index + 1 < stages.count, stages[index + 1].contains(where: \.readsScriptFromStdin),
                    let printer = stages[index].last(where: { Self.printers.contains($0.program) }),
                    script.depth < ShellParser.maxDepth
                {
                    let words = printer.arguments.drop { $0.hasPrefix("-") && $0.count > 1 && $0.count <= 3 }
                    nested(words.joined(separator: " "), depth: script.depth)
                }
            }
            views += stages.flatMap { $0 }
        }
        for substitution in script.substitutions { analyse(substitution) }
    }

    /// Parses and analyses a script found inside a command (`sh -c`, `eval`, `su -c` …), one level deeper.
    private mutating func nested(_ text: String, depth: Int) {
        guard depth < ShellParser.maxDepth else { return }
        var inner = ShellAnalysis()
        inner.analyse(ShellParser.parse(text, depth: depth + 1))
        merge(inner)
    }

    /// The chain of programs one simple command runs: the command itself, then what each wrapper runs. Scripts
    /// found on the way are analysed into `self`.
    private mutating func views(of command: SimpleCommand, depth: Int) -> [CommandView] {
        var words = command.words
        var chain: [CommandView] = []
        // Each round removes at least one word, so this ends; the bound is a second guard.
        for _ in 0..<64 {
            // Leading `NAME=value` assignments are environment for the command, not the command.
            let assignments = words.prefix { ShellParser.assignment($0) != nil }.count
            words.removeFirst(assignments)
            guard let first = words.first, !first.isEmpty else { break }
            var view = CommandView(words: words[...], redirections: command.redirections)
            guard let wrapper = CommandWrapper.table[view.program] else {
                chain.append(view)
                break
            }
            let scan = wrapper.scan(words)
            for script in scan.scripts { nested(script, depth: depth) }
            switch wrapper.mode {
            case .command, .env:
                chain.append(view)
                words = Array(words[scan.next...])
                continue
            case .lookup:
                chain.append(view)
                if scan.shortSeen.contains(UInt8(ascii: "v")) || scan.shortSeen.contains(UInt8(ascii: "V")) { break }
                words = Array(words[scan.next...])
                continue
            case .shell:
                if scan.shortSeen.contains(UInt8(ascii: "c")) {
                    if scan.next < words.count { nested(words[scan.next], depth: depth) }
                } else if scan.next >= words.count || scan.shortSeen.contains(UInt8(ascii: "s")) {
                    view.readsScriptFromStdin = true
                    for body in command.stdin { nested(body, depth: depth) }
                }
                chain.append(view)
            case .scriptOption:
                chain.append(view)
                // `runuser -u user -- cmd …`: a command after `--`.
                if let dash = words.firstIndex(of: "--"), dash + 1 < words.count {
                    words = Array(words[(dash + 1)...])
                    continue
                }
            case .eval:
                chain.append(view)
                nested(words[scan.next...].joined(separator: " "), depth: depth)
            case .alias:
                chain.append(view)
                for word in words.dropFirst() {
                    if let (_, value) = ShellParser.assignment(word) { nested(value, depth: depth) }
                }
            case .find:
                chain.append(view)
                findExecs(words, depth: depth)
            }
            break
        }
        return chain
    }

    /// `find … -exec CMD … ;` (or `+`): each such command, with `{}` as it stands.
    private mutating func findExecs(_ words: [String], depth: Int) {
        guard depth < ShellParser.maxDepth else { return }
        var index = 0
        while index < words.count {
            guard ["-exec", "-execdir", "-ok", "-okdir"].contains(words[index]) else {
                index += 1
                continue
            }
            var end = index + 1
            while end < words.count && words[end] != ";" && words[end] != "+" { end += 1 }
            let command = SimpleCommand(words: Array(words[(index + 1)..<end]))
            var inner = ShellAnalysis()
            inner.views = inner.views(of: command, depth: depth + 1)
            merge(inner)
            index = end + 1
        }
    }
}
