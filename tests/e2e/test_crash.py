"""kill -9 under load: the store stays sound, the flows that were open are `interrupted` at the next start with the
totals their messages hold, and what is lost is at most the writer's last batch (its age is measured)."""

import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, SluiceTest, echo_handler, free_port  # noqa: E402

STREAMS = 8


class CrashTest(SluiceTest):
    def test_kill_9_under_load_loses_at_most_the_last_batch(self):
        listen, target = free_port(), free_port()
        proc = self.start_sluice([(listen, target)])
        self.server(echo_handler, port=target)
        stop = threading.Event()
        sent = [0] * STREAMS

        def stream(index):
            # Chunks of 4 KiB every 2 ms, read back as they come, until the proxy dies.
            with socket.create_connection((HOST, listen), timeout=10) as sock:
                chunk = bytes([index]) * 4096
                while not stop.is_set():
                    try:
                        sock.sendall(chunk)
                        sent[index] += len(chunk)
                        sock.recv(65536)
                    except OSError:
                        return
                    time.sleep(0.002)

        threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(STREAMS)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.popen.wait(10)
        stop.set()
        for thread in threads:
            thread.join(10)

        database = os.path.join(self.data_dir, "sluice.sqlite")
        db = sqlite3.connect(database)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            last = db.execute("SELECT MAX(at) FROM messages").fetchone()[0]
            open_flows = db.execute("SELECT COUNT(*) FROM flows WHERE state = 'open'").fetchone()[0]
        finally:
            db.close()
        loss_window = killed_at - last
        print(f"\nkill -9 with {STREAMS} streams recording: the newest stored message was {loss_window * 1000:.0f} ms "
              f"older than the kill", file=sys.stderr)
        self.assertLess(loss_window, 0.5, "at most about one batch (50-100 ms) is lost")
        self.assertEqual(open_flows, STREAMS, "the streams' flows were open when the process died")

        # The next start marks them interrupted, with the totals their messages hold.
        proc2 = self.start_sluice([(free_port(), free_port())])
        proc2.stop()
        db = sqlite3.connect(database)
        try:
            rows = db.execute(
                "SELECT id, state, bytes_up, bytes_down, "
                "(SELECT COALESCE(SUM(size), 0) FROM messages m WHERE m.flow_id = f.id AND direction = 'up') "
                "FROM flows f WHERE bytes_up > 0 OR state = 'interrupted'"
            ).fetchall()
        finally:
            db.close()
        interrupted = [r for r in rows if r[1] == "interrupted"]
        self.assertEqual(len(interrupted), STREAMS, rows)
        for _, _, bytes_up, bytes_down, stored_up in interrupted:
            self.assertEqual(bytes_up, stored_up)
            self.assertGreater(bytes_up, 100_000, "a flow that carried data is not listed with 0 bytes")
            self.assertGreater(bytes_down, 0)


if __name__ == "__main__":
    unittest.main()
