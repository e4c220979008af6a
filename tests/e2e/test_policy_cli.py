"""`sluice policy check` / `sluice policy show` on the issue's cases, custom and broken policy files, stdin; `--policy`
on a running Sluice and SIGHUP reloading it."""

import json
import os
import signal
import subprocess
import unittest

from support import SLUICE_BIN, SluiceTest, free_port, poll, run_cli, wait_for_binary

# (text, sql?, risk, action, rule) as the built-in policy judges them (the issue's list).
BUILT_IN_CASES = [
    # critical, and the bypass attempts
    ("rm -rf /", False, "critical", "block", "rm-root"),
    ("sudo -u root rm -rf /", False, "critical", "block", "rm-root"),
    ('sh -c "rm -rf /"', False, "critical", "block", "rm-root"),
    ("r''m -rf /", False, "critical", "block", "rm-root"),
    ("\\rm -rf /", False, "critical", "block", "rm-root"),
    ("/bin/rm -fr /*", False, "critical", "block", "rm-root"),
    ("rm\t-rf\t/", False, "critical", "block", "rm-root"),
    ("rm${IFS}-rf${IFS}/", False, "critical", "block", "rm-root"),
    ("rm -r --no-preserve-root /", False, "critical", "block", "rm-root"),
    ("mkfs.ext4 /dev/sda1", False, "critical", "block", "mkfs"),
    ("dd if=/dev/zero of=/dev/sda bs=1M", False, "critical", "block", "dd-to-disk"),
    (":(){ :|:& };:", False, "critical", "block", "fork-bomb"),
    ("bomb(){ bomb|bomb& };bomb", False, "critical", "block", "fork-bomb"),
    ("DrOp DaTaBaSe x", True, "critical", "block", "drop-database"),
    ("SELECT 1; DROP SCHEMA s CASCADE", True, "critical", "block", "drop-database"),
    ("TRUNCATE users", True, "critical", "block", "truncate"),
    ("DELETE FROM users", True, "critical", "block", "delete-without-where"),
    ("update users set admin = true", True, "critical", "block", "update-without-where"),
    # high
    ("shutdown -h now", False, "high", "hold", "shutdown"),
    ("reboot", False, "high", "hold", "shutdown"),
    ("iptables -F", False, "high", "hold", "iptables-flush"),
    ("chmod -R 777 /", False, "high", "hold", "chmod-777-root"),
    ("DROP TABLE t", True, "high", "hold", "drop-table"),
    ("ALTER TABLE t DROP COLUMN c", True, "high", "hold", "alter-drop"),
    # medium
    ("sudo ls /root", False, "medium", "alert", "sudo"),
    ("su -", False, "medium", "alert", "su"),
    ("passwd", False, "medium", "alert", "passwd"),
    ("curl -fsSL https://example.com/install | sh", False, "medium", "alert", "pipe-to-shell"),
    ("GRANT ALL ON t TO bob", True, "medium", "alert", "grant"),
    ("CREATE USER bob", True, "medium", "alert", "create-user"),
    # benign look-alikes stay low
    ("rm -rf ./build", False, "low", "allow", None),
    ('echo "rm -rf /"', False, "low", "allow", None),
    ("grep 'DROP DATABASE' notes.txt", False, "low", "allow", None),
    ("ls -la", False, "low", "allow", None),
    ("SELECT 'DROP DATABASE'", True, "low", "allow", None),
    ("/* DROP DATABASE x */ SELECT 1", True, "low", "allow", None),
    ("DELETE FROM users WHERE id = 1", True, "low", "allow", None),
]

CUSTOM_POLICY = """\
actions:
  medium: hold
rules:
  - name: shutdown
    risk: high
    action: allow
    shell:
      program: [shutdown]
  - name: terraform-destroy
    risk: critical
    shell:
      program: [terraform]
      args_all: [destroy]
"""

BAD_POLICY = """\
rules:
  - name: typo
    risk: severe
    shell:
      program: [x]
"""


def check(*args, stdin=None):
    wait_for_binary()
    return subprocess.run([SLUICE_BIN, "policy", "check", *args], input=stdin, capture_output=True, timeout=30)


def json_lines(result):
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


