/// A shell line as the parser understood it: pipelines of simple commands with quotes removed and known variables
/// expanded, the command substitutions found anywhere in it (parsed in turn), and the fork bombs it defines.
struct ShellScript: Sendable, Equatable {
    var pipelines: [ShellPipeline] = []
    /// `$( )`, backticks and `<( )` / `>( )`: they run, wherever they appear in a word.
    var substitutions: [ShellScript] = []
    /// Names of functions whose body runs the function itself in a pipeline or in the background.
    var forkBombs: [String] = []
    /// How many substitutions or `sh -c` strings deep this script sits; the parser stops at `ShellParser.maxDepth`.
    var depth = 0
}

/// Stages joined by `|` (or `|&`), ended by `;`, `&&`, `||`, `&`, a newline or a parenthesis.
struct ShellPipeline: Sendable, Equatable {
    var stages: [SimpleCommand] = []
    /// Ended by `&`.
    var isBackground = false
}

/// One command's words after quote removal and expansion, reserved words (`{`, `then`, `do`, `!` ...) removed.
struct SimpleCommand: Sendable, Equatable {
    var words: [String] = []
    /// Targets of `>`, `>>`, `<`, `&>` ... (not the here-documents).
    var redirections: [String] = []
    /// Here-documents and here-strings: what the command reads on its standard input.
    var stdin: [String] = []

    var isEmpty: Bool { words.isEmpty && redirections.isEmpty && stdin.isEmpty }
}
