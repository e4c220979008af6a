import Testing

@testable import SluicePolicy

/// The shell tokenizer on its own: words, quotes, escapes, operators, and input that is broken or hostile.
@Suite struct ShellParserTests {
    /// Each pipeline's stages as word lists.
    private func commands(_ text: String) -> [[[String]]] {
        ShellParser.parse(text).pipelines.map { $0.stages.map(\.words) }
    }

    @Test(arguments: [
        ("ls -la", [[["ls", "-la"]]]),
        ("a; b && c || d & e\nf", [[["a"]], [["b"]], [["c"]], [["d"]], [["e"]], [["f"]]]),
        ("a | b |& c", [[["a"], ["b"], ["c"]]]),
        ("echo 'a b' \"c d\" e\\ f", [[["echo", "a b", "c d", "e f"]]]),
        ("echo \"a 'b' \\\"c\\\" \\$d \\x\"", [[["echo", "a 'b' \"c\" $d \\x"]]]),
        ("echo 'a \\' b", [[["echo", "a \\", "b"]]]),
        ("echo $'a\\tb\\x41\\101\\u00e9\\n'", [[["echo", "a\tbAA\u{e9}\n"]]]),
        ("echo $\"x\"", [[["echo", "x"]]]),
        ("echo '' x", [[["echo", "", "x"]]]),
        ("r''m \"\"-rf", [[["rm", "-rf"]]]),
        ("a$IFS-b${IFS}c", [[["a", "-b", "c"]]]),
        ("echo \"a$IFS\"b", [[["echo", "a b"]]]),
        ("echo $HOME ${PATH} $1 $? $", [[["echo", "$HOME", "${PATH}", "$1", "$?", "$"]]]),
        ("X=1 Y=2 cmd", [[["X=1", "Y=2", "cmd"]]]),
        ("echo a\\\nb", [[["echo", "ab"]]]),
        ("echo a # b c", [[["echo", "a"]]]),
        ("echo a#b", [[["echo", "a#b"]]]),
        ("cmd > out 2>&1 < in >> log &> all", [[["cmd"]]]),
        ("cmd 2> err arg", [[["cmd", "arg"]]]),
        ("echo $((1 + 2))", [[["echo", "$((…))"]]]),
        ("{a,b}", [[["a", "b"]]]),
        ("'{a,b}'", [[["{a,b}"]]]),
        ("{ a; }", [[["a"]]]),
        ("(a; b)", [[["a"]], [["b"]]]),
        ("if a; then b; else c; fi", [[["a"]], [["b"]], [["c"]]]),
    ])
    func words(_ text: String, _ expected: [[[String]]]) {
        #expect(commands(text) == expected)
    }

    @Test func redirectionsAreSetAside() {
        let command = ShellParser.parse("cmd > out 2>&1 < in").pipelines.first?.stages.first
        #expect(command?.redirections == ["out", "1", "in"])
    }

    @Test func substitutionsAreParsedWhereverTheyAppear() {
        let script = ShellParser.parse("echo $(a 1) \"$(b 2)\" `c 3` <(d 4) $(e $(f 5))")
        let programs = script.substitutions.flatMap { sub in
            sub.pipelines.map { $0.stages[0].words[0] } + sub.substitutions.map { $0.pipelines[0].stages[0].words[0] }
        }
        #expect(Set(programs) == ["a", "b", "c", "d", "e", "f"])
        #expect(script.pipelines.map { $0.stages.map(\.words) } == [[["echo", "", "/dev/fd/63"]]])
    }

    @Test func backticksUnescape() {
        let script = ShellParser.parse("echo `echo \\`x\\``")
        #expect(script.substitutions.first?.substitutions.first?.pipelines.first?.stages.first?.words == ["x"])
    }

    @Test func hereDocumentsGoToTheirCommand() {
        let script = ShellParser.parse("cat <<EOF > f\nline one\nEOF\nls <<-END\n\tbody\n\tEND\necho done")
        #expect(script.pipelines.map { $0.stages.map(\.words) } == [[["cat"]], [["ls"]], [["echo", "done"]]])
        #expect(script.pipelines[0].stages[0].stdin == ["line one"])
        #expect(script.pipelines[1].stages[0].stdin == ["body"])
        #expect(script.pipelines[0].stages[0].redirections == ["f"])
    }

    @Test func variablesAssignedEarlierExpand() {
        #expect(commands("X=/tmp; ls $X \"$X\"") == [[["X=/tmp"]], [["ls", "/tmp", "/tmp"]]])
        #expect(commands("X='a b'; ls $X \"$X\"") == [[["X=a b"]], [["ls", "a", "b", "a b"]]])
        // A prefix assignment is the command's environment: `$X` expands before it applies.
        #expect(commands("X=1 echo $X") == [[["X=1", "echo", "$X"]]])
    }

    @Test func forkBombsAreFunctionsThatSpawnThemselves() {
        #expect(ShellParser.parse(":(){ :|:& };:").forkBombs == [":"])
        #expect(ShellParser.parse("b(){ b|b& };b").forkBombs == ["b"])
        #expect(ShellParser.parse("f() { f; }").forkBombs.isEmpty)
        #expect(ShellParser.parse("f() { g | g & }").forkBombs.isEmpty)
        #expect(ShellParser.parse("f(){ echo; }; f | f &").forkBombs.isEmpty)
    }

    /// Unterminated quotes, substitutions and here-documents run to the end of the input as literal text.
    @Test(arguments: [
        ("echo 'abc", [[["echo", "abc"]]]),
        ("echo \"abc", [[["echo", "abc"]]]),
        ("echo $'abc", [[["echo", "abc"]]]),
        ("echo \\", [[["echo"]]]),
        ("echo ${X", [[["echo", "${X}"]]]),
        ("echo $(ls", [[["echo"]]]),
        ("echo `ls", [[["echo"]]]),
        ("echo $((1", [[["echo", "$((…))"]]]),
        ("cat <<EOF\nno end", [[["cat"]]]),
        ("echo >", [[["echo"]]]),
        (")))(((", []),
        ("|||;;&&&", []),
    ])
    func brokenInputDoesNotCrash(_ text: String, _ expected: [[[String]]]) {
        #expect(commands(text) == expected)
    }

    @Test func deepNestingStopsAtTheLimit() {
        let deep = String(repeating: "$(", count: 10_000) + "rm -rf /" + String(repeating: ")", count: 10_000)
        var script = ShellParser.parse(deep)
        var depth = 0
        while let inner = script.substitutions.first {
            script = inner
            depth += 1
        }
        #expect(depth == ShellParser.maxDepth)
    }

    @Test func hostileInputStaysFast() {
        let texts = [
            String(repeating: "a'b\"c$(d`e", count: 5_000),
            String(repeating: "sh -c '", count: 5_000),
            String(repeating: "{a,b}$IFS", count: 5_000),
            String(repeating: "f(){ f|f& };", count: 2_000),
        ]
        for text in texts {
            let seconds = cpuSeconds { _ = Policy.builtIn.judge(text, kind: .shell) }
            #expect(seconds < 2, "\(text.prefix(20))…: \(seconds) s of CPU")
        }
    }
}
