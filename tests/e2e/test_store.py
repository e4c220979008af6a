"""What a run leaves in the data directory, and what a SIGTERM under load keeps."""

import base64
import glob
import hashlib
import json
import os
import signal
import socket
import sqlite3
import stat
import threading
import time
import unittest

from support import (
    IO_TIMEOUT,
    SluiceTest,
    client_port,
    connect,
    echo_handler,
    flows_json,
    free_port,
    join_thread,
    local_port,
    pattern,
    poll,
    recv_all,
    recv_exactly,
    run_cli,
    start_thread,
    stored_payload,
)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class AfterRunTest(SluiceTest):
    # (bytes up, bytes down) per flow: a few KiB each way, different per flow and per direction.
    SIZES = [(3000, 5000), (4096, 8192), (6001, 2500)]

    def test_store_after_sigterm_lists_flows_and_reproduces_bytes(self):
        listen, target = free_port(), free_port()
        sluice = self.start_sluice([(listen, target)])

        def handler(conn):
            # Reads the client's fixed-size request, answers with bytes derived from it, closes.
            size = int(recv_exactly(conn, 8).decode())
            up = recv_exactly(conn, size - 8)
            conn.sendall(pattern(int.from_bytes(up[:4], "big"), seed=hashlib.sha256(up).hexdigest()))
            return len(up)

        server = self.server(handler, target)
        sent = {}  # client port -> (up bytes, down bytes)
        for index, (up_size, down_size) in enumerate(self.SIZES):
            body = down_size.to_bytes(4, "big") + pattern(up_size - 12, seed=f"up-{index}")
            up = f"{up_size:08d}".encode() + body
            self.assertEqual(len(up), up_size)
            expected_down = pattern(down_size, seed=hashlib.sha256(body).hexdigest())
            with connect(listen) as client:
                client.sendall(up)
                down = recv_all(client)
                port = local_port(client)
            self.assertEqual(down, expected_down, f"flow {index}: the relay changed the reply")
            sent[port] = (up, down)
        server.join()
        self.assertEqual(server.errors, [])
        for port in sent:
            sluice.wait_for_flow(port, states=("closed",))

        code, elapsed = sluice.stop(signal.SIGTERM)
        self.assertEqual(code, 0, f"exit code after SIGTERM; stderr:\n{sluice.stderr()}")

        # Permissions first, before anything here opens (and so touches) the SQLite file.
        self.assertEqual(mode(self.data_dir), 0o700, "data dir")
        database = os.path.join(self.data_dir, "sluice.sqlite")
        self.assertTrue(os.path.isfile(database))
        jsonl_files = sorted(glob.glob(os.path.join(self.data_dir, "logs", "*", "*.jsonl")))
        names = {os.path.basename(p) for p in jsonl_files}
        self.assertEqual(names, {"flows.jsonl", "messages.jsonl", "errors.jsonl", "commands.jsonl", "alerts.jsonl"}, jsonl_files)
        for root, dirs, files in os.walk(self.data_dir):
            for name in dirs:
                self.assertEqual(mode(os.path.join(root, name)), 0o700, os.path.join(root, name))
            for name in files:
                path = os.path.join(root, name)
                self.assertEqual(mode(path), 0o600, f"{path} is {oct(mode(path))}")

        # `sluice flows`: a header and one row per flow, id first.
        all_flows = flows_json(self.data_dir)
        table = run_cli("flows", "--data-dir", self.data_dir)
        self.assertEqual(table.returncode, 0, table.stderr)
        lines = table.stdout.decode().splitlines()
        self.assertEqual(lines[0].split()[0], "ID", lines[0])
        self.assertIn("STATE", lines[0])
        self.assertEqual([int(line.split()[0]) for line in lines[1:]], [f["id"] for f in all_flows])

        by_port = {client_port(f): f for f in all_flows}
        for port, (up, down) in sent.items():
            flow = by_port[port]
            self.assertEqual(flow["state"], "closed", flow)
            self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (len(up), len(down)), flow)
            row = next(line for line in lines[1:] if int(line.split()[0]) == flow["id"])
            self.assertIn(f"127.0.0.1:{port}", row)
            for direction, data in (("up", up), ("down", down)):
                raw = run_cli("show", str(flow["id"]), "--data-dir", self.data_dir, "--raw", direction)
                self.assertEqual(raw.returncode, 0, raw.stderr)
                self.assertEqual(raw.stderr, b"", f"flow {flow['id']} {direction}")
                self.assertEqual(len(raw.stdout), len(data), f"flow {flow['id']} --raw {direction}: length")
                self.assertEqual(raw.stdout, data, f"flow {flow['id']} --raw {direction}: bytes differ")

        db = sqlite3.connect(database, timeout=10)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            stored = db.execute("SELECT COUNT(*) FROM flows").fetchone()[0]
            self.assertEqual(stored, len(all_flows))
        finally:
            db.close()

        # Every line of every .jsonl file is one JSON object, and the message log holds the same bytes.
        records = {}
        for path in jsonl_files:
            with open(path, "rb") as f:
                text = f.read().decode()
            self.assertTrue(text == "" or text.endswith("\n"), f"{path}: last line is cut")
            records[os.path.basename(path)] = []
            for number, line in enumerate(text.splitlines(), 1):
                try:
                    record = json.loads(line)
                except ValueError as error:
                    self.fail(f"{path}:{number}: not JSON ({error}): {line[:200]!r}")
                self.assertIsInstance(record, dict, f"{path}:{number}")
                records[os.path.basename(path)].append(record)
        for port, (up, down) in sent.items():
            flow_id = by_port[port]["id"]
            events = [r.get("event") for r in records["flows.jsonl"] if r.get("flow") == flow_id]
            self.assertEqual(events, ["open", "close"], f"flows.jsonl for flow {flow_id}")
            for direction, data in (("up", up), ("down", down)):
                messages = sorted(
                    (r for r in records["messages.jsonl"] if r.get("flow") == flow_id and r.get("direction") == direction),
                    key=lambda r: r["seq"],
                )
                logged = b"".join(base64.b64decode(r["payload"]) for r in messages)
                self.assertEqual(logged, data, f"messages.jsonl, flow {flow_id} {direction}")