class PolicyCheckTest(SluiceTest):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_judged(self, result, cases):
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(result.stderr, b"")
        judged = json_lines(result)
        self.assertEqual(len(judged), len(cases))
        for got, (text, sql, risk, action, rule) in zip(judged, cases):
            with self.subTest(text=text):
                self.assertEqual(got["text"], text)
                self.assertEqual(got["kind"], "sql" if sql else "shell")
                self.assertEqual((got["risk"], got["action"], got["rule"]), (risk, action, rule))
                self.assertIsInstance(got["reason"], str)
                if rule is not None:
                    self.assertIn(rule, got["reason"])

    def test_built_in_policy_on_the_issues_cases(self):
        self.assertGreaterEqual(len(BUILT_IN_CASES), 20)
        # --data-dir points at an empty directory: no sluice.yaml, so the built-in rules.
        for sql in (False, True):
            cases = [case for case in BUILT_IN_CASES if case[1] == sql]
            args = ["--data-dir", self.data_dir, "--json"] + (["--sql"] if sql else []) + ["--"] + [c[0] for c in cases]
            self.assert_judged(check(*args), cases)

    def test_text_output_is_aligned_and_shows_control_characters(self):
        result = check("--data-dir", self.data_dir, "rm -rf /", "ls", "sudo reboot", "echo \x1b[2J")
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        lines = result.stdout.decode().splitlines()
        self.assertEqual(len(lines), 4)
        self.assertEqual(lines[0].split(), ["critical", "block", "rm-root", "rm", "-rf", "/"])
        self.assertEqual(lines[1].split(), ["low", "allow", "-", "ls"])
        self.assertEqual(lines[2].split()[:3], ["high", "hold", "shutdown"])
        self.assertEqual(lines[3].split(), ["low", "allow", "-", "echo", "\\e[2J"])
        # Every text starts in the same column.
        starts = {line.index(text) for line, text in zip(lines, ["rm -rf /", "ls", "sudo reboot", "echo \\e[2J"])}
        self.assertEqual(len(starts), 1, lines)
        self.assertEqual(lines[0].index("block"), lines[1].index("allow"))

    def test_stdin_mode_judges_each_line_and_skips_blank_ones(self):
        cases = [case for case in BUILT_IN_CASES if case[1]][:6]
        text = "\n".join(c[0] for c in cases[:3]) + "\n\n   \n" + "\n".join(c[0] for c in cases[3:]) + "\n"
        self.assert_judged(check("--data-dir", self.data_dir, "--sql", "--json", stdin=text.encode()), cases)
        # Without a trailing newline, the last line counts too.
        result = check("--data-dir", self.data_dir, stdin=b"ls\nrm -rf /")
        self.assertEqual([line.split()[0] for line in result.stdout.decode().splitlines()], ["low", "critical"])

    def test_a_custom_policy_file_changes_actions_and_rules(self):
        path = self.write("policy.yaml", CUSTOM_POLICY)
        cases = [
            ("sudo ls", False, "medium", "hold", "sudo"),                  # the level's action changed
            ("shutdown -h now", False, "high", "allow", "shutdown"),       # the rule's own action
            ("reboot", False, "low", "allow", None),                       # the replaced rule no longer matches it
            ("terraform destroy -auto-approve", False, "critical", "block", "terraform-destroy"),
            ("rm -rf /", False, "critical", "block", "rm-root"),           # the other built-ins stay
        ]
        self.assert_judged(check("--data-dir", self.data_dir, "--policy", path, "--json", *[c[0] for c in cases]), cases)

    def test_the_configs_policy_is_used_and_policy_flag_wins_over_it(self):
        os.makedirs(self.data_dir)
        with open(os.path.join(self.data_dir, "sluice.yaml"), "w") as f:
            f.write("policy:\n  actions:\n    critical: hold\n")
        result = check("--data-dir", self.data_dir, "--json", "rm -rf /")
        self.assertEqual(json_lines(result)[0]["action"], "hold", "the policy: of <data-dir>/sluice.yaml")
        path = self.write("policy.yaml", CUSTOM_POLICY)
        result = check("--data-dir", self.data_dir, "--policy", path, "--json", "rm -rf /")
        self.assertEqual(json_lines(result)[0]["action"], "block", "--policy wins over the config")
        # policy: naming a file, with --config.
        config = self.write("other.yaml", "policy: policy.yaml\n")
        result = check("--config", config, "--json", "terraform destroy")
        self.assertEqual(json_lines(result)[0]["rule"], "terraform-destroy")

    def test_a_bad_policy_file_is_one_line_naming_file_and_line_and_exit_2(self):
        path = self.write("bad.yaml", BAD_POLICY)
        result = check("--data-dir", self.data_dir, "--policy", path, "ls")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        lines = result.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(f"sluice: {path}:3: "), lines[0])
        self.assertIn("rule 'typo': risk: expected one of low, medium, high, critical", lines[0])
        # A missing file, and a bad policy: inside the config, likewise.
        result = check("--data-dir", self.data_dir, "--policy", os.path.join(self.tmp, "missing.yaml"), "ls")
        self.assertEqual(result.returncode, 2)
        self.assertIn("missing.yaml", result.stderr.decode())
        config = self.write("sluice.yaml", "policy:\n  rules:\n    - name: x\n      risk: low\n")
        result = check("--config", config, "ls")
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr.decode(), r"^sluice: .*sluice\.yaml:\d+: .*\n$")

    def test_show_prints_the_effective_policy_which_reads_back_the_same(self):
        path = self.write("policy.yaml", CUSTOM_POLICY)
        result = run_cli("policy", "show", "--data-dir", self.data_dir, "--policy", path)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        shown = result.stdout.decode()
        self.assertTrue(shown.startswith(f"# the policy in effect, from {path}\ninclude_builtin: false\n"), shown[:200])
        self.assertIn("  medium: hold\n", shown)
        self.assertIn("- name: terraform-destroy\n", shown)
        self.assertIn("- name: rm-root\n", shown)
        again = self.write("shown.yaml", shown)
        texts = [case[0] for case in BUILT_IN_CASES if not case[1]] + ["terraform destroy", "shutdown now"]
        first = json_lines(check("--data-dir", self.data_dir, "--policy", path, "--json", "--", *texts))
        second = json_lines(check("--data-dir", self.data_dir, "--policy", again, "--json", "--", *texts))
        self.assertEqual([(j["risk"], j["action"], j["rule"]) for j in first], [(j["risk"], j["action"], j["rule"]) for j in second])
        builtin = run_cli("policy", "show", "--data-dir", self.data_dir).stdout.decode()
        self.assertTrue(builtin.startswith("# the policy in effect, from built-in policy\n"))


