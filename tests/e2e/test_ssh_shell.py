"""Interactive SSH sessions through Sluice with the real ssh client in a pty: lines captured as commands from the
keys and the echo, a critical line blocked at Enter (the target's log proves it never arrived), exec commands
judged before they are forwarded, and the session recorded as asciicast that asciinema plays."""

import json
import os
import pty
import select
import shutil
import signal
import sqlite3
import subprocess
import time
import unittest

from support import HOST, SLUICE_BIN, SluiceTest, poll
from ssh_support import USER, SSHTestCase, askpass, ssh_options


class Terminal:
    """The ssh client on a pty, as a person at a terminal would run it."""

    def __init__(self, port, env, columns=100, rows=30):
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe("ssh", ["ssh", "-tt"] + ssh_options(port) + [f"{USER}@{HOST}"], env)
        self.pid, self.fd = pid, fd
        import fcntl
        import struct
        import termios
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.output = b""

    def read_until(self, needle, timeout=15.0):
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen within {timeout}s; screen so far:\n{self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ssh ended before {needle!r}; output:\n{self.output[-2000:]!r}")
                self.output += chunk
        return self.output

    def mark(self):
        return len(self.output)

    def type(self, keys, pause=0.05):
        for key in keys if isinstance(keys, list) else [keys]:
            os.write(self.fd, key)
            time.sleep(pause)

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)

    def wait(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Keep draining so ssh never blocks on a full pty.
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    pass
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
        raise AssertionError("ssh did not exit")


def commands(data_dir):
    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'sluice.sqlite')}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute("SELECT * FROM commands ORDER BY flow_id, idx")]
    finally:
        db.close()


class SSHShellTest(SSHTestCase, SluiceTest):
    def test_interactive_session_lines_are_captured_and_a_critical_one_never_arrives(self):
        proc, port = self.start_ssh_sluice()
        term = Terminal(port, askpass(self.tmp))
        self.addCleanup(term.close)
        term.read_until(b"$ ")
        at = term.mark()
        term.type(b"echo hello\r")
        term.read_until(b"hello\r\n$ ", timeout=15)
        # A typo fixed with backspace: the shell runs what the screen shows.
        term.type([b"echo typo", b"\x7f\x7f\x7f\x7f", b"fixed\r"])
        term.read_until(b"fixed\r\n$ ")
        # History recall: Up brings back the last line.
        at = term.mark()
        term.type([b"\x1b[A", b"\r"])
        deadline = time.monotonic() + 15
        while term.output[at:].count(b"fixed") < 2 and time.monotonic() < deadline:
            term.read_until(b"$ ")
            time.sleep(0.1)
        # A critical command: blocked at Enter, erased at the server, a notice on the terminal.
        term.type(b"rm -rf /\r")
        term.read_until(b"[sluice] blocked")
        term.type(b"echo after\r")
        term.read_until(b"after\r\n")
        term.type(b"exit\r")
        self.assertEqual(term.wait(), 0)

        lines = [e["text"] for e in self.sshd.shell_events() if e["kind"] == "line"]
        self.assertIn("echo hello", lines)
        self.assertEqual(lines.count("echo fixed"), 2, lines)
        self.assertIn("echo after", lines)
        self.assertFalse(any("rm" in line for line in lines), f"the blocked line reached the target: {lines}")

        captured = poll(lambda: (lambda c: c if len(c) >= 5 else None)(commands(self.data_dir)), 15)
        texts = [c["text"] for c in captured]
        self.assertEqual(texts[:5], ["echo hello", "echo fixed", "echo fixed", "rm -rf /", "echo after"], captured)
        blocked = captured[3]
        self.assertEqual((blocked["kind"], blocked["risk"], blocked["action"], blocked["decision"]), ("shell", "critical", "block", "blocked"))
        self.assertEqual(blocked["rule"], "rm-root")
        self.assertEqual(blocked["user"], USER)
        self.assertEqual(captured[0]["risk"], "low")

        # The same through the command line, as an operator reads them.
        listed = subprocess.run(
            [SLUICE_BIN, "commands", "--json", "--data-dir", self.data_dir], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = [json.loads(line) for line in listed.stdout.decode().splitlines() if line.strip()]
        blocked_row = next(r for r in rows if r["text"] == "rm -rf /")
        self.assertEqual(
            (blocked_row["kind"], blocked_row["risk"], blocked_row["action"], blocked_row["rule"], blocked_row["decision"]),
            ("shell", "critical", "block", "rm-root", "blocked"),
        )
        self.assertEqual([r["text"] for r in rows if r["kind"] == "shell"][:2], ["echo hello", "echo fixed"])

        flow_id = captured[0]["flow_id"]
        cast = os.path.join(self.data_dir, "recordings", f"{flow_id}.cast")
        poll(lambda: os.path.exists(cast), 10)
        self.assertEqual(os.stat(cast).st_mode & 0o777, 0o600)
        with open(cast) as f:
            header = json.loads(f.readline())
            events = [json.loads(line) for line in f if line.strip()]
        self.assertEqual((header["version"], header["width"], header["height"]), (2, 100, 30))
        output = "".join(e[2] for e in events if e[1] == "o")
        self.assertIn("hello", output)
        self.assertIn("[sluice] blocked", output)
        if shutil.which("asciinema"):
            played = subprocess.run(["asciinema", "cat", cast], capture_output=True, timeout=30)
            self.assertEqual(played.returncode, 0, played.stderr)
            self.assertIn(b"hello", played.stdout)

    def test_keys_are_recorded_only_when_record_input_is_on(self):
        config = os.path.join(self.tmp, "sluice.yaml")
        for record_input in (False, True):
            with open(config, "w") as f:
                f.write(f"ssh:\n  record_input: {'true' if record_input else 'false'}\n")
            data_dir = os.path.join(self.tmp, f"data-{record_input}")
            proc, port = self.start_ssh_sluice("--config", config, data_dir=data_dir)
            term = Terminal(port, askpass(self.tmp))
            self.addCleanup(term.close)
            term.read_until(b"$ ")
            term.type(b"echo typed\r")
            term.read_until(b"typed\r\n$ ")
            term.type(b"exit\r")
            self.assertEqual(term.wait(), 0)
            proc.stop()
            [cast] = [os.path.join(data_dir, "recordings", name) for name in os.listdir(os.path.join(data_dir, "recordings"))]
            with open(cast) as f:
                f.readline()
                events = [json.loads(line) for line in f if line.strip()]
            typed = "".join(e[2] for e in events if e[1] == "i")
            if record_input:
                self.assertIn("echo typed", typed.replace("\r", ""))
            else:
                self.assertEqual(typed, "", "keys are not recorded by default (they may hold passwords)")
            self.assertIn("typed", "".join(e[2] for e in events if e[1] == "o"))

    def test_exec_is_judged_before_it_is_forwarded_and_a_blocked_one_exits_126(self):
        proc, port = self.start_ssh_sluice()
        result = self.ssh(port, f"{USER}@{HOST}", "uname -a")
        self.assertEqual(result.returncode, 0, result.stderr)
        result = self.ssh(port, f"{USER}@{HOST}", "sudo -u root rm -rf /")
        self.assertEqual(result.returncode, 126, result.stderr)
        self.assertIn(b"sluice: blocked", result.stderr)
        execs = [e["text"] for e in self.sshd.shell_events() if e["kind"] == "exec"]
        self.assertIn("uname -a", execs)
        self.assertNotIn("sudo -u root rm -rf /", execs)
        captured = poll(lambda: (lambda c: c if len(c) >= 2 and c[0]["exit_status"] is not None else None)(commands(self.data_dir)), 15)
        self.assertEqual(
            [(c["kind"], c["text"], c["risk"], c["decision"]) for c in captured],
            [("exec", "uname -a", "low", "allowed"), ("exec", "sudo -u root rm -rf /", "critical", "blocked")],
        )
        self.assertEqual(captured[0]["exit_status"], 0)


if __name__ == "__main__":
    unittest.main()

    def test_a_shell_without_a_terminal_has_each_line_judged(self):
        proc, port = self.start_ssh_sluice()
        script = b"echo one\nrm -rf /\necho two"  # the last line has no newline: judged at EOF
        result = self.ssh(port, f"{USER}@{HOST}", extra=("-T",), input=script)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"sluice: blocked", result.stderr)
        self.assertIn(b"one", result.stdout)
        self.assertIn(b"two", result.stdout)
        lines = [e["text"] for e in self.sshd.shell_events() if e["kind"] == "line"]
        self.assertEqual(lines[-2:], ["echo one", "echo two"])
        self.assertFalse(any("rm" in line for line in lines))
        captured = poll(lambda: (lambda c: c if len(c) >= 3 else None)(commands(self.data_dir)), 15)
        self.assertEqual([(c["text"], c["decision"]) for c in captured], [("echo one", "allowed"), ("rm -rf /", "blocked"), ("echo two", "allowed")])


