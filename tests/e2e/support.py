"""Shared helpers for Sluice's end-to-end tests.

Everything here talks to a real `sluice` binary over real sockets on 127.0.0.1. Every blocking call has a
timeout, every process and socket is cleaned up by the test that made it, and readiness is detected by
polling, never by sleeping a fixed time.

Readiness probing: to find out that a listener is up, `SluiceTest.start_sluice` connects to it. That
connection is a real flow, so the listener's target must NOT be listening yet: Sluice's connect to the target
is refused, Sluice closes the probe, and the probe flow ends in state `error`. Only then does the test start
its target server on the target port. Tests never see a probe's connection on their servers, and
`SluiceProcess.flows()` leaves probe flows out (they are recognised by the probe's client port).
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE_BIN = os.path.abspath(os.environ.get("SLUICE_BIN", os.path.join(REPO, ".build", "debug", "sluice")))

HOST = "127.0.0.1"
#: Upper bound for any single socket operation (connect, send, recv, accept).
IO_TIMEOUT = 30.0
#: Upper bound for a short CLI command (`sluice flows`, `sluice show`, a failing start).
CLI_TIMEOUT = 30.0
#: How long a started sluice may take to bind its listeners.
START_TIMEOUT = 20.0


def wait_for_binary(timeout=120.0):
    """The lead rebuilds the binary now and then; wait for it to be back rather than fail at once."""
    deadline = time.monotonic() + timeout
    while not (os.path.isfile(SLUICE_BIN) and os.access(SLUICE_BIN, os.X_OK)):
        if time.monotonic() > deadline:
            raise AssertionError(f"sluice binary not found at {SLUICE_BIN} (set SLUICE_BIN)")
        time.sleep(0.5)


def free_port():
    """A port nothing listens on right now: bind port 0, read it back, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def spec(listen_port, target_port):
    return f"tcp://{HOST}:{listen_port}=>{HOST}:{target_port}"


def connect(port, timeout=IO_TIMEOUT):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def local_port(sock):
    return sock.getsockname()[1]


def recv_all(sock, limit=None):
    """Reads until EOF (or `limit` bytes). Raises on timeout or reset."""
    chunks = []
    total = 0
    while limit is None or total < limit:
        data = sock.recv(min(1 << 20, (limit - total) if limit is not None else 1 << 20))
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def recv_exactly(sock, n):
    data = recv_all(sock, n)
    if len(data) != n:
        raise AssertionError(f"connection ended after {len(data)} of {n} expected bytes")
    return data


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pattern(length, seed):
    """`length` deterministic pseudo-random bytes (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])


def run_cli(*args, timeout=CLI_TIMEOUT):
    """Runs `sluice ARGS...` to completion; returns the CompletedProcess (stdout/stderr as bytes)."""
    wait_for_binary()
    return subprocess.run(
        [SLUICE_BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
    )


def run_replay(data_dir, *args, password_variable=None, password=None, timeout=60):
    """`sluice replay ARGS` on `data_dir`, with no database password in the environment unless `password` is given
    (as `password_variable`: PGPASSWORD or MYSQL_PWD). Returns (returncode, stdout, stderr) as text."""
    env = {key: value for key, value in os.environ.items() if key not in ("PGPASSWORD", "MYSQL_PWD")}
    if password is not None:
        env[password_variable] = password
    result = subprocess.run([SLUICE_BIN, "replay", "--data-dir", data_dir, *args], env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def flows_json(data_dir, limit=100000):
    """`sluice flows --json` parsed: a list of dicts, oldest first."""
    result = run_cli("flows", "--data-dir", data_dir, "--json", "--limit", str(limit))
    if result.returncode != 0:
        raise AssertionError(f"sluice flows failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]


def client_port(flow):
    host, _, port = flow["client"].rpartition(":")
    return int(port)


def stored_payload(data_dir, flow_id, direction):
    """The concatenated stored payloads of one direction of one flow, read straight from SQLite in seq order
    (a body kept once in `bodies` is read from there)."""
    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'sluice.sqlite')}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT coalesce(b.data, m.payload) FROM messages m LEFT JOIN bodies b ON b.id = m.body_id"
            " WHERE m.flow_id = ? AND m.direction = ? ORDER BY m.seq",
            (flow_id, direction),
        ).fetchall()
    finally:
        db.close()
    return b"".join(bytes(row[0]) for row in rows)


def poll(predicate, timeout, interval=0.05, message="condition not met"):
    """Calls `predicate` until it returns something truthy; returns that, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout}s")
        time.sleep(interval)


