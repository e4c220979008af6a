/// A program that runs another command given on its command line (`sudo`, `env`, `xargs`, `sh -c` …), described
/// by its options, so the analysis can find the command it runs. This is knowledge of the programs' command lines,
/// not policy, so it lives in code rather than in the rules.
struct CommandWrapper: Sendable {
    enum Mode: Sendable {
        /// The command follows the options (and `positionals` more words): `sudo -u root rm …`.
        case command
        /// `env`: also skips `NAME=value` assignments; `-S STRING` is a command line.
        case env
        /// A shell: `-c` makes the first operand a script; with no operand the script is read from standard input.
        case shell
        /// `su -c SCRIPT`, `runuser -c SCRIPT`: an option's value is a script; options may follow the user name.
        case scriptOption
        /// `eval WORDS`, `watch WORDS`: the words, joined, are a script.
        case eval
        /// `alias NAME=VALUE`: each value is judged as the command it stands for.
        case alias
        /// `find … -exec CMD ;`: each `-exec`, `-execdir`, `-ok`, `-okdir` runs a command.
        case find
        /// `command -v NAME` only looks a name up; otherwise as `.command`.
        case lookup
    }

    var mode: Mode
    /// Short options that take a value (`-u root`, `-uroot`).
    var valueShort: Set<UInt8> = []
    /// Long options that take a value as the next word (`--user root`; `--user=root` is always understood).
    var valueLong: Set<String> = []
    /// Short and long options whose value is a script.
    var scriptShort: Set<UInt8> = []
    var scriptLong: Set<String> = []
    /// Operands between the options and the command: `timeout 5 cmd` has one.
    var positionals = 0

    private static func bytes(_ letters: String) -> Set<UInt8> { Set(letters.utf8) }

    static let table: [String: CommandWrapper] = {
        let sudo = CommandWrapper(
            mode: .command, valueShort: bytes("ugCDhprtTUR"),
            valueLong: [
                "user", "group", "close-from", "chdir", "host", "prompt", "role", "type", "command-timeout",
                "other-user", "chroot",
            ]
        )
        let shell = CommandWrapper(mode: .shell, valueShort: bytes("oO"), valueLong: ["rcfile", "init-file"])
        let su = CommandWrapper(
            mode: .scriptOption, valueShort: bytes("gGsw"),
            valueLong: ["group", "supp-group", "shell", "whitelist-environment", "user"],
            scriptShort: bytes("c"), scriptLong: ["command", "session-command"]
        )
        var table: [String: CommandWrapper] = [
            "sudo": sudo,
            "doas": CommandWrapper(mode: .command, valueShort: bytes("uC")),
            "pkexec": CommandWrapper(mode: .command, valueLong: ["user"]),
            "env": CommandWrapper(
                mode: .env, valueShort: bytes("uCP"), valueLong: ["unset", "chdir"], scriptShort: bytes("S"),
                scriptLong: ["split-string"]
            ),
            "nohup": CommandWrapper(mode: .command),
            "setsid": CommandWrapper(mode: .command),
            "command": CommandWrapper(mode: .lookup),
            "builtin": CommandWrapper(mode: .command),
            "exec": CommandWrapper(mode: .command, valueShort: bytes("a")),
            "nice": CommandWrapper(mode: .command, valueShort: bytes("n"), valueLong: ["adjustment"]),
            "ionice": CommandWrapper(mode: .command, valueShort: bytes("cnpPu"), valueLong: ["class", "classdata"]),
            "stdbuf": CommandWrapper(
                mode: .command, valueShort: bytes("ioe"), valueLong: ["input", "output", "error"]),
            "time": CommandWrapper(mode: .command, valueShort: bytes("fo"), valueLong: ["format", "output"]),
            "timeout": CommandWrapper(
                mode: .command, valueShort: bytes("sk"), valueLong: ["signal", "kill-after"], positionals: 1
            ),
            "chroot": CommandWrapper(mode: .command, valueLong: ["userspec", "groups"], positionals: 1),
            "taskset": CommandWrapper(mode: .command, positionals: 1),
            "unbuffer": CommandWrapper(mode: .command),
            "busybox": CommandWrapper(mode: .command),
            "xargs": CommandWrapper(
                mode: .command, valueShort: bytes("adEILnPs"),
                valueLong: [
                    "arg-file", "delimiter", "max-lines", "max-args", "max-procs", "max-chars", "process-slot-var",
                ]
            ),
            "su": su,
            "runuser": su,
            "eval": CommandWrapper(mode: .eval),
            "watch": CommandWrapper(mode: .eval, valueShort: bytes("nqd"), valueLong: ["interval"]),
            "alias": CommandWrapper(mode: .alias),
            "find": CommandWrapper(mode: .find),
        ]
        for name in ["sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "rbash", "fish", "yash", "posh"] {
            table[name] = shell
        }
        return table
    }()

    /// What scanning a wrapper's options found.
    struct Scan {
        /// The index of the first word after the options.
        var next: Int
        /// Values of script options (`su -c`, `env -S`).
        var scripts: [String] = []
        /// Short option letters seen (`-c` for a shell).
        var shortSeen: Set<UInt8> = []
        /// Non-option words passed over (only in `.scriptOption` mode, where options may follow them).
        var operands: [String] = []
    }

    /// Walks the options after the program name (`words[0]`), as getopt would.
    func scan(_ words: [String]) -> Scan {
        var scan = Scan(next: 1)
        var index = 1
        while index < words.count {
            let word = words[index]
            if word == "--" {
                index += 1
                break
            }
            if word.hasPrefix("--"), word.count > 2 {
                let body = word.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                var value: String? = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
                if value == nil, valueLong.contains(name) || scriptLong.contains(name), index + 1 < words.count {
                    index += 1
                    value = words[index]
                }
                if scriptLong.contains(name), let value { scan.scripts.append(value) }
                index += 1
                continue
            }
            if (word.hasPrefix("-") || (mode == .shell && word.hasPrefix("+"))) && word.count > 1 {
                let letters = Array(word.utf8.dropFirst())
                for (position, letter) in letters.enumerated() {
                    scan.shortSeen.insert(letter)
                    guard valueShort.contains(letter) || scriptShort.contains(letter) else { continue }
                    var value: String?
                    if position + 1 < letters.count {
                        value = String(decoding: letters[(position + 1)...], as: UTF8.self)
                    } else if index + 1 < words.count {
                        index += 1
                        value = words[index]
                    }
                    if scriptShort.contains(letter), let value { scan.scripts.append(value) }
                    break
                }
                index += 1
                continue
            }
            if mode == .env, word == "-" || ShellParser.assignment(word) != nil {
                index += 1
                continue
            }
            if mode == .scriptOption {
                scan.operands.append(word)
                index += 1
                continue
            }
            break
        }
        scan.next = min(index + positionals, words.count)
        return scan
    }
}
