/// One program a shell line runs, as the rules see it: `sudo -u root /bin/rm -rf //` yields a view of `sudo` (its
/// arguments being `-u root /bin/rm -rf //`) and a view of `rm` (`-rf //`), so a rule about `sudo` and a rule about
/// `rm` both get their chance and the higher risk wins.
struct CommandView: Sendable, Equatable {
    /// The program's name without its directory: `/bin/rm` and `./rm` are `rm`.
    var program: String
    var arguments: [String]
    /// The arguments plus their path-normalised forms (`//` and `/tmp/..` are `/`, `of=/dev//sda` is
    /// `of=/dev/sda`), which is what `args_*` patterns are tested against.
    var matchArguments: [String]
    /// Short options present (`-rf` gives `r` and `f`), up to a `--`.
    var shortFlags: Set<UInt8>
    /// Long options present, without dashes or `=value`.
    var longFlags: Set<String>
    var redirections: [String]
    /// Programs of the later stages of the same pipeline (every view of each): what this command's output feeds.
    var downstream: [String] = []
    /// A shell run with no `-c` and no script file reads its script from standard input (`… | sh`).
    var readsScriptFromStdin = false

    init(words: ArraySlice<String>, redirections: [String]) {
        let first = words.first ?? ""
        program = Self.basename(first)
        arguments = Array(words.dropFirst())
        self.redirections = redirections.flatMap(Self.forms)
        matchArguments = arguments.flatMap(Self.forms)
        var short = Set<UInt8>()
        var long = Set<String>()
        for argument in arguments {
            if argument == "--" { break }
            if argument.hasPrefix("--") {
                let name = argument.dropFirst(2).prefix { $0 != "=" }
                if !name.isEmpty { long.insert(String(name)) }
            } else if argument.hasPrefix("-") {
                short.formUnion(argument.utf8.dropFirst())
            }
        }
        shortFlags = short
        longFlags = long
    }

    /// The line as a person would read it, for the judgement's reason.
    var excerpt: String {
        ([program] + arguments).joined(separator: " ")
    }

    static func basename(_ word: String) -> String {
        guard let slash = word.lastIndex(of: "/") else { return word }
        let name = word[word.index(after: slash)...]
        return name.isEmpty ? word : String(name)
    }

    /// An argument and, if different, its normalised path form (also after `key=`, as in `dd of=/dev/sda`).
    private static func forms(_ argument: String) -> [String] {
        let normal: String
        if argument.hasPrefix("/") {
            normal = normalise(argument)
        } else if let equals = argument.firstIndex(of: "="), argument[argument.index(after: equals)...].hasPrefix("/") {
            normal = String(argument[...equals]) + normalise(String(argument[argument.index(after: equals)...]))
        } else {
            return [argument]
        }
        return normal == argument ? [argument] : [argument, normal]
    }

    /// Lexical normalisation of an absolute path: repeated slashes, `.` and `..` (never above `/`), trailing slash.
    static func normalise(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                if !components.isEmpty { components.removeLast() }
                continue
            }
            components.append(component)
        }
        return "/" + components.joined(separator: "/")
    }
}
