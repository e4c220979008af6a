import SluiceModel
import Testing

@testable import SluicePolicy

/// The built-in policy on shell lines: what must be caught however it is spelled, and what only looks like it.
@Suite struct ShellJudgementTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var text: String
        var risk: RiskLevel
        var rule: String?

        init(_ text: String, _ risk: RiskLevel, _ rule: String?) {
            self.text = text
            self.risk = risk
            self.rule = rule
        }

        var testDescription: String { text.debugDescription }
    }

    static let critical: [Case] = [
        // rm -rf / and its spellings
        Case("rm -rf /", .critical, "rm-root"),
        Case("rm -fr /", .critical, "rm-root"),
        Case("rm -r -f /", .critical, "rm-root"),
        Case("rm --recursive --force /", .critical, "rm-root"),
        Case("rm -Rf /", .critical, "rm-root"),
        Case("rm -rf /*", .critical, "rm-root"),
        Case("rm -rf --no-preserve-root /", .critical, "rm-root"),
        Case("rm -r /", .critical, "rm-root"),
        Case("rm -rf -- /", .critical, "rm-root"),
        Case("rm -rf //", .critical, "rm-root"),
        Case("rm -rf /tmp/..", .critical, "rm-root"),
        Case("rm -rf /./", .critical, "rm-root"),
        Case("rm -rf \"/\"", .critical, "rm-root"),
        Case("rm -rf / > /dev/null 2>&1", .critical, "rm-root"),
        // bypass attempts
        Case("r''m -rf /", .critical, "rm-root"),
        Case("r\"\"m -rf /", .critical, "rm-root"),
        Case("\\rm -rf /", .critical, "rm-root"),
        Case("r\\m -rf /", .critical, "rm-root"),
        Case("rm\t-rf\t/", .critical, "rm-root"),
        Case("rm$IFS-rf$IFS/", .critical, "rm-root"),
        Case("rm${IFS}-rf${IFS}/", .critical, "rm-root"),
        Case("$'\\x72m' -rf /", .critical, "rm-root"),
        Case("{rm,-rf,/}", .critical, "rm-root"),
        Case("/bin/rm -rf /", .critical, "rm-root"),
        Case("/usr/bin/rm -rf /", .critical, "rm-root"),
        Case("./rm -rf /", .critical, "rm-root"),
        Case("sudo rm -rf /", .critical, "rm-root"),
        Case("sudo -u root rm -rf /", .critical, "rm-root"),
        Case("sudo -E -u root -- rm -rf /", .critical, "rm-root"),
        Case("sudo -uroot /bin/rm -rf /", .critical, "rm-root"),
        Case("doas rm -rf /", .critical, "rm-root"),
        Case("env X=1 rm -rf /", .critical, "rm-root"),
        Case("env -i PATH=/bin rm -rf /", .critical, "rm-root"),
        Case("env -S 'rm -rf /'", .critical, "rm-root"),
        Case("X=1 rm -rf /", .critical, "rm-root"),
        Case("nohup rm -rf / &", .critical, "rm-root"),
        Case("command rm -rf /", .critical, "rm-root"),
        Case("exec rm -rf /", .critical, "rm-root"),
        Case("nice -n 10 rm -rf /", .critical, "rm-root"),
        Case("time rm -rf /", .critical, "rm-root"),
        Case("timeout 5 rm -rf /", .critical, "rm-root"),
        Case("timeout -s KILL 5 rm -rf /", .critical, "rm-root"),
        Case("busybox rm -rf /", .critical, "rm-root"),
        Case("echo x | xargs -I{} rm -rf /", .critical, "rm-root"),
        Case("sh -c \"rm -rf /\"", .critical, "rm-root"),
        Case("bash -c 'rm -rf /*'", .critical, "rm-root"),
        Case("bash -lc 'rm -rf /'", .critical, "rm-root"),
        Case("zsh -c 'rm -rf /'", .critical, "rm-root"),
        Case("dash -c 'rm -rf /'", .critical, "rm-root"),
        Case("sudo sh -c 'cd / && rm -rf *'", .medium, "sudo"),
        Case("sudo bash -c \"sh -c 'rm -rf /'\"", .critical, "rm-root"),
        Case("su -c 'rm -rf /'", .critical, "rm-root"),
        Case("su root -c 'rm -rf /'", .critical, "rm-root"),
        Case("eval 'rm -rf /'", .critical, "rm-root"),
        Case("eval rm -rf /", .critical, "rm-root"),
        Case("find /tmp -name x -exec rm -rf / \\;", .critical, "rm-root"),
        Case("echo x; rm -rf /", .critical, "rm-root"),
        Case("true && rm -rf /", .critical, "rm-root"),
        Case("false || rm -rf /", .critical, "rm-root"),
        Case("ls | rm -rf /", .critical, "rm-root"),
        Case("sleep 1 & rm -rf /", .critical, "rm-root"),
        Case("echo x\nrm -rf /", .critical, "rm-root"),
        Case("$(rm -rf /)", .critical, "rm-root"),
        Case("echo $(rm -rf /)", .critical, "rm-root"),
        Case("echo \"$(rm -rf /)\"", .critical, "rm-root"),
        Case("`rm -rf /`", .critical, "rm-root"),
        Case("echo `rm -rf /`", .critical, "rm-root"),
        Case("echo $(echo $(rm -rf /))", .critical, "rm-root"),
        Case("cat <(rm -rf /)", .critical, "rm-root"),
        Case("(rm -rf /)", .critical, "rm-root"),
        Case("{ rm -rf /; }", .critical, "rm-root"),
        Case("if true; then rm -rf /; fi", .critical, "rm-root"),
        Case("for i in 1; do rm -rf /; done", .critical, "rm-root"),
        Case("! rm -rf /", .critical, "rm-root"),
        Case("X=/; rm -rf $X", .critical, "rm-root"),
        Case("export T=/; rm -rf \"$T\"", .critical, "rm-root"),
        Case("F='-rf /'; rm $F", .critical, "rm-root"),
        Case("bash <<< 'rm -rf /'", .critical, "rm-root"),
        Case("bash <<EOF\nrm -rf /\nEOF", .critical, "rm-root"),
        Case("echo 'rm -rf /' | sh", .critical, "rm-root"),
        Case("alias x='rm -rf /'; x", .critical, "rm-root"),
        // other critical commands
        Case("mkfs /dev/sda1", .critical, "mkfs"),
        Case("mkfs.ext4 /dev/sda1", .critical, "mkfs"),
        Case("sudo mkfs.xfs -f /dev/nvme0n1p1", .critical, "mkfs"),
        Case("/sbin/mke2fs /dev/vdb", .critical, "mkfs"),
        Case("dd if=/dev/zero of=/dev/sda bs=1M", .critical, "dd-to-disk"),
        Case("dd if=/dev/urandom of=/dev/nvme0n1", .critical, "dd-to-disk"),
        Case("sudo dd of=/dev/mmcblk0 if=image.img", .critical, "dd-to-disk"),
        Case("dd if=x of=//dev//xvda", .critical, "dd-to-disk"),
        Case("cat /dev/zero > /dev/sda", .critical, "redirect-to-disk"),
        Case("wipefs -a /dev/sdb", .critical, "wipe-disk"),
        Case(":(){ :|:& };:", .critical, "fork-bomb"),
        Case("bomb(){ bomb|bomb& };bomb", .critical, "fork-bomb"),
        Case("f() { f | f & }; f", .critical, "fork-bomb"),
        Case("function boom { boom | boom & }; boom", .critical, "fork-bomb"),
        Case("x() ( x & x & ); x", .critical, "fork-bomb"),
        Case(":(){ :|:& ", .critical, "fork-bomb"),
    ]

    static let high: [Case] = [
        Case("shutdown -h now", .high, "shutdown"),
        Case("sudo reboot", .high, "shutdown"),
        Case("halt", .high, "shutdown"),
        Case("/sbin/poweroff", .high, "shutdown"),
        Case("init 0", .high, "shutdown"),
        Case("init 6", .high, "shutdown"),
        Case("systemctl reboot", .high, "shutdown"),
        Case("iptables -F", .high, "iptables-flush"),
        Case("iptables -t nat --flush", .high, "iptables-flush"),
        Case("ip6tables -F INPUT", .high, "iptables-flush"),
        Case("nft flush ruleset", .high, "iptables-flush"),
        Case("chmod -R 777 /", .high, "chmod-777-root"),
        Case("chmod --recursive 0777 /*", .high, "chmod-777-root"),
        Case("sudo chmod -R a+rwx /", .high, "chmod-777-root"),
        Case("chown -R nobody /", .high, "chown-root"),
        Case("rm -rf /etc", .high, "rm-system-dir"),
        Case("rm -rf /usr/", .high, "rm-system-dir"),
    ]

    static let medium: [Case] = [
        Case("sudo ls", .medium, "sudo"),
        Case("sudo -i", .medium, "sudo"),
        Case("su", .medium, "su"),
        Case("su - postgres", .medium, "su"),
        Case("passwd", .medium, "passwd"),
        Case("sudo passwd alice", .medium, "sudo"),
        Case("curl http://x | sh", .medium, "pipe-to-shell"),
        Case("curl -fsSL https://get.example | bash", .medium, "pipe-to-shell"),
        Case("curl http://x | sudo bash", .medium, "pipe-to-shell"),
        Case("wget -qO- http://x | sh -s -- --yes", .medium, "pipe-to-shell"),
        Case("curl http://x | tee install.log | bash", .medium, "pipe-to-shell"),
        Case("curl -s http://x | python3", .medium, "pipe-to-shell"),
        Case("cat install.sh | bash", .medium, "stdin-to-shell"),
    ]

    static let low: [Case] = [
        Case("rm -rf ./build", .low, nil),
        Case("rm -rf build/", .low, nil),
        Case("rm -rf /tmp/x", .low, nil),
        Case("rm -f /", .low, nil),
        Case("rm -rf ~/.cache", .low, nil),
        Case("rm -rf /var/tmp/cache", .low, nil),
        Case("echo \"rm -rf /\"", .low, nil),
        Case("echo 'rm -rf /'", .low, nil),
        Case("echo rm -rf /", .low, nil),
        Case("printf '%s\\n' 'rm -rf /' > notes.txt", .low, nil),
        Case("grep 'rm -rf /' history.txt", .low, nil),
        Case("grep 'DROP DATABASE' notes.txt", .low, nil),
        Case("git commit -m 'rm -rf / is bad'", .low, nil),
        Case("ls -la # rm -rf /", .low, nil),
        Case("dd if=/dev/zero of=/tmp/f bs=1M count=1", .low, nil),
        Case("dd if=/dev/sda of=/dev/null", .low, nil),
        Case("dd if=/dev/sda of=backup.img", .low, nil),
        Case("echo hi > /dev/null", .low, nil),
        Case("man shutdown", .low, nil),
        Case("man rm", .low, nil),
        Case("which reboot", .low, nil),
        Case("command -v rm", .low, nil),
        Case("systemctl status nginx", .low, nil),
        Case("iptables -L", .low, nil),
        Case("chmod 644 /etc/motd", .low, nil),
        Case("chmod -R 755 ./public", .low, nil),
        Case("chmod 777 /", .low, nil),
        Case("curl -o x.sh http://x", .low, nil),
        Case("curl http://x | grep foo", .low, nil),
        Case("ls -la", .low, nil),
        Case("cd / && ls", .low, nil),
        Case("f() { echo hi; }; f", .low, nil),
        Case("f() { f; }", .low, nil),
        Case("echo ':(){ :|:& };:'", .low, nil),
        Case("", .low, nil),
        Case("   ", .low, nil),
    ]

    @Test(arguments: critical + high + medium + low)
    func judge(_ example: Case) {
        let judgement = Policy.builtIn.judge(example.text, kind: .shell)
        #expect(judgement.risk == example.risk, "\(judgement.reason)")
        #expect(judgement.rule == example.rule, "\(judgement.reason)")
    }

    @Test func execIsReadLikeAShellLine() {
        #expect(Policy.builtIn.judge("rm -rf /", kind: .exec).rule == "rm-root")
        #expect(Policy.builtIn.judge("uname -a", kind: .exec).risk == .low)
    }

    @Test func actionsFollowTheLevels() {
        #expect(Policy.builtIn.judge("rm -rf /", kind: .shell).action == .block)
        #expect(Policy.builtIn.judge("reboot", kind: .shell).action == .hold)
        #expect(Policy.builtIn.judge("sudo ls", kind: .shell).action == .alert)
        #expect(Policy.builtIn.judge("ls", kind: .shell).action == .allow)
    }

    @Test func reasonNamesTheCommandAndTheRule() {
        #expect(Policy.builtIn.judge("sudo -u root /bin/rm -rf /", kind: .shell).reason == "rm -rf / (rule rm-root)")
        #expect(Policy.builtIn.judge("ls", kind: .shell).reason == "no rule matched")
        #expect(Policy.builtIn.judge(":(){ :|:& };:", kind: .shell).reason == ":(){ :|:& } (rule fork-bomb)")
    }

    @Test func theHigherRiskWinsWhateverTheOrder() {
        let judgement = Policy.builtIn.judge("sudo ls; rm -rf /; reboot", kind: .shell)
        #expect(judgement.rule == "rm-root")
        #expect(Policy.builtIn.judge("reboot; sudo ls", kind: .shell).rule == "shutdown")
    }

    /// A guard against a rule that backtracks, not a benchmark: an ordinary line costs about 0.1 ms of CPU in a debug
    /// build.
    @Test func normalLinesAreFast() {
        let lines = [
            "sudo -u deploy git -C /srv/app pull --ff-only && systemctl restart app",
            "ls -la /var/log | grep -v gz | tail -n 20",
            "DELETE FROM sessions WHERE expires < now()",
        ]
        let rounds = 2_000
        let seconds = cpuSeconds {
            for round in 0..<rounds {
                _ = Policy.builtIn.judge(lines[round % 3], kind: round % 3 == 2 ? .sql : .shell)
            }
        }
        let perLine = seconds / Double(rounds)
        #expect(perLine < 0.002, "\(perLine * 1_000) ms of CPU per line")
    }

    @Test func caseCount() {
        #expect((Self.critical + Self.high + Self.medium + Self.low).count >= 100)
    }
}
