"""Commands held by the risk policy, decided in the TUI's Intercept queue (3), with the real OpenSSH client and server.

Sluice runs its terminal UI in tmux with an `ssh://` listener in front of the test sshd, whose login shell is the
recording stand-in (fixtures/sluice_test_shell.py): its log proves what reached the target. The policy (`policy:` in
a sluice.yaml passed with `--config`) holds `echo held-*` exec commands (a custom rule, risk high, action hold), so
`ssh host 'echo held-one'` waits in the queue: `a` runs it, `d` blocks it (the client sees exit status 126 and the
target never sees the command).

An exec request is the simplest hold point: it is judged before it is forwarded.
"""

import os
import signal
import sqlite3
import subprocess
import time
import unittest

from ssh_support import USER, SSHTestCase, askpass, ssh_options
from support import HOST, free_port
from tui_support import IO_TIMEOUT, TUI, TUITestCase, poll

POLICY = """\
policy:
  rules:
    - name: held-echo
      risk: high
      action: hold
      shell:
        program: [echo]
        args_any: ["held-*"]
"""


def stored_commands(data_dir):
    """(text, decision, decided_by) of every stored command, in order; [] when the store or its table is missing."""
    path = os.path.join(data_dir, "sluice.sqlite")
    if not os.path.exists(path):
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT text, decision, decided_by FROM commands ORDER BY id").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []


class TUIHeldCommandTest(SSHTestCase, TUITestCase):
    def start_ssh_tui(self):
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(self.data_dir, "known_hosts"), "w") as f:
            f.write(self.sshd.known_hosts_line())
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write(POLICY)
        port = free_port()
        listen = f"ssh://{HOST}:{port}=>{HOST}:{self.sshd.port}"
        tui = TUI(
            self.data_dir, port, self.sshd.port, listen=listen, width=140, height=30,
            args=["--data-dir", self.data_dir, "--config", config, "--listen", listen],
        )
        self.addCleanup(tui.close)
        tui.wait_ready()
        return tui, port

    def start_exec(self, port, command):
        """`ssh host COMMAND` in the background; returns the Popen (stdout and stderr piped)."""
        args = ["ssh"] + ssh_options(port) + [f"{USER}@{HOST}", command]
        client = subprocess.Popen(
            args, env=askpass(self.tmp), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.addCleanup(lambda: client.poll() is None and client.kill())
        return client

    def execs(self):
        return [event["text"] for event in self.sshd.shell_events() if event["kind"] == "exec"]

    def test_a_held_command_runs_with_a_and_another_is_blocked_with_d(self):
        tui, port = self.start_ssh_tui()
        tui.send("3")
        tui.wait_text("Nothing held.")

        # Held: shown as a command, with its risk, its rule and who runs it where; the target has not seen it.
        first = self.start_exec(port, "echo held-one")
        line = tui.wait_line("echo held-one", timeout=IO_TIMEOUT + 20)
        for part in ("cmd", "high", "[held-echo]", USER):
            self.assertIn(part, line)
        time.sleep(0.5)
        self.assertIsNone(first.poll(), "the client waits while the command is held")
        self.assertNotIn("echo held-one", self.execs(), "a held command has not reached the target")

        tui.send("a")
        out, err = first.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(out, b"held-one\n")
        self.assertIn("echo held-one", self.execs())
        tui.wait_text("Nothing held.")

        # Blocked: the client gets exit status 126 and a message; the target never sees the command.
        second = self.start_exec(port, "echo held-two")
        tui.wait_line("echo held-two", "[held-echo]", timeout=IO_TIMEOUT + 20)
        tui.send("d")
        out, err = second.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(second.returncode, 126, (out, err))
        self.assertTrue(err.strip(), "a blocked exec says why on stderr")
        time.sleep(0.5)
        self.assertNotIn("echo held-two", self.execs())

        # Blocked with the operator's own words: the user reads them.
        third = self.start_exec(port, "echo held-three")
        tui.wait_line("echo held-three", "[held-echo]", timeout=IO_TIMEOUT + 20)
        tui.send("D")
        tui.wait_line("block, saying")
        tui.type("ask in #ops first")
        tui.send("Enter")
        out, err = third.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(third.returncode, 126, (out, err))
        self.assertIn(b"ask in #ops first", err)
        self.assertNotIn("echo held-three", self.execs())

        # The Commands view shows them all, with what the operator decided.
        tui.send("4")
        tui.wait_line("echo held-one", "hold→allowed by operator")
        tui.wait_line("echo held-two", "hold→blocked by operator")
        tui.wait_line("echo held-three", "hold→blocked by operator")
        # The store writes in batches: wait until the last decision is in too.
        stored = poll(lambda: (lambda rows: rows if len(rows) >= 3 and all(row[1] != "pending" for row in rows) else None)(
            [row for row in stored_commands(self.data_dir) if row[0].startswith("echo held-")]), 10)
        self.assertEqual(
            stored,
            [("echo held-one", "allowed", "operator"), ("echo held-two", "blocked", "operator"),
             ("echo held-three", "blocked", "operator")],
            stored,
        )

    def test_sighup_reloads_the_policy_without_quitting_and_so_does_r(self):
        tui, port = self.start_ssh_tui()
        def command_name(pid):
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()

        sluice = [
            int(pid) for pid in subprocess.run(["pgrep", "-f", self.data_dir], capture_output=True, text=True).stdout.split()
            if command_name(pid) == "sluice"
        ]
        self.assertEqual(len(sluice), 1, sluice)
        os.kill(sluice[0], signal.SIGHUP)  # an operator's `kill -HUP`: the terminal is still there
        time.sleep(1)
        tui.send("4")
        tui.wait_text("0/0 commands")
        tui.send("R")
        tui.wait_text("policy reloaded from")
        # Still serving: a held command still waits for the operator.
        client = self.start_exec(port, "echo held-three")
        tui.send("3")
        tui.wait_line("echo held-three", timeout=IO_TIMEOUT + 20)
        tui.send("a")
        out, err = client.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(out, b"held-three\n", err)


if __name__ == "__main__":
    unittest.main()
