"""The TUI's recording player, on a session recorded for real.

The real ssh client, in a pty, runs an interactive session through a headless Sluice to the test sshd (whose login
shell is the recording stand-in, fixtures/sluice_test_shell.py): `echo hello`, `echo second`, `exit`. Then
`sluice view --data-dir` opens that store in tmux; in the Commands view (4) Enter on `echo hello` opens the Player
at that command's moment: the terminal shows the line typed, not yet its output. `]` goes on to the next command,
by then `hello` has been printed.
"""

import os
import signal
import sqlite3
import unittest

from ssh_support import SSHTestCase, askpass
from test_ssh_shell import Terminal
from tui_support import TUITestCase, poll


def shell_commands(data_dir):
    path = os.path.join(data_dir, "sluice.sqlite")
    if not os.path.exists(path):
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return [row[0] for row in db.execute("SELECT text FROM commands WHERE kind = 'shell' ORDER BY id")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


class TUIPlayerTest(SSHTestCase, TUITestCase):
    def record_session(self):
        proc, port = self.start_ssh_sluice()
        term = Terminal(port, askpass(self.tmp), columns=60, rows=10)
        self.addCleanup(term.close)
        term.read_until(b"$ ")
        term.type(b"echo hello\r")
        term.read_until(b"hello\r\n$ ")
        term.type(b"echo second\r")
        term.read_until(b"second\r\n$ ")
        term.type(b"exit\r")
        self.assertEqual(term.wait(), 0)
        texts = poll(lambda: (lambda t: t if len(t) >= 3 else None)(shell_commands(self.data_dir)), 15)
        self.assertEqual(texts, ["echo hello", "echo second", "exit"])
        # SIGTERM: the recorder flushes, the store closes; then the view reads a finished store.
        proc.stop(signal.SIGTERM)

    def pane(self, tui):
        """The player's terminal rows: the lines between the size rule and the keys rule."""
        lines = tui.lines()
        top = next(i for i, line in enumerate(lines) if line.startswith("─ 60×10 "))
        bottom = next(i for i, line in enumerate(lines) if "space play/pause" in line)
        return lines[top + 1:bottom]

    def test_enter_on_a_command_plays_the_recording_from_its_moment(self):
        self.record_session()
        tui = self.start_view(width=120, height=36)
        tui.send("4")
        tui.wait_line("echo hello", "low")
        tui.send("g")  # the first command
        tui.send("Enter")
        tui.wait_text("command 1/3 at", "echo hello")
        pane = self.pane(tui)
        self.assertIn("$ echo hello", pane, tui.screen())
        self.assertNotIn("hello", pane, "at Enter the command is typed, its output not yet there")
        commands = [line for line in tui.lines() if "$ echo hello" in line and "#0" in line]
        self.assertTrue(commands, "the flow's commands are listed below the player")

        tui.send("]")
        tui.wait_text("command 2/3 at")
        pane = self.pane(tui)
        self.assertIn("hello", pane, tui.screen())
        self.assertIn("$ echo second", pane)

        tui.send("G")  # the end (End too, where the terminal's keys match its TERM)
        tui.wait_text("command 3/3 at")
        self.assertIn("second", self.pane(tui))

        # The start, then play: the position moves by itself.
        tui.send("g")
        tui.wait_text("paused  0.0 s")
        tui.send("Space")
        tui.wait_text("▶ playing")
        tui.wait_for(lambda screen: "command 1/3" in screen or "paused" in screen, "playing reaches a command")

        # p: the plain detail; q: back to the Commands view.
        tui.send("p")
        tui.wait_text("p plays this one")
        tui.send("q")
        tui.wait_line("echo second", "low")


if __name__ == "__main__":
    unittest.main()
