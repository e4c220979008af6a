"""Limits that keep Sluice serving when peers misbehave: slow request heads (slowloris), a flood of connections past
the open-files limit, and a ClientHello that never completes. Each is checked against the real binary."""

import os
import resource
import socket
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, SluiceTest, echo_handler, free_port, poll  # noqa: E402
import test_http  # noqa: E402  (its helpers only)


def cpu_seconds(pid):
    """User plus system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def open_files_limit(n):
    """A preexec function: the child may open at most `n` files (soft and hard, so Sluice cannot raise it)."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def echo_round_trip(port, payload=b"ping", timeout=10):
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(64)
            if not chunk:
                break
            received += chunk
        return received


def read_response(sock):
    """One response with a Content-Length body, whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed after {data[:100]!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed inside a body")
        body += chunk
    return head + b"\r\n\r\n" + body


class ConnectionFloodTest(SluiceTest):
    def flood(self, listen, count):
        sockets = []
        for _ in range(count):
            s = socket.socket()
            s.settimeout(5)
            s.connect((HOST, listen))  # queued in the backlog when Sluice does not accept
            sockets.append(s)
        return sockets

    def check_flood(self, extra, expected_log):
        listen, target = free_port(), free_port()
        proc = self.start_sluice([(listen, target)], *extra, quiet=False, preexec_fn=open_files_limit(256))
        self.server(echo_handler, port=target)
        self.assertEqual(echo_round_trip(listen), b"ping")
        sockets = self.flood(listen, 400)
        try:
            poll(lambda: expected_log in proc.stderr(), 15, message=f"no '{expected_log}' line on stderr")
            # Paused, not spinning: little CPU while the flood waits.
            before = cpu_seconds(proc.pid)
            time.sleep(2)
            spent = cpu_seconds(proc.pid) - before
            self.assertLess(spent, 0.5, f"{spent:.2f} s of CPU in 2 s while paused")
        finally:
            for s in sockets:
                s.close()
        # Once the flood is gone, Sluice accepts and relays again.
        poll(lambda: self._echoes(listen), 30, message="Sluice did not serve again after the flood")
        self.assertIsNone(proc.popen.poll(), "sluice is still running")
        return proc

    @staticmethod
    def _echoes(port):
        try:
            return echo_round_trip(port, timeout=5) == b"ping"
        except OSError:
            return False

    def test_max_connections_from_the_open_files_limit_pauses_accepting(self):
        # ulimit -n 256: max_connections defaults to (256 - 64) / 2 = 96.
        proc = self.check_flood([], "max_connections reached")
        self.assertIn("accepting on", proc.stderr())

    def test_max_connections_above_the_open_files_limit_is_lowered_to_it(self):
        # Accepting past the descriptors would fail with EMFILE, which NIO retries at once (a spin).
        proc = self.check_flood(["--max-connections", "5000"], "max_connections reached")
        self.assertIn("max_connections 5000 is more than the open files limit (256) allows: using 96", proc.stderr())


QUICK_ORIGIN_PATHS = []


def quick_origin(conn):
    """A minimal keep-alive origin: each request head is answered with 10 bytes in one write (no Nagle delay,
    so the latency measured is Sluice's, not a Python server's). Paths asked for go to QUICK_ORIGIN_PATHS."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        QUICK_ORIGIN_PATHS.append(head.split(b" ")[1].decode(errors="replace"))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")


class SlowClientTest(test_http.HTTPHelpers, SluiceTest):
    def request_latency(self, port, origin_port, count=40):
        """Median seconds of `count` requests on one kept-alive connection."""
        times = []
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(count):
                start = time.perf_counter()
                sock.sendall(f"GET http://{HOST}:{origin_port}/bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                response = read_response(sock)
                times.append(time.perf_counter() - start)
                self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:100])
        return statistics.median(times)

    def test_500_slow_header_clients_get_408_and_others_are_served_meanwhile(self):
        origin = self.server(quick_origin)
        proc, port = self.proxy("--request-head-timeout", "4")
        self.request_latency(port, origin.port, count=10)  # warm up
        unloaded = self.request_latency(port, origin.port)

        slow = []
        for _ in range(500):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(f"GET http://{HOST}:{origin.port}/slow HTTP/1.1\r\n".encode())
            slow.append(s)
        stop = threading.Event()

        def trickle():
            # One header byte per client every half second: the head never completes in time.
            while not stop.is_set():
                for s in slow:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
                stop.wait(0.5)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            time.sleep(1)
            loaded = self.request_latency(port, origin.port)
            print(f"\nslowloris: median request latency {unloaded * 1000:.2f} ms alone, "
                  f"{loaded * 1000:.2f} ms beside 500 slow-header clients", file=sys.stderr)
            self.assertLessEqual(loaded, 2 * max(unloaded, 0.001), f"alone {unloaded:.4f} s, loaded {loaded:.4f} s")
            answers = []
            for s in slow:
                s.settimeout(15)
                data = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                answers.append(data)
        finally:
            stop.set()
            trickler.join(5)
            for s in slow:
                s.close()
        timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408 Request Timeout")]
        self.assertEqual(len(timed_out), 500, f"{len(timed_out)} of 500 got 408; e.g. {answers[0][:120]!r}")
        self.assertFalse([p for p in QUICK_ORIGIN_PATHS if "/slow" in p], "no slow request reached the server")
        flows = self.wait_flows(proc, lambda f: f["state"] == "error", count=500, timeout=30)
        self.assertIn("timeouts.request_head", flows[0]["error"])


class HalfClientHelloTest(test_http.HTTPHelpers, SluiceTest):
    def test_a_clienthello_that_never_completes_does_not_hold_the_tunnel(self):
        origin = self.origin()
        proc, port = self.proxy("--request-head-timeout", "1")
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.sendall(f"CONNECT {HOST}:{origin.port} HTTP/1.1\r\nHost: {HOST}:{origin.port}\r\n\r\n".encode())
            answer = sock.recv(4096)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
            # A TLS handshake record announcing 512 bytes, of which only the first 20 come.
            sock.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + b"\x00" * 9)
            start = time.monotonic()
            rest = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                rest += chunk
            elapsed = time.monotonic() - start
        self.assertLess(elapsed, 5, "the tunnel was closed once timeouts.request_head had passed")
        flows = self.wait_flows(proc, lambda f: f["kind"] == "tcp" and f["state"] == "error")
        self.assertIn("ClientHello was not complete", flows[0]["error"])


if __name__ == "__main__":
    unittest.main()