class SSHHoldTest(SSHTestCase, SluiceTest):
    """A command the policy holds waits in the intercept queue; headless, nobody decides, so the hold times out to
    the default verdict (`--hold-default`)."""

    def policy_config(self):
        path = os.path.join(self.tmp, "sluice.yaml")
        with open(path, "w") as f:
            f.write(
                "policy:\n"
                "  rules:\n"
                "    - name: held-echo\n"
                "      risk: high\n"
                "      action: hold\n"
                "      shell: {program: [echo], args_any: [held-*]}\n"
            )
        return path

    def test_a_held_exec_runs_when_its_hold_times_out_to_forward(self):
        proc, port = self.start_ssh_sluice("--config", self.policy_config(), "--hold-timeout", "1")
        start = time.monotonic()
        result = self.ssh(port, f"{USER}@{HOST}", "echo held-one")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"held-one\n")
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        captured = poll(lambda: (lambda c: c if c and c[0]["decision"] != "pending" else None)(commands(self.data_dir)), 15)
        self.assertEqual((captured[0]["action"], captured[0]["decision"], captured[0]["decided_by"], captured[0]["rule"]), ("hold", "allowed", "timeout", "held-echo"))

    def test_a_held_exec_is_blocked_when_its_hold_times_out_to_drop(self):
        proc, port = self.start_ssh_sluice("--config", self.policy_config(), "--hold-timeout", "1", "--hold-default", "drop")
        result = self.ssh(port, f"{USER}@{HOST}", "echo held-two")
        self.assertEqual(result.returncode, 126, result.stderr)
        self.assertNotIn("echo held-two", [e["text"] for e in self.sshd.shell_events()])
        captured = poll(lambda: (lambda c: c if c and c[0]["decision"] != "pending" else None)(commands(self.data_dir)), 15)
        self.assertEqual((captured[0]["decision"], captured[0]["decided_by"]), ("blocked", "timeout"))

    def test_a_held_shell_line_waits_at_enter_then_runs(self):
        proc, port = self.start_ssh_sluice("--config", self.policy_config(), "--hold-timeout", "1")
        term = Terminal(port, askpass(self.tmp))
        self.addCleanup(term.close)
        term.read_until(b"$ ")
        start = time.monotonic()
        term.type(b"echo held-three\r")
        term.read_until(b"held-three\r\n$ ")
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        term.type(b"exit\r")
        self.assertEqual(term.wait(), 0)
        self.assertIn("echo held-three", [e["text"] for e in self.sshd.shell_events() if e["kind"] == "line"])
