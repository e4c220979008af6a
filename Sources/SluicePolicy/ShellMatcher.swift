/// The shape of a shell command a rule matches: every key given must hold (an empty key holds). Compiled from a
/// rule's `shell:` mapping; the keys are documented in `samples/policy.yaml`.
struct ShellMatcher: Sendable, Equatable {
    /// Option names that count as one: `r|R|recursive` is `-r`, `-R` or `--recursive`.
    struct FlagSet: Sendable, Equatable {
        var short: Set<UInt8> = []
        var long: Set<String> = []

        func isPresent(in view: CommandView) -> Bool {
            !short.isDisjoint(with: view.shortFlags) || !long.isDisjoint(with: view.longFlags)
        }
    }

    /// `program`: the program's name (directory removed) matches one of these; empty: any program.
    var programs: [Glob] = []
    /// `flags_all`: each set has an option present.
    var flagsAll: [FlagSet] = []
    /// `flags_any`: at least one of these options is present.
    var flagsAny: FlagSet?
    /// `args_any`: some argument matches one of these.
    var argsAny: [Glob] = []
    /// `args_all`: each alternative list is matched by some argument.
    var argsAll: [[Glob]] = []
    /// `args_none`: no argument matches any of these.
    var argsNone: [Glob] = []
    /// `redirects_any`: some redirection target matches one of these.
    var redirectsAny: [Glob] = []
    /// `pipe_to`: a later stage of the same pipeline runs one of these.
    var pipeTo: [Glob] = []
    /// `shape: fork-bomb`: a function that runs itself in a pipeline or in the background. Stands alone.
    var forkBomb = false

    func matches(_ view: CommandView) -> Bool {
        if forkBomb { return false }
        if !programs.isEmpty, !programs.contains(where: { $0.matches(view.program) }) { return false }
        for flags in flagsAll where !flags.isPresent(in: view) { return false }
        if let flagsAny, !flagsAny.isPresent(in: view) { return false }
        if !argsAny.isEmpty, !Self.any(argsAny, view.matchArguments) { return false }
        for alternatives in argsAll where !Self.any(alternatives, view.matchArguments) { return false }
        if !argsNone.isEmpty, Self.any(argsNone, view.matchArguments) { return false }
        if !redirectsAny.isEmpty, !Self.any(redirectsAny, view.redirections) { return false }
        if !pipeTo.isEmpty, !Self.any(pipeTo, view.downstream) { return false }
        return true
    }

    private static func any(_ globs: [Glob], _ words: [String]) -> Bool {
        words.contains { word in globs.contains { $0.matches(word) } }
    }
}
