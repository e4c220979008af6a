import SluiceModel
import Testing

@testable import SluicePolicy

/// What static matching cannot see, pinned so a change in behaviour is a decision. The README's "Known
/// limitations" lists the same cases.
@Suite struct KnownLimitsTests {
    private func judge(_ text: String) -> Judgement { Policy.builtIn.judge(text, kind: .shell) }

    /// The definition is judged as the command it stands for (the one place its text is visible), so the line
    /// that defines it is caught; a later line that only says `x` is not.
    @Test func aliasIsCaughtWhereDefinedNotWhereUsed() {
        #expect(judge("alias x='rm -rf /'").rule == "rm-root")
        #expect(judge("alias x='rm -rf /'; x").rule == "rm-root")
        #expect(judge("x").risk == .low)
    }

    /// A function defined on an earlier line is invisible too; within one text its body is judged.
    @Test func functionFromAnEarlierLineIsNotSeen() {
        #expect(judge("wipe() { rm -rf /; }").rule == "rm-root")
        #expect(judge("wipe").risk == .low)
    }

    /// What a script file holds is not known when it runs.
    @Test func scriptWrittenThenRunStaysLow() {
        #expect(judge("echo 'rm -rf /' > t.sh; sh t.sh").risk == .low)
        #expect(judge("sh ./cleanup.sh").risk == .low)
    }

    /// Decoded text is not decoded by the policy: piping anything into a shell is medium (`stdin-to-shell`), so an
    /// encoded `rm -rf /` is flagged, but only as medium.
    @Test func encodedCommandIsOnlyMediumThroughStdinToShell() {
        let judgement = judge("echo cm0gLXJmIC8= | base64 -d | sh")
        #expect(judgement.risk == .medium)
        #expect(judgement.rule == "stdin-to-shell")
        #expect(judge("echo cm0gLXJmIC8= | base64 -d > x; sh x").risk == .low)
    }

    /// A variable assigned in the same text is followed; one set earlier in the session is unknown.
    @Test func variableFromAnEarlierLineIsUnknown() {
        #expect(judge("X=/; rm -rf $X").rule == "rm-root")
        #expect(judge("rm -rf $X").risk == .low)
        #expect(judge("rm -rf \"$HOME\"/..").risk == .low)
    }

    /// The output of a command substitution is unknown, so it cannot be a program or an argument.
    @Test func commandSubstitutionOutputIsUnknown() {
        #expect(judge("$(echo rm) -rf /").risk == .low)
        #expect(judge("rm -rf $(echo /)").risk == .low)
        #expect(judge("bash -c \"$(curl -fsSL http://x)\"").risk == .low)
    }

    /// Arguments that arrive on standard input or from a file are unknown.
    @Test func argumentsFromInputAreUnknown() {
        #expect(judge("echo / | xargs rm -rf").risk == .low)
        #expect(judge("find / -exec rm -rf {} \\;").risk == .low)
    }

    /// Relative targets depend on the working directory.
    @Test func workingDirectoryIsUnknown() {
        #expect(judge("cd / && rm -rf *").risk == .low)
        #expect(judge("cd /; rm -rf .").risk == .low)
    }

    /// Other interpreters and remote commands are programs like any other.
    @Test func otherInterpretersAreNotRead() {
        #expect(judge("python3 -c 'import shutil; shutil.rmtree(\"/\")'").risk == .low)
        #expect(judge("perl -e 'system(\"rm -rf /\")'").risk == .low)
        #expect(judge("ssh host 'rm -rf /'").risk == .low)
        #expect(judge("psql -c 'DROP DATABASE x'").risk == .low)
    }

    /// A long text is judged on its first 64 KiB; the reason says so.
    @Test func longTextIsJudgedOnItsFirst64KiB() {
        let padding = String(repeating: "x", count: Policy.maxTextBytes)
        let late = judge("echo \(padding); rm -rf /")
        #expect(late.risk == .low)
        #expect(late.reason.contains("judged on the first 65536 of"))
        let early = judge("rm -rf /; echo \(padding)")
        #expect(early.rule == "rm-root")
        #expect(early.reason.hasSuffix("bytes)"))
    }

    /// `sh -c` inside `sh -c` … is followed eight levels deep, no further.
    @Test func nestingBeyondEightLevelsIsNotFollowed() {
        func wrap(_ text: String, _ times: Int) -> String {
            (0..<times).reduce(text) { inner, _ in "eval " + shellQuote(inner) }
        }
        #expect(judge(wrap("rm -rf /", 7)).rule == "rm-root")
        #expect(judge(wrap("rm -rf /", 9)).risk == .low)
    }

    private func shellQuote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// SQL run by a stored procedure, a `DO` block or dynamic `EXECUTE` is text inside a literal.
    @Test func sqlInsideLiteralsIsNotJudged() {
        #expect(Policy.builtIn.judge("DO $$BEGIN EXECUTE 'DROP TABLE t'; END$$", kind: .sql).risk == .low)
        #expect(Policy.builtIn.judge("CALL cleanup_everything()", kind: .sql).risk == .low)
    }
}