STREAMS = 50
RING = (1 << 20) + 13  # odd length: chunk boundaries wander over the ring
CHUNK = 64 << 10


class StreamingClient:
    """Sends its own deterministic endless stream and reads the echo, both at once, until the connection dies."""

    def __init__(self, port, ring, offset):
        self.sock = connect(port)
        self.port = local_port(self.sock)
        self.ring = memoryview(ring)  # ring + its first CHUNK bytes, so any slice of CHUNK needs no wrap
        self.offset = offset
        self.sent = 0
        self.received = 0
        self.digest = hashlib.sha256()
        self.stop = threading.Event()
        self.receive_error = None
        self.sender = start_thread(self._send)
        self.receiver = start_thread(self._receive)

    def _send(self):
        while not self.stop.is_set():
            start = (self.offset + self.sent) % RING
            try:
                self.sent += self.sock.send(self.ring[start:start + CHUNK])
            except OSError:
                return

    def _receive(self):
        buffer = bytearray(1 << 18)
        view = memoryview(buffer)
        while True:
            try:
                n = self.sock.recv_into(buffer)
            except socket.timeout as error:
                self.receive_error = error
                return
            except OSError:
                return  # reset: the connection is over
            if n == 0:
                return
            self.digest.update(view[:n])
            self.received += n

    def finish(self, timeout):
        self.stop.set()
        join_thread(self.receiver, timeout, f"receiver of client {self.port}")
        join_thread(self.sender, timeout, f"sender of client {self.port}")
        self.sock.close()