class SluiceProcess:
    """A running `sluice --headless`. Its stderr goes to a file so it can never block on a full pipe."""

    def __init__(self, popen, data_dir, stderr_path, listeners):
        self.popen = popen
        self.data_dir = data_dir
        self.stderr_path = stderr_path
        self.listeners = listeners
        self.probe_ports = set()

    @property
    def pid(self):
        return self.popen.pid

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def flows(self):
        """`sluice flows --json` without the readiness probes' flows."""
        return [f for f in flows_json(self.data_dir) if client_port(f) not in self.probe_ports]

    def flow_for_client(self, port):
        for flow in self.flows():
            if client_port(flow) == port:
                return flow
        return None

    def wait_for_flow(self, port, states=("closed", "error"), timeout=10.0):
        """Polls the store until the flow of the client with local port `port` is in one of `states`."""
        def check():
            flow = self.flow_for_client(port)
            return flow if flow is not None and flow["state"] in states else None
        try:
            return poll(check, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(
                f"flow of client port {port} not in {states} within {timeout}s; last seen: {self.flow_for_client(port)}"
            ) from None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends `sig` and waits for the exit. Returns (exit code, seconds from the signal to the exit)."""
        if self.popen.poll() is not None:
            return self.popen.returncode, 0.0
        start = time.monotonic()
        os.kill(self.popen.pid, sig)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"sluice did not exit within {timeout}s of signal {sig}; stderr:\n{self.stderr()}")
        return code, time.monotonic() - start

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def stop_sluice(proc, sig=signal.SIGTERM, timeout=15.0):
    return proc.stop(sig, timeout)


class TCPServer:
    """A target server on 127.0.0.1: one thread accepts, one thread per connection runs `handler(conn)`.

    Whatever a handler returns is appended to `results`; exceptions go to `errors`. Connections get IO_TIMEOUT.
    """

    def __init__(self, handler, port=0, backlog=512):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.results = []
        self.errors = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"server-{self.port}", daemon=True)
        self._acceptor.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            with self._lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _serve(self, conn):
        try:
            result = self.handler(conn)
            with self._lock:
                self.results.append(result)
        except Exception as error:  # noqa: BLE001 - reported by the test
            with self._lock:
                self.errors.append(error)
        finally:
            conn.close()

    def join(self, timeout=IO_TIMEOUT):
        """Waits for every connection handler started so far to finish."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in threads if t.is_alive()]
        if alive:
            raise AssertionError(f"{len(alive)} server handler(s) still running after {timeout}s")

    def close(self):
        self._stop.set()
        self._acceptor.join(5)
        self.sock.close()


def echo_handler(conn):
    """Echoes until EOF, then shuts its write side; returns the number of bytes echoed."""
    total = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        conn.sendall(data)
        total += len(data)
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    return total


def start_thread(target, *args):
    """Runs `target(*args)` in a daemon thread; `thread.result` / `thread.error` hold the outcome."""
    def run():
        try:
            thread.result = target(*args)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            thread.error = error
    thread = threading.Thread(target=run, daemon=True)
    thread.result = None
    thread.error = None
    thread.start()
    return thread


def join_thread(thread, timeout, what="thread"):
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{what} did not finish within {timeout}s")
    if thread.error is not None:
        raise thread.error
    return thread.result


class SluiceTest(unittest.TestCase):
    """Base class: a private temp dir per test and cleanup of everything started."""

    def setUp(self):
        wait_for_binary()
        self.tmp = tempfile.mkdtemp(prefix="sluice-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # Not created here: Sluice must create it (and with mode 0700).
        self.data_dir = os.path.join(self.tmp, "data")

    def server(self, handler, port=0):
        srv = TCPServer(handler, port)
        self.addCleanup(srv.close)
        return srv

    def start_sluice(self, listeners, *extra, quiet=True, data_dir=None, preexec_fn=None):
        """Starts `sluice --headless` with `listeners` = [(listen_port, target_port), ...] and returns once every
        listener accepts connections. The targets must not be listening yet (see the module docstring)."""
        data_dir = data_dir or self.data_dir
        self._runs = getattr(self, "_runs", 0) + 1
        stderr_path = os.path.join(self.tmp, f"sluice-{self._runs}.stderr")
        stdout_path = os.path.join(self.tmp, f"sluice-{self._runs}.stdout")
        args = [SLUICE_BIN, "--headless", "--data-dir", data_dir]
        for listen_port, target_port in listeners:
            args += ["--listen", spec(listen_port, target_port)]
        if quiet:
            args.append("-q")
        args += list(extra)
        with open(stderr_path, "wb") as stderr, open(stdout_path, "wb") as stdout:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, preexec_fn=preexec_fn)
        proc = SluiceProcess(popen, data_dir, stderr_path, listeners)
        self.addCleanup(proc.kill)
        for listen_port, _ in listeners:
            self._probe(proc, listen_port)
        return proc

    def _probe(self, proc, listen_port):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.popen.poll() is not None:
                self.fail(f"sluice exited with {proc.popen.returncode} before listening; stderr:\n{proc.stderr()}")
            try:
                probe = socket.create_connection((HOST, listen_port), timeout=1.0)
                break
            except OSError:  # refused (not bound yet), or a timeout
                if time.monotonic() > deadline:
                    self.fail(f"sluice not listening on {listen_port} after {START_TIMEOUT}s; stderr:\n{proc.stderr()}")
                time.sleep(0.02)
        with probe:
            proc.probe_ports.add(local_port(probe))
            probe.settimeout(IO_TIMEOUT)
            # Sluice closes the probe once its connect to the (not yet listening) target is refused. After that,
            # no connection of this probe can reach the target server the test starts next.
            try:
                leftover = probe.recv(1)
            except ConnectionResetError:
                leftover = b""
            self.assertEqual(leftover, b"", "readiness probe got data from a target that should not be up yet")


def self_signed_cert(directory, name="server"):
    """Writes `directory/NAME.crt` and `NAME.key`: a self-signed ECDSA P-256 certificate for localhost and
    127.0.0.1 (a CA certificate too, so a client can trust it as its own root). Returns (cert path, key path)."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=CLI_TIMEOUT,
    )
    return cert, key
