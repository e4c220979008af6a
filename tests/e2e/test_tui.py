"""End-to-end tests of Sluice's terminal UI: the real binary in a real (tmux) terminal, real sockets.

Each test starts `sluice --listen …` (no --headless) in a private tmux server, drives it with keystrokes and
asserts on the captured screen, on what the target server received, and on the store after a clean quit.

Run: python3 -m unittest tests/e2e/test_tui.py -v   (from the repository root)
"""

import os
import re
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, free_port
from tui_support import IO_TIMEOUT, TUI, TUITestCase, flows_json, poll, stored_messages

TAB_BAR = " Sluice  1 Flows   2 Conns   3 Intercept   4 Cmds   5 Alerts   ? Help"


def recv_until_closed(sock, timeout=IO_TIMEOUT):
    """What the peer sends until it closes: returns (bytes, how) with how 'eof' or 'reset'; fails on timeout."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, "eof"
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return data, "reset"


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}, expected {n} bytes")
        data += chunk
    return data


def colour_codes(styled):
    """SGR colour parameters (foreground / background, not the defaults 39 / 49) in a `capture-pane -e` text."""
    colours = []
    for params in re.findall(r"\x1b\[([0-9;:]*)m", styled):
        for number in filter(None, re.split(r"[;:]", params)):
            n = int(number)
            if 30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 97 or 100 <= n <= 107:
                colours.append(params)
    return colours


class TUITests(TUITestCase):
    # 1
    def test_flow_shows_in_list_and_q_quits_cleanly(self):
        server = self.target(echo=True)
        tui = self.start_tui(server.port)
        screen = tui.wait_text("No flows yet. Connect through a listener and they appear here.")
        self.assertEqual(screen.split("\n")[0], TAB_BAR)

        client = self.client(tui.listen_port)
        client.sendall(b"hello through sluice")
        self.assertEqual(recv_exactly(client, 20), b"hello through sluice")
        line = tui.wait_line("hello through sluice")
        self.assertRegex(line, r"^1\s+\d\d:\d\d:\d\d tcp\s+127\.0\.0\.1:\d+ → 127\.0\.0\.1:%d\s" % server.port)
        self.assertTrue(line.rstrip().endswith("open"), f"flow line should end with state open: {line!r}")
        self.assertNotIn("No flows yet", tui.screen())

        # The flow ends: the same line turns closed, with its size (20 B each way).
        client.close()
        line = tui.wait_line("hello through sluice", "closed")
        self.assertIn("40 B", line)

        # Enter opens the flow's detail: both messages, as text; q comes back to the list.
        tui.send("Enter")
        screen = tui.wait_text("-> #0 up", "<- #1 down")
        self.assertRegex(screen, r"flow 1  tcp  127\.0\.0\.1:\d+ → 127\.0\.0\.1:%d  closed" % server.port)
        self.assertIn("up 20 B  down 20 B", screen)
        self.assertEqual(screen.count("\n  hello through sluice\n"), 2, screen)
        tui.send("q")
        tui.wait_text("CLIENT → SERVER")
        tui.wait_line("hello through sluice", "closed")

        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0, f"sluice exit status; screen:\n{tui.dump()}")
        # The terminal is sane: curses left the alternate screen, so the shell's own screen is back, with what
        # the wrapper printed after sluice right below what it printed before, and none of the UI in between.
        # (Scrollback included: tmux's "Pane is dead" line may scroll the first line off the screen.)
        after = tui.wait_text(TUI.AFTER + "0")
        self.assertNotIn("1 Flows", after)
        self.assertNotIn("hello through sluice", after)
        self.assertIn(TUI.BEFORE + "\n" + TUI.AFTER + "0\n", tui.history())
        self.assertEqual(tui.pane_format("#{alternate_on}"), "0", "still on the alternate screen")
        # What sluice wrote last undid what curses set up: the cursor shown again, keypad mode off, the alternate
        # screen left; after that only the wrapper's line.
        out = poll(lambda: (lambda b: b if (TUI.AFTER + "0").encode() in b else None)(tui.output()), 5)
        self.assertIsNotNone(out, "pane output was not recorded")
        self.assertIn(b"\x1b[?1049h", out, "the UI did not use the alternate screen")
        leave = out.rindex(b"\x1b[?1049l")
        self.assertGreater(leave, out.rindex(b"\x1b[?1049h"))
        self.assertGreater(out.rindex(b"\x1b[?25h"), out.rindex(b"\x1b[?25l"), "cursor left hidden")
        self.assertGreater(out.rindex(b"\x1b>"), out.rindex(b"\x1b="), "keypad (application) mode left on")
        after_leave = re.sub(rb"\x1b(\[[0-9;?]*[A-Za-z]|[=>])", b"", out[leave:])
        self.assertEqual(after_leave.strip(), (TUI.AFTER + "0").encode(), f"written after leaving the UI: {out[leave:]!r}")

    # 2
    def test_intercept_hold_edit_in_hex_editor_forwards_edited_bytes_and_stores_both(self):
        server = self.target(echo=True)
        tui = self.start_tui(server.port)

        tui.send("i")
        tui.wait_line("intercept: ")
        tui.type("~bq secret")
        tui.wait_line("intercept: ~bq secret")
        tui.send("Enter")
        screen = tui.wait_text("intercepting: ~bq secret")
        self.assertIn("i:~bq secret", screen.split("\n")[0], "the tab bar shows the intercept filter")

        client = self.client(tui.listen_port)
        client.sendall(b"my secret")
        line = tui.wait_line("my secret", "HELD")
        self.assertRegex(line, r"^1\s")
        self.assertIn("3 Intercept(1)", tui.screen().split("\n")[0])
        # Held means held: the target has nothing, for a while.
        server.assert_nothing_more(b"", 1.0)

        tui.send("3")
        tui.wait_text("HOLD  FLOW    DIR    SIZE    AGE   LEFT  PREVIEW")
        row = tui.wait_line("my secret", " up ")
        self.assertRegex(row, r"^1\s+1\s+up\s+9 B\s+\d+s\s+\d+s\s+my secret$")

        # Esc leaves the editor; the message stays held.
        tui.send("e")
        tui.wait_text("edit hold 1, flow 1 up message")
        tui.send("Escape")
        tui.wait_text("edit abandoned; the message is still held")
        tui.wait_line("my secret", " up ")
        self.assertIn("3 Intercept(1)", tui.screen().split("\n")[0])
        server.assert_nothing_more(b"", 0.3)

        tui.send("e")
        screen = tui.wait_text("edit hold 1, flow 1 up message", "6d 79 20 73 65 63 72 65")
        self.assertIn("[OVERWRITE]", screen)
        self.assertIn("my secret", screen)
        # Arrows move the cursor (there and back again: the digits below land on byte 0).
        tui.send("Right", "Right", "Right", "Left", "Left", "Left")
        tui.type("4d59")
        screen = tui.wait_text("4d 59 20 73", "(modified)")
        self.assertIn("MY secret", screen, "the ASCII column follows the edit")
        self.assertEqual(server.received(), b"", "nothing leaves while editing")

        tui.send("Enter")
        server.wait_received(b"MY secret")
        self.assertEqual(recv_exactly(client, 9), b"MY secret", "the client gets the edited bytes echoed back")
        screen = tui.wait_text("forwarded 9 edited bytes")
        tui.wait_text("Nothing held.")
        self.assertNotIn("Intercept(", tui.screen().split("\n")[0])

        client.close()
        tui.send("q")  # back to the flow list
        tui.wait_line("my secret", "closed")
        tui.send("q")  # quit
        self.assertEqual(tui.wait_exit(), 0)

        flows = flows_json(self.data_dir)
        self.assertEqual(len(flows), 1, flows)
        messages = stored_messages(self.data_dir, flows[0]["id"])
        originals = [m for m in messages if m[2] == b"my secret"]
        edits = [m for m in messages if m[2] == b"MY secret" and m[3] is not None]
        self.assertEqual(len(originals), 1, messages)
        self.assertEqual(originals[0][4], "edited", f"original's disposition; messages: {messages}")
        self.assertEqual(len(edits), 1, messages)
        self.assertEqual(edits[0][3], originals[0][0], "the edit points at the original's seq")
        self.assertGreater(edits[0][0], originals[0][0])
        self.assertEqual(edits[0][1], originals[0][1], "same direction")

    # 3
    def test_drop_keeps_connection_and_kill_closes_it(self):
        server = self.target(echo=True)
        tui = self.start_tui(server.port)
        tui.send("i")
        tui.type("~bq secret")
        tui.send("Enter")
        tui.wait_text("intercepting: ~bq secret")

        client = self.client(tui.listen_port)
        client.sendall(b"drop this secret")
        tui.wait_line("drop this secret", "HELD")
        tui.send("3")
        tui.wait_line("drop this secret", " up ")
        tui.send("d")
        tui.wait_text("of flow 1 dropped")
        tui.wait_text("Nothing held.")
        server.assert_nothing_more(b"", 0.5)

        # The connection is still up: a chunk the filter does not match goes through, and only it.
        client.sendall(b"plain hello")
        server.wait_received(b"plain hello")
        self.assertEqual(recv_exactly(client, 11), b"plain hello")

        client.sendall(b"kill this secret")
        tui.wait_line("kill this secret", " up ")
        self.assertIn("3 Intercept(1)", tui.screen().split("\n")[0])
        tui.send("x")
        tui.wait_text("flow 1 killed")
        data, how = recv_until_closed(client)
        self.assertEqual(data, b"", "nothing reaches the client after kill")
        self.assertIn(how, ("eof", "reset"))
        self.assertEqual(server.received(), b"plain hello", "neither the dropped nor the killed chunk reached the target")

        # The flow list shows the flow ended in error, killed.
        tui.send("1")
        line = tui.wait_row(r"^1\s.*killed")
        self.assertTrue(line.rstrip().endswith("error"), f"state column: {line!r}")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)

        flows = flows_json(self.data_dir)
        self.assertEqual(len(flows), 1, flows)
        self.assertEqual(flows[0]["state"], "error", flows[0])
        self.assertIn("killed", flows[0].get("error") or "", flows[0])
        dispositions = {m[2]: m[4] for m in stored_messages(self.data_dir, flows[0]["id"])}
        self.assertEqual(dispositions.get(b"drop this secret"), "dropped", dispositions)
        self.assertEqual(dispositions.get(b"kill this secret"), "killed", dispositions)

    # 4
    def test_80x24_flow_list_help_and_back(self):
        server = self.target(echo=True)
        tui = self.start_tui(server.port, width=80, height=24)
        self.assertEqual(tui.screen().split("\n")[0], TAB_BAR)
        client = self.client(tui.listen_port)
        client.sendall(b"hi80 small screen")
        self.assertEqual(recv_exactly(client, 17), b"hi80 small screen")
        # At 80 columns the summary column is narrow; its start still shows.
        line = tui.wait_line("hi80")
        self.assertRegex(line, r"^1\s+\d\d:\d\d:\d\d tcp\s+127\.0\.0\.1:")
        self.assertTrue(line.rstrip().endswith("open"), line)
        self.assertLessEqual(max(len(l) for l in tui.lines()), 80)

        tui.send("?")
        screen = tui.wait_text("Keys (any screen unless a screen is named)", "help: this screen")
        self.assertIn("Help", screen.split("\n")[0])
        # The help is longer than 24 rows: the hex editor's keys are further down. (G, not End: tmux sends End
        # as ESC [ 4 ~, which TERM=xterm-256color's terminfo does not list, so curses would not see an End key.)
        tui.send("G")
        tui.wait_text("Hex editor", "forward the edited bytes", "Filter language")

        tui.send("q")
        screen = tui.wait_text("CLIENT → SERVER", "hi80")
        self.assertNotIn("Hex editor", screen)
        self.assertNotIn("Keys (any screen", screen)

        tui.send("q")  # quit, with the client's connection still open
        self.assertEqual(tui.wait_exit(), 0)

    # 5
    def check_term(self, term):
        server = self.target(echo=True)
        tui = self.start_tui(server.port, term=term)
        client = self.client(tui.listen_port)
        payload = b"hi " + term.encode()  # short enough for the summary column at 100 columns
        client.sendall(payload)
        self.assertEqual(recv_exactly(client, len(payload)), payload)
        line = tui.wait_line(payload.decode())
        self.assertRegex(line, r"^1\s+\d\d:\d\d:\d\d tcp\s+127\.0\.0\.1:\d+ → 127\.0\.0\.1:%d\s" % server.port)
        self.assertTrue(line.rstrip().endswith("open"), line)
        lines = tui.lines()
        self.assertEqual(lines[0], TAB_BAR)
        self.assertRegex(lines[1], r"^ID\s+TIME\s+KIND\s+CLIENT → SERVER\s+SUMMARY\s+SIZE\s+DUR STATE$")
        # Another screen and back, to be sure keys work under this terminal type too.
        tui.send("2")
        tui.wait_line("tcp", f"127.0.0.1:{server.port}", "B")
        tui.wait_text("FLOW    KIND  CLIENT → SERVER")
        tui.send("q")
        tui.wait_line(payload.decode())
        return tui

    def test_colon_listen_adds_a_listener_and_stop_removes_it(self):
        server = self.target(echo=True)
        tui = self.start_tui(server.port)
        tui.send("2")
        tui.wait_line("listeners: #1 tcp://")
        port = free_port()
        tui.send(":")
        tui.type(f"listen tcp://{HOST}:{port}=>{HOST}:{server.port}")
        tui.send("Enter")
        tui.wait_text(f"listener #2: tcp://{HOST}:{port}=>{HOST}:{server.port} on {HOST}:{port}")
        tui.wait_line("listeners: #1 tcp://", f"#2 tcp://{HOST}:{port}")

        client = self.client(port)
        client.sendall(b"through the added listener")
        self.assertEqual(recv_exactly(client, 26), b"through the added listener")
        tui.send("1")
        tui.wait_line("through the added", "open")

        # A port in use is the prompt's error, and the prompt stays open to fix it.
        tui.send(":")
        tui.type(f"listen tcp://{HOST}:{port}=>{HOST}:{server.port}")
        tui.send("Enter")
        tui.wait_text("cannot listen on", "address already")
        tui.send("Escape")

        tui.send(":")
        tui.type("stop 2")
        tui.send("Enter")
        tui.wait_text("stopped listener #2")
        with self.assertRaises(OSError):
            socket.create_connection((HOST, port), timeout=2).close()
        # The connection it accepted goes on.
        client.sendall(b"still open")
        self.assertEqual(recv_exactly(client, 10), b"still open")
        tui.send("2")
        tui.wait_for(lambda s: "listeners: #1 tcp://" in s and "#2 tcp://" not in s, "listener #2 gone from the line")
        client.close()

    def test_a_terminal_that_goes_away_ends_sluice_at_once(self):
        # The SIGHUP of a closing terminal can come while /dev/tty still opens; the loop must not spin on a dead
        # terminal afterwards (it once did, at 80 % of a core, until killed).
        server = self.target(echo=True)
        tui = self.start_tui(server.port)
        def command_name(pid):
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        sluice = [int(pid) for pid in subprocess.run(["pgrep", "-f", self.data_dir], capture_output=True, text=True).stdout.split()
                  if command_name(pid) == "sluice"]
        self.assertEqual(len(sluice), 1, sluice)
        tui._tmux("kill-server")

        def gone():
            try:
                with open(f"/proc/{sluice[0]}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                return True if state == "Z" else None
            except OSError:
                return True
        self.assertTrue(poll(gone, 5), "sluice still running after its terminal went away")

    def test_term_screen_256color(self):
        tui = self.check_term("screen-256color")
        self.assertNotEqual(colour_codes(tui.styled_screen()), [], "a 256-colour terminal gets the colour theme")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)
        tui.wait_text(TUI.AFTER + "0")
        self.assertEqual(tui.pane_format("#{alternate_on}"), "0")
        self.assertIn(TUI.BEFORE + "\n" + TUI.AFTER + "0\n", tui.history())

    def test_term_vt100_mono(self):
        tui = self.check_term("vt100")
        # Mono: no colours at all in what the terminal was sent (attributes such as reverse are fine).
        colours = colour_codes(tui.styled_screen())
        self.assertEqual(colours, [], "vt100 has no colours; the UI should draw in mono")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)
        tui.wait_text(TUI.AFTER + "0")


if __name__ == "__main__":
    unittest.main()
