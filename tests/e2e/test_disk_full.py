"""A full disk, on a real small filesystem (a tmpfs with a size limit, mounted by the test; the suite runs as root).

Sluice says so in one line, keeps what it had, never writes a row or a JSON line twice or torn, and recovers by
itself when space returns. `store.on_full: stop` (the default) refuses new connections meanwhile; `relay` relays
without recording. A SIGTERM while the disk is still full exits at once and says what could not be written."""

import glob
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, SluiceTest, echo_handler, free_port, poll  # noqa: E402


def can_mount():
    return os.geteuid() == 0 and subprocess.run(["which", "mount"], capture_output=True).returncode == 0


@unittest.skipUnless(can_mount(), "needs root to mount a small tmpfs (CI runs as root)")
class DiskFullTest(SluiceTest):
    def setUp(self):
        super().setUp()
        self.mount = os.path.join(self.tmp, "small")
        os.makedirs(self.mount)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", self.mount], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.mount])
        self.data_dir = os.path.join(self.mount, "data")
        self.filler = os.path.join(self.mount, "filler")

    def fill_disk(self):
        """Writes a file until the filesystem has no room left."""
        with open(self.filler, "wb", buffering=0) as f:
            block = b"\0" * 65536
            try:
                while True:
                    f.write(block)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"\0")
            except OSError:
                pass

    def free_disk(self):
        os.remove(self.filler)

    def relay(self, listen, size, chunk=16384):
        """Sends `size` bytes through the echo relay on one connection and reads them back; returns the count."""
        with socket.create_connection((HOST, listen), timeout=20) as sock:
            sent = received = 0
            payload = os.urandom(chunk)
            while sent < size:
                sock.sendall(payload)
                sent += len(payload)
                while received < sent - 4 * chunk:
                    data = sock.recv(65536)
                    if not data:
                        return received
                    received += len(data)
            sock.shutdown(socket.SHUT_WR)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                received += len(data)
            return received

    def refused(self, listen):
        """Whether a new connection is closed without being relayed."""
        with socket.create_connection((HOST, listen), timeout=10) as sock:
            try:
                sock.sendall(b"hello")
                return sock.recv(10) == b""
            except ConnectionResetError:
                return True

    def check_store_is_sound(self):
        """Every JSON line parses, no (flow, seq) line twice, SQLite's integrity check passes."""
        seen = set()
        for path in glob.glob(os.path.join(self.data_dir, "logs", "*", "*.jsonl")):
            with open(path, "rb") as f:
                for number, line in enumerate(f, 1):
                    try:
                        record = json.loads(line)
                    except ValueError:
                        self.fail(f"{path}:{number} is not JSON: {line[:120]!r}")
                    if os.path.basename(path) == "messages.jsonl" and record.get("event") == "message":
                        key = (record["flow"], record["seq"])
                        self.assertNotIn(key, seen, f"message line {key} written twice")
                        seen.add(key)
        db = sqlite3.connect(os.path.join(self.data_dir, "sluice.sqlite"))
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            duplicates = db.execute("SELECT flow_id, COUNT(*) FROM errors GROUP BY flow_id, phase, message HAVING COUNT(*) > 1").fetchall()
            self.assertEqual(duplicates, [], "error rows written twice")
            return db.execute("SELECT message FROM alerts WHERE rule = 'store.on_full'").fetchall()
        finally:
            db.close()

    def start(self, *extra):
        listen, target = free_port(), free_port()
        proc = self.start_sluice([(listen, target)], *extra, quiet=False)
        self.server(echo_handler, port=target)
        self.assertEqual(self.relay(listen, 16384), 16384)
        return proc, listen

    def test_stop_refuses_new_connections_until_space_returns(self):
        proc, listen = self.start()
        self.fill_disk()
        self.assertEqual(self.relay(listen, 256 * 1024), 256 * 1024, "an open connection is not cut")
        poll(lambda: "recording stopped" in proc.stderr(), 15, message="no 'recording stopped' line")
        self.assertEqual(proc.stderr().count("recording stopped"), 1, "said once")
        self.assertTrue(self.refused(listen), "a new connection is refused while the store cannot write")
        poll(lambda: "refusing connections" in proc.stderr(), 5, message="no 'refusing connections' line")

        self.free_disk()
        poll(lambda: "writing again" in proc.stderr(), 15, message="recording did not resume by itself")
        self.assertEqual(self.relay(listen, 32768), 32768, "new connections are served again")
        code, seconds = proc.stop()
        self.assertEqual(code, 0)
        self.assertLess(seconds, 3)
        alerts = self.check_store_is_sound()
        self.assertEqual(len(alerts), 1, alerts)
        self.assertIn("new connections were refused", alerts[0][0])
        # Everything the connection that was open carried is recorded, once.
        flows = [f for f in proc.flows() if f["bytes_up"] == 256 * 1024]
        self.assertEqual(len(flows), 1, proc.flows())
        db = sqlite3.connect(os.path.join(self.data_dir, "sluice.sqlite"))
        stored = db.execute("SELECT SUM(size) FROM messages WHERE flow_id = ? AND direction = 'up'", (flows[0]["id"],)).fetchone()[0]
        db.close()
        self.assertEqual(stored, 256 * 1024)

    def test_relay_goes_on_without_recording_and_recording_resumes(self):
        proc, listen = self.start("--store-on-full", "relay")
        self.fill_disk()
        # More than the writer's 16 MiB backlog: with stop this would stall; with relay it flows.
        self.assertEqual(self.relay(listen, 24 << 20, chunk=65536), 24 << 20)
        poll(lambda: "relaying without recording" in proc.stderr(), 15, message="no 'relaying without recording' line")
        self.assertEqual(self.relay(listen, 16384), 16384, "new connections are relayed too")

        self.free_disk()
        poll(lambda: "writing again" in proc.stderr(), 15, message="recording did not resume by itself")
        before = len(proc.flows())
        self.assertEqual(self.relay(listen, 20000, chunk=20000), 20000)
        poll(lambda: any(f["bytes_up"] == 20000 and f["state"] == "closed" for f in proc.flows()), 10,
             message="a flow after recovery is recorded")
        code, seconds = proc.stop()
        self.assertEqual(code, 0)
        self.assertLess(seconds, 3)
        alerts = self.check_store_is_sound()
        self.assertEqual(len(alerts), 1, alerts)
        self.assertIn("events were not recorded", alerts[0][0])
        self.assertGreater(len(proc.flows()), before - 1)

    def test_sigterm_while_the_disk_is_full_exits_at_once(self):
        proc, listen = self.start()
        self.fill_disk()
        self.assertEqual(self.relay(listen, 128 * 1024), 128 * 1024)
        poll(lambda: "recording stopped" in proc.stderr(), 15, message="no 'recording stopped' line")
        code, seconds = proc.stop()
        self.assertLess(seconds, 3, f"exit took {seconds:.1f} s")
        self.assertIn("could not be written at shutdown", proc.stderr())
        self.free_disk()
        self.check_store_is_sound()


if __name__ == "__main__":
    unittest.main()