class SigtermUnderLoadTest(SluiceTest):
    def test_sigterm_with_50_streaming_connections_exits_fast_and_keeps_every_received_byte(self):
        listen, target = free_port(), free_port()
        # Recording limits out of the way: every byte that travels is meant to be stored.
        sluice = self.start_sluice([(listen, target)], "--max-flow-bytes", str(1 << 30))
        server = self.server(echo_handler, target)

        base = os.urandom(RING)
        ring = base + base[:CHUNK]
        clients = []
        try:
            for i in range(STREAMS):
                clients.append(StreamingClient(listen, ring, offset=(i * 104729) % RING))
            # Every connection is really streaming before the signal.
            poll(lambda: all(c.received >= (256 << 10) for c in clients), 30, interval=0.05,
                 message="not every client received 256 KiB")
            time.sleep(0.5)
            at_kill = [c.received for c in clients]
            code, elapsed = sluice.stop(signal.SIGTERM, timeout=15)
        finally:
            for c in clients:
                c.stop.set()
        for c in clients:
            c.finish(IO_TIMEOUT)

        stderr = sluice.stderr()
        total = sum(c.received for c in clients)
        self.assertEqual(code, 0, f"exit code after SIGTERM; stderr:\n{stderr}")

        # Three independent requirements: each is reported even when another fails.
        with self.subTest("exits within 2 s of SIGTERM"):
            self.assertLessEqual(
                elapsed, 2.0,
                f"sluice took {elapsed:.2f}s to exit after SIGTERM ({STREAMS} streams, {total / 2**20:.0f} MiB "
                f"echoed in total)",
            )
        with self.subTest("no work scheduled on stopped event loops"):
            # SwiftNIO: "This will be upgraded to a forced crash in future SwiftNIO versions."
            late = [line for line in stderr.splitlines() if "Cannot schedule tasks" in line or "Fatal error" in line]
            self.assertEqual(len(late), 0, f"{len(late)} such lines on stderr during shutdown, e.g. {late[:1]}")
        with self.subTest("every received byte is in the store"):
            self.check_store(clients, at_kill, base)
        server.join(IO_TIMEOUT)

    def check_store(self, clients, at_kill, base):
        flows = {client_port(f): f for f in flows_json(self.data_dir) if client_port(f) in {c.port for c in clients}}
        self.assertEqual(len(flows), STREAMS, "one flow per client connection")
        still_open = [f for f in flows.values() if f["state"] not in ("closed", "error")]
        self.assertEqual(still_open, [], "flows left unfinished after a clean SIGTERM")
        for index, client in enumerate(clients):
            self.assertIsNone(client.receive_error, f"client {index}: {client.receive_error}")
            self.assertGreaterEqual(client.received, at_kill[index])
            flow = flows.get(client.port)
            self.assertIsNotNone(flow, f"no flow for client port {client.port}")
            self.assertFalse(flow["payload_truncated"], flow)
            down = stored_payload(self.data_dir, flow["id"], "down")
            up = stored_payload(self.data_dir, flow["id"], "up")
            where = f"client {index} (port {client.port}, flow {flow['id']}): received {client.received}, " \
                    f"{at_kill[index]} of them by the kill; stored down {len(down)}, up {len(up)}"
            self.assertGreaterEqual(len(down), client.received, f"{where}: received bytes missing from the store")
            self.assertEqual(hashlib.sha256(down[:client.received]).hexdigest(), client.digest.hexdigest(),
                             f"{where}: what the client received is not a prefix of the stored down bytes")
            self.assertGreaterEqual(flow["bytes_down"], client.received, where)
            # The echo only returns what went up, and Sluice stores a chunk before forwarding it.
            self.assertGreaterEqual(len(up), len(down), where)
            rotated = base[client.offset:] + base[:client.offset]
            for name, data in (("up", up), ("down", down)):
                for start in range(0, len(data), RING):
                    segment = data[start:start + RING]
                    if segment != rotated[:len(segment)]:
                        self.fail(f"{where}: stored {name} bytes at {start} are not this client's stream")

if __name__ == "__main__":
    unittest.main()
