"""The HTTP/1.1 proxy end to end: explicit and reverse listeners, bodies both ways, keep-alive, 1xx, HEAD,
Sluice's own answers (502, 400, 431), streaming with bounded memory, the headless log line and CONNECT tunnels.

The origin is a real `http.server.ThreadingHTTPServer` (HTTP/1.1, keep-alive) in this process; the client is
curl where a real client fits and a raw socket where the bytes on the wire matter (malformed input, HEAD then GET
on one connection, a slow reader).

Readiness of an HTTP listener: a connection that sends nothing records no flow, so the starter here simply
connects until the port accepts and closes the probe (`SluiceTest.start_sluice` is for tcp listeners).
"""

import base64
import hashlib
import http.server
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
from urllib.parse import urlsplit

# `python3 -m unittest tests.e2e.test_http` from the repository root as well as discovery inside tests/e2e.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    HOST,
    IO_TIMEOUT,
    SLUICE_BIN,
    START_TIMEOUT,
    SluiceProcess,
    SluiceTest,
    connect,
    echo_handler,
    free_port,
    join_thread,
    local_port,
    pattern,
    poll,
    recv_all,
    run_cli,
    start_thread,
    stored_payload,
)

CURL = "/usr/bin/curl"
CURL_TIMEOUT = 30  # --max-time for curl, and (plus a margin) the subprocess timeout
FLOW_TIMEOUT = 10.0
CUSTOM_HEADER = ("X-Origin-Tag", "sluice-e2e-7f3a")
DEFAULT_MAX_BODY = 4 << 20

# ---------------------------------------------------------------------------------------------------------------------
# Deterministic bodies: a prime-length block repeated, so that a misplaced or repeated 64 KiB piece changes the hash.

_BLOCK = pattern(65521, "sluice-http-body")
_BLOCKS = _BLOCK * 3
_sha_cache = {}


def body_piece(offset, length):
    """Bytes [offset, offset + length) of the endless body (length <= 64 KiB)."""
    start = offset % len(_BLOCK)
    return _BLOCKS[start:start + length]


def body_pieces(n, size=64 << 10):
    for offset in range(0, n, size):
        yield body_piece(offset, min(size, n - offset))


def body_bytes(n):
    return b"".join(body_pieces(n))


def body_sha256(n):
    if n not in _sha_cache:
        digest = hashlib.sha256()
        for piece in body_pieces(n):
            digest.update(piece)
        _sha_cache[n] = digest.hexdigest()
    return _sha_cache[n]


CHUNKED_PIECES = [body_piece(i * 1000, size) for i, size in enumerate((1, 100, 4096, 70000, 5, 12345))]
CHUNKED_BODY = b"".join(CHUNKED_PIECES)
HEAD_LENGTH = 5000

# ---------------------------------------------------------------------------------------------------------------------
# The origin server.


class OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IO_TIMEOUT  # socket timeout of each connection
    server_version = "SluiceTestOrigin/1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def setup(self):
        super().setup()
        self.server.connection_opened(self.connection)

    def _record(self, body):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body,
            "client_port": self.client_address[1],
        }
        self.server.record(entry)
        return entry

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("connection ended inside a chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                data = self.rfile.read(size)
                if len(data) != size:
                    raise ConnectionError("connection ended inside a chunk")
                parts.append(data)
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            raise ConnectionError("connection ended inside the body")
        return data

    def _send(self, status, body, content_type="application/octet-stream", extra=(), include_body=True):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(*CUSTOM_HEADER)
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if include_body and body:
            self.wfile.write(body)

    def _dispatch(self, include_body=True):
        body = self._read_body()
        entry = self._record(body)
        path = urlsplit(self.path).path
        if path == "/echo":
            answer = {
                "method": self.command,
                "path": self.path,
                "headers": entry["headers"],
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            self._send(200, json.dumps(answer).encode(), "application/json", include_body=include_body)
        elif path.startswith("/bytes/"):
            n = int(path[len("/bytes/"):])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.send_header(*CUSTOM_HEADER)
            self.end_headers()
            if include_body:
                for piece in body_pieces(n):
                    self.wfile.write(piece)
                    self.server.body_bytes_sent += len(piece)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header(*CUSTOM_HEADER)
            self.end_headers()
            if include_body:
                for piece in CHUNKED_PIECES:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
        elif path == "/drip":
            # A chunked body that takes about a second: a request in flight while other connections misbehave.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(10):
                piece = b"drip %d\n" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.1)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/head":
            self._send(200, body_bytes(HEAD_LENGTH), include_body=include_body)
        elif path.startswith("/status/"):
            status = int(path[len("/status/"):])
            if status in (204, 304):
                self.send_response(status)
                self.send_header(*CUSTOM_HEADER)
                self.end_headers()
            else:
                self._send(status, b"status %d\n" % status, "text/plain", include_body=include_body)
        else:
            self._send(404, b"not found\n", "text/plain", include_body=include_body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_POST(self):  # noqa: N802
        self._dispatch()

    def do_PUT(self):  # noqa: N802
        self._dispatch()

    def do_HEAD(self):  # noqa: N802
        self._dispatch(include_body=False)


class OriginServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__((HOST, 0), OriginHandler)
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.handler_errors = []
        self.body_bytes_sent = 0  # of /bytes/N bodies, as written to the socket (for backpressure checks)
        self._sockets = []

    def connection_opened(self, sock):
        with self.lock:
            self.connections += 1
            self._sockets.append(sock)

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def requests_for(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def handle_error(self, request, client_address):
        with self.lock:
            self.handler_errors.append(sys.exc_info()[1])

    def stop(self):
        self.shutdown()
        with self.lock:
            sockets = list(self._sockets)
        for sock in sockets:  # unblock handlers waiting on an idle keep-alive connection
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


def header(headers, name):
    """The first value of `name` in a [[name, value], ...] list, case-insensitively."""
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def header_values(headers, name):
    return [value for key, value in headers if key.lower() == name.lower()]


# ---------------------------------------------------------------------------------------------------------------------
# Raw HTTP on a socket.


def read_head(reader):
    """Reads a response head from a buffered reader: (status, reason, [[name, value], ...], raw head bytes)."""
    raw = b""
    while True:
        line = reader.readline(70000)
        if not line:
            raise AssertionError(f"connection ended inside a response head; got {raw!r}")
        raw += line
        if line in (b"\r\n", b"\n"):
            break
    lines = raw.decode("latin-1").split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    if not version.startswith("HTTP/1."):
        raise AssertionError(f"not an HTTP/1 status line: {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append([name.strip(), value.strip()])
    return int(status), (reason[0] if reason else ""), headers, raw


def read_response(reader, method="GET"):
    """Reads one complete response (skipping 1xx): (status, headers, body)."""
    while True:
        status, _, headers, _ = read_head(reader)
        if status >= 200:
            break
    if method == "HEAD" or status in (204, 304):
        return status, headers, b""
    if "chunked" in (header(headers, "Transfer-Encoding") or "").lower():
        parts = []
        while True:
            size = int(reader.readline(100).split(b";")[0].strip(), 16)
            if size == 0:
                while reader.readline(70000) not in (b"\r\n", b"\n", b""):
                    pass
                return status, headers, b"".join(parts)
            data = reader.read(size)
            if len(data) != size:
                raise AssertionError("connection ended inside a chunk")
            parts.append(data)
            reader.readline(3)
    length = header(headers, "Content-Length")
    if length is not None:
        data = reader.read(int(length))
        if len(data) != int(length):
            raise AssertionError(f"connection ended after {len(data)} of {length} body bytes")
        return status, headers, data
    return status, headers, reader.read()


def read_until_closed(sock, timeout=IO_TIMEOUT):
    """Everything the peer sends until it closes (a reset after the data counts as a close)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------------------------------------------------------------


def flow_body_size(flow, direction):
    """An HTTP flow's body bytes one way: its total (what travelled) less its heads'."""
    return flow[f"bytes_{direction}"] - flow.get(f"head_bytes_{direction}", 0)


class HTTPHelpers:
    """Fixtures and store helpers for HTTP tests, as a mixin: other test files inherit it beside SluiceTest without
    inheriting (and re-running) the tests below."""

    def setUp(self):
        super().setUp()
        self._runs = 0

    # --- fixtures

    def origin(self):
        server = OriginServer()
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        def stop():
            server.stop()
            thread.join(10)
        self.addCleanup(stop)
        return server

    def start_http_sluice(self, listeners, *extra, quiet=True):
        """Starts `sluice --headless` with `listeners` = [(port, spec), ...] and returns once every port accepts."""
        self._runs += 1
        stderr_path = os.path.join(self.tmp, f"sluice-{self._runs}.stderr")
        stdout_path = os.path.join(self.tmp, f"sluice-{self._runs}.stdout")
        args = [SLUICE_BIN, "--headless", "--data-dir", self.data_dir]
        for _, listen_spec in listeners:
            args += ["--listen", listen_spec]
        if quiet:
            args.append("-q")
        args += list(extra)
        with open(stderr_path, "wb") as stderr, open(stdout_path, "wb") as stdout:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        proc = SluiceProcess(popen, self.data_dir, stderr_path, listeners)
        self.addCleanup(proc.kill)
        for port, _ in listeners:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if popen.poll() is not None:
                    self.fail(f"sluice exited with {popen.returncode} before listening; stderr:\n{proc.stderr()}")
                try:
                    probe = socket.create_connection((HOST, port), timeout=1.0)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.fail(f"sluice not listening on {port} after {START_TIMEOUT}s; stderr:\n{proc.stderr()}")
                    time.sleep(0.02)
            probe.close()  # an HTTP connection that sends nothing records no flow
        return proc

    def proxy(self, *extra, quiet=True):
        """An explicit proxy listener; returns (process, port)."""
        port = free_port()
        proc = self.start_http_sluice([(port, f"http://{HOST}:{port}")], *extra, quiet=quiet)
        return proc, port

    def curl(self, *args, proxy_port=None, timeout=CURL_TIMEOUT):
        command = [CURL, "-sS", "--max-time", str(timeout)]
        if proxy_port is not None:
            command += ["-x", f"http://{HOST}:{proxy_port}"]
        command += list(args)
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 10)
        return result

    def path(self, name):
        return os.path.join(self.tmp, name)

    # --- the store

    def wait_flows(self, proc, predicate, count=1, timeout=FLOW_TIMEOUT, states=("closed", "error")):
        """Polls until `count` flows match `predicate` and are finished; returns them, oldest first."""
        last = []

        def check():
            nonlocal last
            last = [f for f in proc.flows() if predicate(f)]
            done = [f for f in last if f["state"] in states]
            return done if len(done) >= count else None
        try:
            return poll(check, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"{count} finished flow(s) not seen within {timeout}s; matching so far: {last}") from None

    def flow_by_url(self, proc, url, count=1):
        return self.wait_flows(proc, lambda f: f.get("url") == url, count)

    def query(self, sql, *params):
        db = sqlite3.connect(f"file:{os.path.join(self.data_dir, 'sluice.sqlite')}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute(sql, params).fetchall()]
        finally:
            db.close()

    def http_row(self, flow_id):
        """The flow's row in `http`, once its response is recorded."""
        def check():
            rows = self.query("SELECT * FROM http WHERE flow_id = ?", flow_id)
            return rows[0] if rows and rows[0]["status"] is not None else None
        try:
            return poll(check, FLOW_TIMEOUT, interval=0.1)
        except AssertionError:
            rows = self.query("SELECT * FROM http WHERE flow_id = ?", flow_id)
            raise AssertionError(f"no http row with a status for flow {flow_id}; rows: {rows}") from None


class HTTPTest(HTTPHelpers, SluiceTest):
    # -----------------------------------------------------------------------------------------------------------------
    # 1

    def test_get_via_explicit_proxy_is_byte_identical_and_recorded(self):
        origin = self.origin()
        sluice, port = self.proxy()
        url = f"http://{HOST}:{origin.port}/bytes/100000"

        direct = self.curl("-o", self.path("direct.bin"), "-D", self.path("direct.h"), "-w", "%{http_code}", url)
        self.assertEqual(direct.returncode, 0, direct.stderr)
        proxied = self.curl("-o", self.path("proxied.bin"), "-D", self.path("proxied.h"), "-w", "%{http_code}", url,
                            proxy_port=port)
        self.assertEqual(proxied.returncode, 0, proxied.stderr)

        self.assertEqual(proxied.stdout, b"200")
        self.assertEqual(direct.stdout, b"200")
        with open(self.path("direct.bin"), "rb") as f:
            direct_body = f.read()
        with open(self.path("proxied.bin"), "rb") as f:
            proxied_body = f.read()
        self.assertEqual(len(proxied_body), 100000)
        self.assertEqual(hashlib.sha256(proxied_body).hexdigest(), hashlib.sha256(direct_body).hexdigest())
        self.assertEqual(hashlib.sha256(proxied_body).hexdigest(), body_sha256(100000))

        def custom(path):
            with open(path, "rb") as f:
                text = f.read().decode("latin-1")
            return re.findall(rf"(?im)^{CUSTOM_HEADER[0]}:\s*(.*?)\r?$", text)
        self.assertEqual(custom(self.path("proxied.h")), [CUSTOM_HEADER[1]])
        self.assertEqual(custom(self.path("proxied.h")), custom(self.path("direct.h")))

        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual(flow["kind"], "http", flow)
        self.assertEqual(flow["method"], "GET", flow)
        self.assertEqual(flow["url"], url, flow)
        self.assertEqual(flow["status"], 200, flow)
        self.assertEqual(flow["state"], "closed", flow)
        self.assertIsNone(flow["error"], flow)
        self.assertEqual(flow["server"], f"{HOST}:{origin.port}", flow)
        self.assertEqual(flow_body_size(flow, "down"), 100000, flow)
        self.assertEqual(flow_body_size(flow, "up"), 0, flow)
        # What travelled, heads included: a GET is not "up 0 B" (issue 16).
        self.assertGreater(flow["bytes_up"], 20, flow)
        self.assertEqual(flow["bytes_up"], flow["head_bytes_up"], flow)
        self.assertGreater(flow["head_bytes_down"], 20, flow)
        self.assertFalse(flow["payload_truncated"], flow)
        self.assertEqual(stored_payload(self.data_dir, flow["id"], "down"), proxied_body)
        raw = run_cli("show", str(flow["id"]), "--data-dir", self.data_dir, "--raw", "down")
        self.assertEqual(raw.returncode, 0, raw.stderr)
        self.assertEqual(raw.stdout, proxied_body, "`sluice show --raw down` should write the stored body")
        shown = run_cli("show", str(flow["id"]), "--data-dir", self.data_dir)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn(f"GET {url}", shown.stdout.decode(errors="replace"))
        self.assertIn(CUSTOM_HEADER[1], shown.stdout.decode(errors="replace"))
        row = self.http_row(flow["id"])
        self.assertEqual(row["synthetic"], 0, row)
        self.assertEqual(header(json.loads(row["response_headers"]), CUSTOM_HEADER[0]), CUSTOM_HEADER[1], row)

    # -----------------------------------------------------------------------------------------------------------------
    # 2

    def test_post_and_chunked_upload_bodies_arrive_and_proxy_credentials_are_never_stored(self):
        origin = self.origin()
        sluice, port = self.proxy()
        body = os.urandom(300 << 10)
        with open(self.path("body.bin"), "wb") as f:
            f.write(body)
        credentials = "user:secret-b9c2"
        token = base64.b64encode(credentials.encode()).decode()
        common = ["-U", credentials, "-H", "X-Test-Token: tok-4711", "-H", "Content-Type: application/octet-stream",
                  "--data-binary", "@" + self.path("body.bin")]

        plain_url = f"http://{HOST}:{origin.port}/echo?upload=plain"
        chunked_url = f"http://{HOST}:{origin.port}/echo?upload=chunked"
        plain = self.curl(*common, plain_url, proxy_port=port)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        chunked = self.curl(*common, "-H", "Transfer-Encoding: chunked", chunked_url, proxy_port=port)
        self.assertEqual(chunked.returncode, 0, chunked.stderr)

        for result, url, te in ((plain, plain_url, None), (chunked, chunked_url, "chunked")):
            with self.subTest(upload=url):
                answer = json.loads(result.stdout)
                self.assertEqual(answer["method"], "POST")
                self.assertEqual(answer["body_length"], len(body))
                self.assertEqual(answer["body_sha256"], hashlib.sha256(body).hexdigest())
                [seen] = origin.requests_for(urlsplit(url).path + "?" + urlsplit(url).query)
                self.assertEqual(seen["body"], body)
                self.assertEqual(header(seen["headers"], "X-Test-Token"), "tok-4711")
                self.assertEqual(header_values(seen["headers"], "Proxy-Authorization"), [],
                                 "Proxy-Authorization is for the proxy and must not be forwarded")
                if te:
                    self.assertEqual(header(seen["headers"], "Transfer-Encoding"), "chunked")

                [flow] = self.flow_by_url(sluice, url)
                self.assertEqual((flow["method"], flow["status"], flow["state"]), ("POST", 200, "closed"), flow)
                self.assertEqual(flow_body_size(flow, "up"), len(body), flow)
                self.assertEqual(stored_payload(self.data_dir, flow["id"], "up"), body)
                row = self.http_row(flow["id"])
                recorded = json.loads(row["request_headers"])
                self.assertEqual(header(recorded, "X-Test-Token"), "tok-4711", recorded)
                self.assertEqual(header_values(recorded, "Proxy-Authorization"), [], recorded)

        # Secrets never stored: not in the JSONL logs, and not anywhere in the data directory's files. Stopped first,
        # so that everything is written (the JSON lines follow the SQLite commit the checks above waited for).
        sluice.stop()
        logs = os.path.join(self.data_dir, "logs")
        self.assertTrue(os.path.isdir(logs), f"no logs directory in {self.data_dir}")
        log_files = []
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    data = f.read()
                if path.startswith(logs):
                    log_files.append(path)
                    self.assertNotIn(b"proxy-authorization", data.lower(), path)
                for needle in (token.encode(), credentials.encode(), b"secret-b9c2"):
                    self.assertNotIn(needle, data, f"the proxy credentials leaked into {path}")
        flow_logs = [p for p in log_files if os.path.basename(p) == "flows.jsonl"]
        self.assertTrue(flow_logs, f"no flows.jsonl among the logs: {log_files}")
        logged = b"".join(read_file(p) for p in flow_logs)
        # The request headers are logged (so the check above looked where they would be), minus the credentials.
        self.assertIn(b"tok-4711", logged, "the requests' headers are missing from flows.jsonl")

    # -----------------------------------------------------------------------------------------------------------------
    # 3

    def test_keep_alive_reuses_client_and_origin_connections(self):
        origin = self.origin()
        sluice, port = self.proxy()
        first = f"http://{HOST}:{origin.port}/bytes/1000"
        second = f"http://{HOST}:{origin.port}/echo?second=1"
        result = self.curl("-o", self.path("one"), "-o", self.path("two"), "-w", "%{local_port} %{num_connects}\n",
                           first, second, proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.decode().split()
        self.assertEqual(len(lines), 4, result.stdout)
        self.assertEqual(lines[3], "0", f"curl opened a second connection to the proxy: {result.stdout}")
        with open(self.path("one"), "rb") as f:
            self.assertEqual(f.read(), body_bytes(1000))

        [flow1] = self.flow_by_url(sluice, first)
        [flow2] = self.flow_by_url(sluice, second)
        self.assertEqual(flow1["client"], flow2["client"], "both exchanges should share the client connection")
        self.assertEqual(flow1["client"], f"{HOST}:{lines[0]}")
        self.assertNotEqual(flow1["id"], flow2["id"])
        self.assertEqual((flow1["status"], flow2["status"]), (200, 200))
        self.assertEqual(len(origin.requests), 2, origin.requests)
        self.assertEqual(origin.connections, 1, "the origin should have seen one connection, reused")
        self.assertEqual(origin.requests[0]["client_port"], origin.requests[1]["client_port"])

    # -----------------------------------------------------------------------------------------------------------------
    # 4

    def test_chunked_response_and_head_then_get_on_one_connection(self):
        origin = self.origin()
        sluice, port = self.proxy()
        chunked_url = f"http://{HOST}:{origin.port}/chunked"
        result = self.curl("-o", self.path("chunked.bin"), "-D", self.path("chunked.h"), chunked_url, proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(self.path("chunked.bin"), "rb") as f:
            self.assertEqual(f.read(), CHUNKED_BODY)
        [flow] = self.flow_by_url(sluice, chunked_url)
        self.assertEqual((flow["status"], flow_body_size(flow, "down"), flow["state"]), (200, len(CHUNKED_BODY), "closed"), flow)
        self.assertEqual(stored_payload(self.data_dir, flow["id"], "down"), CHUNKED_BODY)

        # HEAD, then GET (chunked), then GET on one raw connection.
        head_url = f"http://{HOST}:{origin.port}/head"
        bytes_url = f"http://{HOST}:{origin.port}/bytes/3000"
        sock = connect(port)
        self.addCleanup(sock.close)
        reader = sock.makefile("rb")
        self.addCleanup(reader.close)
        host = f"Host: {HOST}:{origin.port}\r\n"
        sock.sendall(f"HEAD {head_url} HTTP/1.1\r\n{host}\r\n".encode())
        status, headers, body = read_response(reader, "HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(header(headers, "Content-Length"), str(HEAD_LENGTH), headers)
        self.assertEqual(header(headers, CUSTOM_HEADER[0]), CUSTOM_HEADER[1])
        sock.sendall(f"GET {chunked_url} HTTP/1.1\r\n{host}\r\n".encode())
        status, headers, body = read_response(reader)
        self.assertEqual((status, body), (200, CHUNKED_BODY))
        self.assertEqual((header(headers, "Transfer-Encoding") or "").lower(), "chunked", headers)
        sock.sendall(f"GET {bytes_url} HTTP/1.1\r\n{host}Connection: close\r\n\r\n".encode())
        status, headers, body = read_response(reader)
        self.assertEqual((status, body), (200, body_bytes(3000)))
        self.assertEqual(read_until_closed(sock), b"", "nothing may follow the last response")

        client = f"{HOST}:{local_port(sock)}"
        flows = self.wait_flows(sluice, lambda f: f["client"] == client, count=3)
        self.assertEqual([(f["method"], f["url"], f["status"]) for f in flows],
                         [("HEAD", head_url, 200), ("GET", chunked_url, 200), ("GET", bytes_url, 200)])
        self.assertEqual([flow_body_size(f, "down") for f in flows], [0, len(CHUNKED_BODY), 3000])
        self.assertTrue(all(f["state"] == "closed" for f in flows), flows)
        self.assertEqual([r["method"] for r in origin.requests if r["path"] == "/head"], ["HEAD"])

    # -----------------------------------------------------------------------------------------------------------------
    # 5

    def test_expect_100_continue_upload_is_prompt_and_intact(self):
        origin = self.origin()
        sluice, port = self.proxy()
        body = os.urandom(2 << 20)
        with open(self.path("big.bin"), "wb") as f:
            f.write(body)
        url = f"http://{HOST}:{origin.port}/echo?expect=1"
        started = time.monotonic()
        result = self.curl("--data-binary", "@" + self.path("big.bin"), "-H", "Content-Type: application/octet-stream",
                           "-w", "\n%{http_code} %{time_total}", url, proxy_port=port)
        elapsed = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result.stderr)
        payload, _, tail = result.stdout.rpartition(b"\n")
        code, total = tail.decode().split()
        self.assertEqual(code, "200")
        self.assertLess(elapsed, 5.0, f"the upload took {elapsed:.2f}s (curl time_total {total})")
        answer = json.loads(payload)
        self.assertEqual(answer["body_length"], len(body))
        self.assertEqual(answer["body_sha256"], hashlib.sha256(body).hexdigest())
        [seen] = origin.requests_for("/echo?expect=1")
        self.assertEqual(header(seen["headers"], "Expect"), "100-continue",
                         "curl should have sent Expect: 100-continue for a 2 MiB body (and it should reach the origin)")
        self.assertEqual(seen["body"], body)
        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual((flow["status"], flow["state"], flow_body_size(flow, "up")), (200, "closed", len(body)), flow)

    # -----------------------------------------------------------------------------------------------------------------
    # 6

    def test_reverse_proxy_sets_host_and_forwarded_for(self):
        origin = self.origin()
        rev = free_port()
        sluice = self.start_http_sluice([(rev, f"reverse+http://{HOST}:{rev}=>http://{HOST}:{origin.port}")])
        result = self.curl("-H", "X-Test: reverse", f"http://{HOST}:{rev}/echo?r=1")
        self.assertEqual(result.returncode, 0, result.stderr)
        answer = json.loads(result.stdout)
        self.assertEqual(answer["path"], "/echo?r=1")
        self.assertEqual(header(answer["headers"], "Host"), f"{HOST}:{origin.port}")
        self.assertEqual(header(answer["headers"], "X-Forwarded-For"), HOST)
        self.assertEqual(header(answer["headers"], "X-Forwarded-Host"), f"{HOST}:{rev}")
        self.assertEqual(header(answer["headers"], "X-Test"), "reverse")
        url = f"http://{HOST}:{origin.port}/echo?r=1"
        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual((flow["kind"], flow["method"], flow["status"], flow["state"]), ("http", "GET", 200, "closed"))
        self.assertEqual(flow["server"], f"{HOST}:{origin.port}", flow)

    # -----------------------------------------------------------------------------------------------------------------
    # 7

    def test_dead_backend_gives_a_synthetic_502_and_an_error_flow(self):
        sluice, port = self.proxy()
        dead = free_port()
        url = f"http://{HOST}:{dead}/nothing-here"
        result = self.curl("-w", "\n%{http_code}", url, proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)
        body, _, code = result.stdout.rpartition(b"\n")
        self.assertEqual(code, b"502")
        self.assertTrue(body.startswith(b"Sluice: cannot connect"), body)
        self.assertIn(str(dead).encode(), body)

        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual(flow["state"], "error", flow)
        self.assertEqual(flow["status"], 502, flow)
        self.assertIn("connect", flow["error"] or "", flow)
        self.assertIn("refused", flow["error"] or "", flow)
        row = self.http_row(flow["id"])
        self.assertEqual(row["synthetic"], 1, row)
        self.assertEqual(row["status"], 502, row)
        errors = poll(lambda: self.query("SELECT phase, message FROM errors WHERE flow_id = ?", flow["id"]), FLOW_TIMEOUT)
        self.assertEqual(errors[0]["phase"], "connect", errors)
        self.assertIn("cannot connect", errors[0]["message"], errors)
        self.assertTrue(stored_payload(self.data_dir, flow["id"], "down").startswith(b"Sluice: cannot connect"))

    # -----------------------------------------------------------------------------------------------------------------
    # 8

    def test_malformed_requests_are_refused_each_on_its_own_connection(self):
        origin = self.origin()
        sluice, port = self.proxy()
        drip_url = f"http://{HOST}:{origin.port}/drip"
        drip = start_thread(lambda: self.curl(drip_url, proxy_port=port))  # about a second at the origin
        poll(lambda: origin.requests_for("/drip"), 10, message="the parallel request did not reach the origin")

        def raw(request):
            sock = connect(port)
            try:
                try:
                    sock.sendall(request)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Sluice may answer and close before the whole request is sent; its answer is still read
                return local_port(sock), read_until_closed(sock, timeout=10)
            finally:
                sock.close()

        host = f"Host: {HOST}:{origin.port}\r\n"
        cases = {
            "garbage": (b"GARBAGE\r\n\r\n", 400),
            "huge-headers": (
                (f"GET http://{HOST}:{origin.port}/echo HTTP/1.1\r\n{host}".encode()
                 + b"".join(b"X-Filler-%02d: %s\r\n" % (i, b"f" * (7 << 10)) for i in range(10))
                 + b"\r\n"),
                431,
            ),
            "bad-chunk": (
                (f"POST http://{HOST}:{origin.port}/echo HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\nZZZ\r\n").encode(),
                400,
            ),
        }
        self.assertGreater(len(cases["huge-headers"][0]), 70 << 10)
        outcomes = {}
        for name, (request, expected) in cases.items():
            with self.subTest(case=name):
                client, answer = raw(request)
                outcomes[name] = client
                self.assertTrue(answer.startswith(b"HTTP/1.1 %d " % expected),
                                f"{name}: expected {expected}, got {answer[:200]!r}")
                head, _, body = answer.partition(b"\r\n\r\n")
                self.assertIn(b"connection: close", head.lower(), answer)
                self.assertTrue(body.startswith(b"Sluice: "), answer)

        # The parallel request on another connection was unaffected.
        result = join_thread(drip, 30, "parallel curl")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"".join(b"drip %d\n" % i for i in range(10)))

        for name, client in outcomes.items():
            with self.subTest(case=name):
                flow = sluice.wait_for_flow(client)
                self.assertEqual(flow["kind"], "http", flow)
                self.assertEqual(flow["state"], "error", flow)
                self.assertTrue(flow["error"], flow)
                errors = self.query("SELECT phase, message FROM errors WHERE flow_id = ?", flow["id"])
                self.assertTrue(errors, f"no errors row for {flow}")
                self.assertEqual(errors[0]["phase"], "client", errors)
                self.assertIn(errors[0]["message"], flow["error"], errors)
                self.assertTrue(stored_payload(self.data_dir, flow["id"], "down").startswith(b"Sluice: "), flow)
                # Sluice's own answer is part of the record: an http flow's JSON carries its status (int or null),
                # and the store keeps the status it sent along with the body it stored.
                self.assertEqual(flow.get("status"), cases[name][1],
                                 f"the {cases[name][1]} Sluice sent is not recorded for this http flow: {flow}")
        self.assertIn("chunk", sluice.flow_for_client(outcomes["bad-chunk"])["error"])

        # Still alive, still serving.
        self.assertIsNone(sluice.popen.poll(), sluice.stderr())
        after = self.curl(f"http://{HOST}:{origin.port}/bytes/500", proxy_port=port)
        self.assertEqual(after.returncode, 0, after.stderr)
        self.assertEqual(after.stdout, body_bytes(500))

    # -----------------------------------------------------------------------------------------------------------------
    # 9

    def test_fifty_mib_download_streams_with_bounded_memory(self):
        size = 50 << 20
        origin = self.origin()
        sluice, port = self.proxy()
        expected_sha = body_sha256(size)
        # Warm up once (code paths, allocator arenas) so that the baseline is not the cold process.
        warm = self.curl(f"http://{HOST}:{origin.port}/bytes/200000", "-o", os.devnull, proxy_port=port)
        self.assertEqual(warm.returncode, 0, warm.stderr)
        baseline = vm_rss_kib(sluice.pid)
        samples = [baseline]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    samples.append(vm_rss_kib(sluice.pid))
                except (OSError, AssertionError):
                    return
                done.wait(0.05)
        sampler = start_thread(sample)

        url = f"http://{HOST}:{origin.port}/bytes/{size}"
        sock = connect(port)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 << 10)
        reader = sock.makefile("rb")
        self.addCleanup(reader.close)
        started = time.monotonic()
        try:
            sock.sendall(f"GET {url} HTTP/1.1\r\nHost: {HOST}:{origin.port}\r\nConnection: close\r\n\r\n".encode())
            status, _, headers, _ = read_head(reader)
            self.assertEqual(status, 200)
            self.assertEqual(header(headers, "Content-Length"), str(size))
            digest = hashlib.sha256()
            received = 0
            first = reader.read(1 << 20)
            digest.update(first)
            received += len(first)
            time.sleep(0.5)  # a slow reader: the proxy must stop reading the origin, not buffer the rest
            sent_while_stalled = origin.body_bytes_sent
            while received < size:
                data = reader.read(min(1 << 20, size - received))
                if not data:
                    break
                digest.update(data)
                received += len(data)
            elapsed = time.monotonic() - started
        finally:
            done.set()
            join_thread(sampler, 10, "RSS sampler")
        self.assertEqual(received, size)
        self.assertEqual(digest.hexdigest(), expected_sha)
        growth_mib = (max(samples) - baseline) / 1024
        self.assertGreater(len(samples), 5, "too few RSS samples")
        if os.environ.get("SLUICE_E2E_VERBOSE"):
            print(f"\n  RSS baseline {baseline} KiB, max {max(samples)} KiB, growth {growth_mib:.1f} MiB, "
                  f"{len(samples)} samples, {elapsed:.2f}s, origin had sent {sent_while_stalled >> 10} KiB "
                  f"while the client had read 1 MiB")
        # Backpressure: with the client stalled after 1 MiB, only socket buffers' worth may leave the origin
        # (a few MiB per hop on loopback), not the whole body.
        self.assertLess(sent_while_stalled, 32 << 20,
                        f"the origin sent {sent_while_stalled} bytes while the client had read 1 MiB and stalled")
        self.assertLess(growth_mib, 64, f"sluice RSS grew by {growth_mib:.1f} MiB during a {size >> 20} MiB download "
                                        f"(baseline {baseline} KiB, max {max(samples)} KiB, {elapsed:.1f}s)")

        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual((flow["status"], flow["state"]), (200, "closed"), flow)
        self.assertEqual(flow_body_size(flow, "down"), size, flow)
        self.assertTrue(flow["payload_truncated"], flow)
        stored = stored_payload(self.data_dir, flow["id"], "down")
        self.assertEqual(len(stored), DEFAULT_MAX_BODY)
        self.assertEqual(stored, body_bytes(DEFAULT_MAX_BODY), "the stored body should be the body's first 4 MiB")

    # -----------------------------------------------------------------------------------------------------------------
    # 10

    def test_headless_log_prints_one_line_per_exchange(self):
        origin = self.origin()
        sluice, port = self.proxy(quiet=False)
        url = f"http://{HOST}:{origin.port}/bytes/10"
        result = self.curl("-w", "%{local_port}", "-o", os.devnull, url, proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)
        client_port = result.stdout.decode()
        line_pattern = re.compile(
            rf"^\d\d:\d\d:\d\d\.\d\d\d #\d+ {re.escape(HOST)}:{client_port} GET {re.escape(url)} << 200\b.*$", re.M
        )
        try:
            match = poll(lambda: line_pattern.search(sluice.stderr()), FLOW_TIMEOUT, interval=0.1)
        except AssertionError:
            self.fail(f"no exchange line for {url} in the headless log:\n{sluice.stderr()}")
        self.assertIn(f"GET {url} << 200", match.group(0))

    # -----------------------------------------------------------------------------------------------------------------
    # 11

    def test_connect_tunnel_to_a_tcp_echo_server(self):
        sluice, port = self.proxy()
        echo = self.server(echo_handler)
        sock = connect(port)
        self.addCleanup(sock.close)
        sock.sendall(f"CONNECT {HOST}:{echo.port} HTTP/1.1\r\nHost: {HOST}:{echo.port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(1)
            if not data:
                self.fail(f"connection closed inside the CONNECT response: {head!r}")
            head += data
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)

        payload = os.urandom(200_000)
        sender = start_thread(sock.sendall, payload)
        back = recv_all(sock, len(payload))
        join_thread(sender, IO_TIMEOUT, "tunnel sender")
        self.assertEqual(back, payload)
        sock.sendall(b"ping")
        self.assertEqual(recv_all(sock, 4), b"ping")
        sock.shutdown(socket.SHUT_WR)
        self.assertEqual(read_until_closed(sock), b"", "the echo server's close should end the tunnel")

        flow = sluice.wait_for_flow(local_port(sock))
        self.assertEqual(flow["kind"], "tcp", flow)
        self.assertEqual(flow["server"], f"{HOST}:{echo.port}", flow)
        self.assertEqual(flow["state"], "closed", flow)
        self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (len(payload) + 4, len(payload) + 4), flow)
        self.assertEqual(stored_payload(self.data_dir, flow["id"], "up"), payload + b"ping")
        self.assertEqual(stored_payload(self.data_dir, flow["id"], "down"), payload + b"ping")


if __name__ == "__main__":
    unittest.main()
