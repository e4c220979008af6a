"""Full-text search of all history: the recorder's index (`<data-dir>/search.sqlite`, filled behind its writer),
`sluice search WORDS`, and the TUI's bare-word filter finding a word far past the first bytes a list row holds.

A headless recorder relays TCP connections to an echo server; each connection sends a long text whose distinctive
word sits well past the 256 bytes the flow list keeps of a flow.
"""

import json
import os
import sqlite3
import stat
import subprocess
import unittest

from support import HOST, SLUICE_BIN, SluiceTest, TCPServer, connect, echo_handler, free_port, poll, recv_exactly, run_cli
from tui_support import TUITestCase

FILLER = "lorem ipsum dolor sit amet " * 20  # 540 bytes: more than a list row keeps


class SearchTest(SluiceTest):
    def record(self, texts):
        """Each text through a headless recorder, echoed back; returns the recorder, still running."""
        listen, target = free_port(), free_port()
        proc = self.start_sluice([(listen, target)])
        self.server(echo_handler, target)
        for text in texts:
            with connect(listen) as sock:
                sock.sendall(text.encode())
                self.assertEqual(recv_exactly(sock, len(text)), text.encode())
        return proc

    def search(self, *words):
        result = run_cli("search", "--data-dir", self.data_dir, "--json", *words)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line)["id"] for line in result.stdout.splitlines() if line.strip()]

    def test_the_recorder_indexes_behind_its_writes_and_search_finds_every_word(self):
        proc = self.record([FILLER + "the Zanzibar ledger", FILLER + "a Password: hunter2", FILLER + "nothing to see"])
        index = os.path.join(self.data_dir, "search.sqlite")

        # The recorder's own indexer gets there without being asked.
        def indexed():
            if not os.path.exists(index):
                return False
            with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as db:
                return db.execute("SELECT count(*) FROM piece_flows").fetchone()[0] >= 6
        poll(indexed, 20, message="the recorder indexed its six messages")
        self.assertEqual(stat.S_IMODE(os.stat(index).st_mode), 0o600)

        flows = {flow["client"].split(":")[-1]: flow["id"] for flow in proc.flows()}
        ids = sorted(flows.values())
        self.assertEqual(self.search("zanzibar"), [ids[-3]], "a word past the first 256 bytes, case aside")
        self.assertEqual(self.search("passw", "hunter2"), [ids[-2]], "a word's start; every word")
        self.assertEqual(self.search("lorem"), sorted(ids[-3:], reverse=True), "newest first")
        self.assertEqual(self.search("zanzibar", "hunter2"), [])
        self.assertEqual(self.search('ledger" OR "see'), [], "what is typed is never FTS syntax")
        table = run_cli("search", "--data-dir", self.data_dir, "zanzibar")
        self.assertIn(b"ID  START (UTC)", table.stdout)
        nothing = run_cli("search", "--data-dir", self.data_dir, "--", "***")
        self.assertNotEqual(nothing.returncode, 0)
        self.assertIn(b"nothing to search for", nothing.stderr)
        proc.stop()

    def test_a_store_recorded_without_an_index_gets_one_from_search(self):
        proc = self.record([FILLER + "quetzal"])
        proc.stop()
        for name in ("search.sqlite", "search.sqlite-wal", "search.sqlite-shm"):
            path = os.path.join(self.data_dir, name)
            if os.path.exists(path):
                os.remove(path)
        self.assertEqual(len(self.search("quetzal")), 1)


class SearchInTheTUITest(TUITestCase):
    def test_a_bare_word_in_the_filter_finds_a_flow_by_text_the_list_never_held(self):
        # Recorded by a headless sluice, then opened with `sluice view`, which brings the index up to date.
        server_port, listen = free_port(), free_port()
        server = TCPServer(echo_handler, server_port)
        self.addCleanup(server.close)
        recorder = subprocess.Popen(
            [SLUICE_BIN, "--headless", "-q", "--data-dir", self.data_dir, "--listen", f"tcp://{HOST}:{listen}=>{HOST}:{server_port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: recorder.poll() is None and recorder.kill())
        def send(text):
            try:
                with connect(listen) as sock:
                    sock.sendall(text.encode())
                    return recv_exactly(sock, len(text)) == text.encode()
            except OSError:
                return False
        poll(lambda: send(FILLER + "first flow"), 20, message="the recorder relays")
        self.assertTrue(send(FILLER + "the okapi hides here"))
        self.assertTrue(send(FILLER + "third flow"))
        recorder.terminate()
        self.assertEqual(recorder.wait(timeout=20), 0)

        tui = self.start_view(width=150)
        tui.send("f")
        tui.type("okapi")
        tui.send("Enter")
        screen = tui.wait_text("filter: okapi  (1 of 3 flows)")
        self.assertIn("lorem ipsum", screen, "the row shows the flow's first bytes, which do not hold the word")


if __name__ == "__main__":
    unittest.main()
