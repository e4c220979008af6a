"""End-to-end tests of `sluice view` (a store read-only in the terminal UI) and of what a first session trips over:
a detail that opens at once, keys offered only where they work, `w` saving under the data directory, and marks
that outlive the session.

Each test records its flows through the live UI first (a TCP relay to an echo server), quits it, and then opens
the store again, read-only or live, in a private tmux server.

Run: python3 -m unittest tests/e2e/test_tui_view.py -v   (from the repository root)
"""

import json
import os
import sqlite3
import stat
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import run_cli  # noqa: E402
from tui_support import IO_TIMEOUT, TUITestCase, flows_json, poll  # noqa: E402

#: A keypress is answered within 50 ms (DESIGN.md); tmux's send-keys and capture-pane add their own.
KEYPRESS_BUDGET = 0.3


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}, expected {n} bytes")
        data += chunk
    return data


class ViewTests(TUITestCase):
    def record(self, *payloads):
        """Sends each payload on a connection of its own through the live UI (echoed back), closes it, and quits."""
        server = self.target(echo=True)
        tui = self.start_tui(server.port)
        for payload in payloads:
            client = self.client(tui.listen_port)
            client.sendall(payload)
            self.assertEqual(recv_exactly(client, len(payload)), payload)
            client.close()
            tui.wait_line(payload.decode(), "closed")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)

    def status_line(self, tui):
        return tui.screen().rstrip("\n").split("\n")[-1]

    def test_a_flow_detail_opens_within_a_keypress(self):
        self.record(b"hello view")
        tui = self.start_view()
        tui.wait_line("hello view", "closed")
        self.assertNotIn("#1 down", tui.screen())
        started = time.monotonic()
        tui.send("Enter")
        shown = poll(lambda: "<- #1 down" in tui.screen(), 5, interval=0.005)
        elapsed = time.monotonic() - started
        self.assertTrue(shown, f"the detail never showed; screen:\n{tui.dump()}")
        self.assertLess(elapsed, KEYPRESS_BUDGET, f"the detail took {elapsed * 1000:.0f} ms; screen:\n{tui.dump()}")
        self.assertIn("-> #0 up", tui.screen())
        self.assertNotIn("loading messages", tui.screen())

    def test_read_only_offers_only_what_works(self):
        self.record(b"read only")
        tui = self.start_view()
        tui.wait_line("read only", "closed")
        tabs = tui.screen().split("\n")[0]
        self.assertIn("1 Flows", tabs)
        self.assertNotIn("Intercept", tabs)
        self.assertNotIn("Conns", tabs)
        # The counts come from a query of their own, after the rows ("…/…" until then): wait for them to settle.
        expected = " 1/1 flows ↓follow  │  ? help  │  f filter  │  q quit"
        poll(lambda: self.status_line(tui) == expected, 5)
        self.assertEqual(self.status_line(tui), expected)

        tui.send("i")
        tui.wait_text("i: read-only: no engine in `sluice view`")
        self.assertNotIn("intercept:", self.status_line(tui), "no intercept prompt")

        tui.send("?")
        tui.wait_text("Keys (any screen unless a screen is named)")
        keys = tui.screen()
        self.assertIn("view filter", keys)
        self.assertNotIn("intercept filter", keys, "not among the keys offered")
        tui.send("G")
        screen = tui.wait_text("Not available (read-only: no engine in `sluice view`)", "intercept filter")
        self.assertNotIn("Hex editor", screen)

    def test_w_saves_under_the_data_directory_and_says_where(self):
        self.record(b"save me")
        tui = self.start_view(width=160)
        tui.wait_line("save me", "closed")
        exports = os.path.join(os.path.realpath(self.data_dir), "exports")
        tui.send("w")
        prompt = tui.wait_line("save as: ")
        self.assertIn(f"save as: {exports}/sluice-export-", prompt)
        tui.send("Enter")
        line = tui.wait_line("saved 1 flows to ")
        path = line.split("saved 1 flows to ", 1)[1].split(";", 1)[0]
        self.assertTrue(os.path.isabs(path), line)
        self.assertEqual(os.path.dirname(os.path.realpath(path)), exports)
        self.assertEqual(stat.S_IMODE(os.stat(exports).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            self.assertEqual(db.execute("SELECT count(*) FROM flows").fetchone()[0], 1)
        finally:
            db.close()
        self.assertFalse(os.path.exists(os.path.join(self.tmp, os.path.basename(path))))

    def test_marks_are_kept_in_the_store(self):
        self.record(b"first flow", b"second flow")
        # Mark the first flow in a live session.
        server = self.target(echo=True)
        tui = self.start_tui(server.port)
        tui.wait_line("second flow", "closed")
        tui.send("Up")
        tui.send("m")
        tui.wait_text("flow 1 marked")
        tui.wait_line("●1", "first flow")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)

        self.assertEqual([f["marked"] for f in flows_json(self.data_dir)], [True, False])
        result = run_cli("flows", "--data-dir", self.data_dir, "--json", "--filter", "~marked")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([json.loads(l)["id"] for l in result.stdout.decode().splitlines()], [1])

        # Read-only, the mark is there, and a new one lasts only for the session.
        view = self.start_view()
        view.wait_line("●1", "first flow")
        view.send("m")
        view.wait_text("flow 2 marked for this session only: `sluice view` is read-only")
        view.wait_line("●2", "second flow")
        view.send("q")
        self.assertEqual(view.wait_exit(), 0)
        self.assertEqual([f["marked"] for f in flows_json(self.data_dir)], [True, False])

        # Unmarked in the next live session, unmarked for good.
        tui = self.start_tui(server.port)
        tui.wait_line("●1", "first flow")
        tui.send("Up")
        tui.send("m")
        tui.wait_text("flow 1 unmarked")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)
        self.assertEqual([f["marked"] for f in flows_json(self.data_dir)], [False, False])


if __name__ == "__main__":
    unittest.main()