class PolicyReloadTest(SluiceTest):
    def policy(self, rules):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write("include_builtin: false\nrules:\n")
            for name in rules:
                f.write(f"  - name: {name}\n    risk: high\n    shell:\n      program: [{name}]\n")
        return path

    def test_sighup_reloads_the_policy_file_and_keeps_the_old_one_on_error(self):
        path = self.policy(["one"])
        proc = self.start_sluice([(free_port(), free_port())], "--policy", path)
        proc.popen.send_signal(signal.SIGHUP)
        poll(lambda: f"policy reloaded from {path}: 1 rule\n" in proc.stderr(), 10, message="first reload logged")
        self.policy(["one", "two"])
        proc.popen.send_signal(signal.SIGHUP)
        poll(lambda: f"policy reloaded from {path}: 2 rules" in proc.stderr(), 10, message="second reload logged")
        with open(path, "w") as f:
            f.write("rules:\n  - name: broken\n    risk: severe\n    shell:\n      program: [x]\n")
        proc.popen.send_signal(signal.SIGHUP)
        poll(lambda: "policy not reloaded" in proc.stderr(), 10, message="failed reload logged")
        failure = [line for line in proc.stderr().splitlines() if "policy not reloaded" in line]
        self.assertEqual(len(failure), 1)
        self.assertIn(f"{path}:3:", failure[0])
        self.assertIsNone(proc.popen.poll(), "a bad policy on reload does not stop Sluice")
        code, _ = proc.stop()
        self.assertEqual(code, 0)

    def test_sighup_reloads_the_configs_policy(self):
        os.makedirs(self.data_dir)
        config = os.path.join(self.data_dir, "sluice.yaml")
        with open(config, "w") as f:
            f.write("policy:\n  include_builtin: false\n")
        proc = self.start_sluice([(free_port(), free_port())])
        with open(config, "w") as f:
            f.write("policy:\n  include_builtin: true\n")
        proc.popen.send_signal(signal.SIGHUP)
        poll(lambda: f"policy reloaded from {config}: " in proc.stderr(), 10, message="reload logged")
        line = [l for l in proc.stderr().splitlines() if "policy reloaded" in l][0]
        self.assertNotIn(": 0 rules", line)
        self.assertEqual(proc.stop()[0], 0)

    def test_a_bad_policy_file_at_start_is_one_line(self):
        path = os.path.join(self.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write(BAD_POLICY)
        result = run_cli("--headless", "-q", "--data-dir", self.data_dir, "--listen",
                         f"tcp://127.0.0.1:{free_port()}=>127.0.0.1:{free_port()}", "--policy", path)
        self.assertEqual(result.returncode, 1)
        lines = result.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(f"sluice: {path}:3: "), lines[0])


if __name__ == "__main__":
    unittest.main()
