"""TLS interception end to end: Sluice's CA (`sluice ca`), CONNECT tunnels that are intercepted with a minted leaf,
upstream certificate verification, passthrough, clients that reject Sluice's certificate, broken TLS, non-TLS
tunnels, a reverse proxy to an HTTPS backend and a large download through interception.

The peers are real: a test CA and a `localhost` server certificate made with the `openssl` CLI (once per run of
this module), an HTTPS origin (test_http's origin handler behind `ssl`), curl as the client where a real client fits,
and Python's `ssl` over a raw CONNECT socket where the certificate or the bytes on the wire matter.
"""

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# `python3 -m unittest tests.e2e.test_https` from the repository root as well as discovery inside tests/e2e.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_http  # noqa: E402  (imported as a module: its HTTPTest class must not be collected a second time here)
from support import (  # noqa: E402
    HOST,
    IO_TIMEOUT,
    SluiceTest,
    connect,
    echo_handler,
    free_port,
    join_thread,
    local_port,
    poll,
    recv_all,
    run_cli,
    start_thread,
    stored_payload,
)
from test_http import (  # noqa: E402
    CURL,
    CUSTOM_HEADER,
    OriginServer,
    body_bytes,
    flow_body_size,
    body_sha256,
    read_until_closed,
)

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL_MAX_TIME = 10
FLOW_TIMEOUT = 10.0
BROKEN_CLIENT_HELLO = bytes.fromhex("16030100 05ffffffffff".replace(" ", ""))
DECODE_ERROR_ALERT = bytes.fromhex("15030300020232")

# ---------------------------------------------------------------------------------------------------------------------
# Certificates: made once per module run with the openssl CLI.

_pki = None


def openssl(*args, cwd=None):
    result = subprocess.run([OPENSSL, *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    if result.returncode != 0:
        raise AssertionError(
            f"openssl {' '.join(args)} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
        )
    return result.stdout.decode(errors="replace")


class PKI:
    """A trusted test CA with a server certificate for localhost / 127.0.0.1, and a second CA nobody trusts."""

    def __init__(self, directory):
        self.dir = directory
        self.ca = self._ca("ca", "Sluice E2E Test CA")
        self.other_ca = self._ca("other-ca", "Sluice E2E Untrusted CA")
        self.server_cert, self.server_key = self._server("server", self.ca)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name, common_name):
        cert, key = self.path(f"{name}.pem"), self.path(f"{name}-key.pem")
        openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/O=Sluice E2E/CN={common_name}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return cert, key

    def _server(self, name, ca):
        cert, key, csr = self.path(f"{name}.pem"), self.path(f"{name}-key.pem"), self.path(f"{name}.csr")
        ext = self.path(f"{name}.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
        serial = str(int.from_bytes(os.urandom(8), "big"))
        openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", serial,
                "-days", "2", "-extfile", ext, "-out", cert)
        return cert, key


def setUpModule():  # noqa: N802 - unittest's name
    global _pki
    directory = tempfile.mkdtemp(prefix="sluice-e2e-pki-")
    try:
        _pki = PKI(directory)
    except BaseException:
        shutil.rmtree(directory, True)
        raise


def tearDownModule():  # noqa: N802
    if _pki is not None:
        shutil.rmtree(_pki.dir, True)


# ---------------------------------------------------------------------------------------------------------------------
# The HTTPS origin: test_http's origin behind TLS, TLS handshake in the connection's own thread.


class TLSOriginServer(OriginServer):
    def __init__(self, context):
        super().__init__()
        self.context = context

    def finish_request(self, request, client_address):
        # Without TCP_NODELAY, http.server's separate head and body writes meet delayed ACKs: ~40 ms per response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(IO_TIMEOUT)
        tls = self.context.wrap_socket(request, server_side=True)  # detaches `request`; a failed handshake raises
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def pem_of(der):
    return ssl.DER_cert_to_PEM_cert(der)


def der_of_pem_file(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def hex_fingerprint(text):
    """'sha256 Fingerprint=AB:CD:...' or 'AB:CD:...' -> 'abcd...'."""
    return text.rpartition("=")[2].replace(":", "").strip().lower()


def parse_heads(raw):
    """The last response head of a curl -D file (after a proxy's CONNECT head): (status, {name: [values]})."""
    text = raw.decode("latin-1")
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    last = blocks[-1].splitlines()
    status = int(last[0].split()[1])
    headers = {}
    for line in last[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers


def read_connect_head(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            raise AssertionError(f"connection closed inside the CONNECT response: {head!r}")
        head += data
    return head


# ---------------------------------------------------------------------------------------------------------------------


class HTTPSTest(test_http.HTTPHelpers, SluiceTest):
    def setUp(self):
        super().setUp()
        self.pki = _pki

    # --- fixtures

    def https_origin(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        server = TLSOriginServer(context)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        def stop():
            server.stop()
            thread.join(10)
        self.addCleanup(stop)
        return server

    def sluice_ca_path(self):
        return os.path.join(self.data_dir, "ca", "sluice-ca.pem")

    def curl(self, *args, proxy_port=None, cacert=None):
        command = [CURL, "-sS", "--max-time", str(CURL_MAX_TIME)]
        if proxy_port is not None:
            command += ["-x", f"http://{HOST}:{proxy_port}"]
        if cacert is not None:
            command += ["--cacert", cacert]
        command += list(args)
        return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=CURL_MAX_TIME + 10)

    def connect_tunnel(self, proxy_port, host, port):
        """A raw socket to the proxy with a CONNECT to host:port answered 200."""
        sock = connect(proxy_port)
        self.addCleanup(sock.close)
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = read_connect_head(sock)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        return sock

    def tls_over_tunnel(self, proxy_port, host, port, cafile, server_hostname="localhost", alpn=("h2", "http/1.1")):
        sock = self.connect_tunnel(proxy_port, host, port)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        tls = context.wrap_socket(sock, server_hostname=server_hostname)
        self.addCleanup(tls.close)
        return tls

    def wait_tcp_flow(self, proc, predicate, timeout=FLOW_TIMEOUT):
        [flow] = self.wait_flows(proc, lambda f: f["kind"] == "tcp" and predicate(f), timeout=timeout)
        return flow

    # -----------------------------------------------------------------------------------------------------------------
    # 1

    def test_ca_command_creates_the_ca_privately_and_reports_its_fingerprint(self):
        os.mkdir(self.data_dir, 0o700)
        shown = run_cli("ca", "--data-dir", self.data_dir)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        text = shown.stdout.decode()
        fields = {}
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            fields.setdefault(key, value.strip())
        ca_dir = os.path.join(self.data_dir, "ca")
        cert_path = os.path.join(ca_dir, "sluice-ca.pem")
        key_path = os.path.join(ca_dir, "sluice-ca-key.pem")
        self.assertEqual(fields.get("certificate"), cert_path, text)
        self.assertTrue(fields.get("key", "").startswith(key_path), text)
        self.assertEqual(stat.S_IMODE(os.stat(ca_dir).st_mode), 0o700, "the ca directory should be 0700")
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600, "the CA key should be 0600")
        self.assertFalse(os.stat(cert_path).st_mode & 0o022, "nobody but the owner may write the CA certificate")

        exported = run_cli("ca", "--data-dir", self.data_dir, "--export", "pem")
        self.assertEqual(exported.returncode, 0, exported.stderr)
        with open(cert_path, "rb") as f:
            on_disk = f.read()
        self.assertEqual(exported.stdout, on_disk, "--export pem should print the certificate file")
        self.assertTrue(on_disk.startswith(b"-----BEGIN CERTIFICATE-----"), on_disk[:60])

        out = self.path("exported.pem")
        written = run_cli("ca", "--data-dir", self.data_dir, "--export", "pem", "-o", out)
        self.assertEqual(written.returncode, 0, written.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), on_disk, "-o should write the same PEM")

        printed = fields.get("sha256", "")
        self.assertRegex(printed, r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$", text)
        expected = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", cert_path)
        self.assertEqual(hex_fingerprint(printed), hex_fingerprint(expected))
        self.assertEqual(hex_fingerprint(printed), hashlib.sha256(der_of_pem_file(cert_path)).hexdigest())
        details = openssl("x509", "-noout", "-text", "-in", cert_path)
        self.assertRegex(details, r"CA:TRUE", details)

        # A second call finds the same CA: nothing is re-created.
        again = run_cli("ca", "--data-dir", self.data_dir)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, shown.stdout)

    def test_ca_command_works_on_a_data_dir_that_does_not_exist_yet(self):
        # `sluice ca` is what a user runs first ("created on first use"); the data directory may not exist yet,
        # just as `sluice --headless --data-dir NEW` creates it.
        shown = run_cli("ca", "--data-dir", self.data_dir)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertTrue(os.path.isfile(self.sluice_ca_path()))
        self.assertEqual(stat.S_IMODE(os.stat(self.data_dir).st_mode), 0o700, "the data directory should be 0700")

    # -----------------------------------------------------------------------------------------------------------------
    # 2

    def test_intercepted_https_matches_a_direct_request_and_presents_a_leaf_from_sluices_ca(self):
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        sluice_ca = self.sluice_ca_path()
        self.assertTrue(os.path.isfile(sluice_ca))
        base = f"https://localhost:{origin.port}"
        echo_url, bytes_url = f"{base}/echo?n=1", f"{base}/bytes/70000"

        def fetch_both(prefix, cacert, proxy_port=None):
            """One curl run, two URLs (--next keeps the connection cache): heads and bodies to files."""
            common = ["--cacert", cacert, "-w", "%{local_port} %{num_connects} %{http_code}\n"]
            if proxy_port is not None:
                common += ["-x", f"http://{HOST}:{proxy_port}"]
            return self.curl(*common, "-D", self.path(f"{prefix}.h"), "-o", self.path(f"{prefix}.echo"), echo_url,
                             "--next", "--max-time", str(CURL_MAX_TIME), *common,
                             "-D", self.path(f"{prefix}2.h"), "-o", self.path(f"{prefix}.bin"), bytes_url)

        direct = fetch_both("direct", self.pki.ca[0])
        self.assertEqual(direct.returncode, 0, direct.stderr)
        proxied = fetch_both("proxied", sluice_ca, proxy_port=port)
        self.assertEqual(proxied.returncode, 0, proxied.stderr)
        lines = proxied.stdout.decode().split("\n")
        (local1, _, code1), (local2, connects2, code2) = (line.split() for line in lines[:2])
        self.assertEqual((code1, code2), ("200", "200"), proxied.stdout)
        self.assertEqual(local1, local2, "curl should have reused its connection to the proxy")
        self.assertEqual(connects2, "0", f"curl opened a second connection: {proxied.stdout}")

        # Status, the origin's headers and bodies: as without the proxy.
        for direct_head, proxied_head in (("direct.h", "proxied.h"), ("direct2.h", "proxied2.h")):
            with self.subTest(head=proxied_head):
                direct_status, direct_headers = parse_heads(test_http.read_file(self.path(direct_head)))
                proxied_status, proxied_headers = parse_heads(test_http.read_file(self.path(proxied_head)))
                self.assertEqual(proxied_status, direct_status)
                direct_headers.pop("date", None)
                proxied_headers.pop("date", None)
                self.assertEqual(proxied_headers, direct_headers)
                self.assertEqual(proxied_headers[CUSTOM_HEADER[0].lower()], [CUSTOM_HEADER[1]])
        direct_echo = json.loads(test_http.read_file(self.path("direct.echo")))
        proxied_echo = json.loads(test_http.read_file(self.path("proxied.echo")))
        self.assertEqual(proxied_echo, direct_echo, "the origin should see the same request through the proxy")
        self.assertEqual(test_http.read_file(self.path("proxied.bin")), body_bytes(70000))
        self.assertEqual(test_http.read_file(self.path("direct.bin")), body_bytes(70000))

        # The store: two http flows on one client connection, TLS time on the first only.
        [flow1] = self.flow_by_url(sluice, echo_url)
        [flow2] = self.flow_by_url(sluice, bytes_url)
        for flow in (flow1, flow2):
            self.assertEqual((flow["kind"], flow["method"], flow["status"], flow["state"]),
                             ("http", "GET", 200, "closed"), flow)
            self.assertIsNone(flow["error"], flow)
        self.assertEqual(flow1["client"], f"{HOST}:{local1}", flow1)
        self.assertEqual(flow2["client"], flow1["client"])
        self.assertEqual(flow_body_size(flow2, "down"), 70000, flow2)
        row1, row2 = self.http_row(flow1["id"]), self.http_row(flow2["id"])
        self.assertIsNotNone(row1["tls_ms"], row1)
        self.assertGreater(row1["tls_ms"], 0, row1)
        self.assertIsNone(row2["tls_ms"], f"the second request reused the server connection: {row2}")
        self.assertEqual(origin.connections, 2, "one origin connection for the direct curl, one for the proxy")

        # The leaf presented to the client: minted for localhost by Sluice's CA, ECDSA P-256, ALPN http/1.1.
        tls = self.tls_over_tunnel(port, "localhost", origin.port, sluice_ca)  # verifies chain and host name
        self.assertEqual(tls.selected_alpn_protocol(), "http/1.1")
        peer = tls.getpeercert()
        leaf_der = tls.getpeercert(binary_form=True)
        self.assertIn(("DNS", "localhost"), peer["subjectAltName"], peer)
        leaf_path = self.path("leaf.pem")
        with open(leaf_path, "w") as f:
            f.write(pem_of(leaf_der))
        issuer = openssl("x509", "-noout", "-issuer", "-nameopt", "RFC2253", "-in", leaf_path)
        ca_subject = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", sluice_ca)
        self.assertEqual(issuer.partition("=")[2].strip(), ca_subject.partition("=")[2].strip())
        leaf_text = openssl("x509", "-noout", "-text", "-in", leaf_path)
        self.assertIn("DNS:localhost", leaf_text)
        self.assertRegex(leaf_text, r"(prime256v1|P-256)", leaf_text)
        self.assertIn("ecdsa-with-SHA256", leaf_text)
        self.assertIn(": OK", openssl("verify", "-CAfile", sluice_ca, leaf_path))
        # The leaf alone: the client holds the CA already (RFC 8446 §4.4.2 lets a server leave the trust anchor out).
        transcript = openssl("s_client", "-proxy", f"{HOST}:{port}", "-connect", f"localhost:{origin.port}",
                             "-servername", "localhost", "-showcerts", "-CAfile", sluice_ca, "-verify_return_error")
        self.assertIn("Verify return code: 0 (ok)", transcript)
        self.assertEqual(transcript.count("-----BEGIN CERTIFICATE-----"), 1, transcript)
        # Minted once and kept on disk (so a restarted proxy presents the same certificate).
        cached = os.path.join(self.data_dir, "ca", "leaves", "localhost.pem")
        self.assertTrue(os.path.isfile(cached), os.listdir(os.path.dirname(cached)))
        self.assertEqual(der_of_pem_file(cached), leaf_der, "the cached leaf should be the one presented")
        # And the TLS connection carries HTTP to the origin.
        tls.sendall(f"GET /echo?raw=1 HTTP/1.1\r\nHost: localhost:{origin.port}\r\nConnection: close\r\n\r\n".encode())
        answer = read_until_closed(tls)
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:200])
        self.assertEqual(json.loads(answer.partition(b"\r\n\r\n")[2])["path"], "/echo?raw=1")
        self.assertEqual(origin.handler_errors, [])

    # -----------------------------------------------------------------------------------------------------------------
    # 3

    def test_upstream_certificate_is_verified_unless_insecure_upstream(self):
        origin = self.https_origin()
        cases = (
            ("system roots only", (), 502),
            ("a CA that did not sign it", ("--upstream-ca", self.pki.other_ca[0]), 502),
            ("--insecure-upstream", ("--insecure-upstream",), 200),
        )
        for number, (name, extra, expected) in enumerate(cases):
            with self.subTest(case=name):
                url = f"https://localhost:{origin.port}/echo?verify={number}"
                sluice, port = self.proxy(*extra)
                result = self.curl("-w", "\n%{http_code}", url, proxy_port=port, cacert=self.sluice_ca_path())
                self.assertEqual(result.returncode, 0, result.stderr)
                body, _, code = result.stdout.rpartition(b"\n")
                self.assertEqual(int(code), expected, body)
                [flow] = self.flow_by_url(sluice, url)
                self.assertEqual(flow["status"], expected, flow)
                if expected == 502:
                    self.assertIn(b"TLS handshake with localhost failed", body)
                    self.assertIn(b"did not verify", body)
                    self.assertEqual(flow["state"], "error", flow)
                    self.assertIn("did not verify", flow["error"] or "", flow)
                    self.assertEqual(self.http_row(flow["id"])["synthetic"], 1)
                else:
                    self.assertEqual(json.loads(body)["path"], f"/echo?verify={number}")
                    self.assertEqual(flow["state"], "closed", flow)
                # Like any run (test_store): SIGTERM ends it within 2 s, also right after an intercepted exchange.
                exit_code, elapsed = sluice.stop()
                self.assertEqual(exit_code, 0, sluice.stderr())
                self.assertLessEqual(elapsed, 2.0, f"sluice took {elapsed:.2f}s to exit after SIGTERM")
        self.assertEqual([r["path"] for r in origin.requests], ["/echo?verify=2"],
                         "only the insecure run reaches the origin")

    def test_connection_close_inside_an_intercepted_tunnel_records_only_the_exchange(self):
        # A client that ends the tunnel after one exchange (Connection: close) completed its TLS handshake: nothing
        # may be recorded as a rejected certificate.
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        url = f"https://localhost:{origin.port}/echo?close=1"
        result = self.curl("-H", "Connection: close", url, proxy_port=port, cacert=self.sluice_ca_path())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["path"], "/echo?close=1")
        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual((flow["status"], flow["state"]), (200, "closed"), flow)
        # Give stray records of the tunnel's end a moment to arrive (records are batched every ~50 ms).
        time.sleep(0.3)
        others = [(f["id"], f["kind"], f.get("method"), f["state"], f["error"])
                  for f in sluice.flows() if f["id"] != flow["id"]]
        self.assertEqual(others, [], "the tunnel's end should not be recorded as another flow")

    def test_a_client_that_leaves_without_close_notify_is_not_kept_waiting(self):
        # Most clients answer Sluice's close_notify by closing their socket without one of their own (browsers, load
        # generators, Python's ssl): once their end of stream arrives the socket closes, instead of staying in
        # CLOSE-WAIT until TLS gives up waiting (half a second, hundreds of sockets under load).
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        tls = self.tls_over_tunnel(port, "localhost", origin.port, self.sluice_ca_path(), alpn=None)
        tls.sendall(b"GET /echo?leaving=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = read_until_closed(tls)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
        client_port = local_port(tls)
        tls.close()  # the fd only: Python's ssl sends no close_notify without unwrap()

        def sluice_side_open():
            # Sluice's socket of this tunnel, in any state but TIME-WAIT (a closed socket leaves only that behind).
            out = subprocess.run(
                ["ss", "-tanH", f"sport = :{port} and dport = :{client_port}"], capture_output=True, text=True, timeout=5
            ).stdout
            return [line for line in out.splitlines() if line.strip() and not line.startswith("TIME-WAIT")]

        started = time.monotonic()
        poll(lambda: not sluice_side_open(), timeout=2, interval=0.01, message="Sluice's side of the tunnel closed")
        self.assertLess(time.monotonic() - started, 0.3, "closed on the client's end of stream, not on TLS's timeout")
        [flow] = self.flow_by_url(sluice, f"https://localhost:{origin.port}/echo?leaving=1")
        self.assertEqual((flow["status"], flow["state"]), (200, "closed"), flow)

    # -----------------------------------------------------------------------------------------------------------------
    # 4

    def test_a_server_connection_a_finished_tunnel_left_serves_the_next_tunnels(self):
        # Eight tunnels one after another, each one request with Connection: close: the origin sees at most one TLS
        # connection per event loop, the rest are the pool's (and their CONNECTs are answered without connecting).
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        for index in range(8):
            url = f"https://localhost:{origin.port}/echo?tunnel={index}"
            result = self.curl("-H", "Connection: close", url, proxy_port=port, cacert=self.sluice_ca_path())
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(json.loads(result.stdout)["path"], f"/echo?tunnel={index}")
        self.assertLess(origin.connections, 8, "no server connection was reused")
        self.assertLessEqual(origin.connections, os.cpu_count() or 1)
        flows = self.wait_flows(sluice, lambda f: f["kind"] == "http" and "tunnel=" in (f.get("url") or ""), count=8)
        self.assertEqual(len(flows), 8, flows)
        self.assertTrue(all((f["status"], f["state"]) == (200, "closed") for f in flows), flows)

        # A tunnel answered from the pool that turns out not to be TLS still gets a connection of its own (the TLS
        # origin drops it on the first bytes, which it would not do to a pooled connection's reader).
        sock = self.connect_tunnel(port, "localhost", origin.port)
        sock.sendall(b"\x00not tls\n")
        sock.settimeout(IO_TIMEOUT)
        self.assertEqual(read_until_closed(sock), b"", "the TLS origin closes on bytes that are not TLS")
        flow = sluice.wait_for_flow(local_port(sock))
        self.assertEqual((flow["kind"], flow["bytes_up"]), ("tcp", 9), flow)
        # Closed, or reset by the origin's TLS stack: either way connected, not a connect error.
        self.assertFalse((flow["error"] or "").startswith("connect"), flow)
        self.assertIn(flow["server"], (f"localhost:{origin.port}", f"{HOST}:{origin.port}"), flow)

    def test_passthrough_relays_the_origins_own_tls(self):
        origin = self.https_origin()
        sluice, port = self.proxy("--tls-passthrough", "localhost", "--upstream-ca", self.pki.ca[0])
        url = f"https://localhost:{origin.port}/echo?pass=1"
        # Trusting only the origin's CA: only the origin's own certificate can satisfy curl.
        result = self.curl("-w", "\n%{local_port}", url, proxy_port=port, cacert=self.pki.ca[0])
        self.assertEqual(result.returncode, 0, result.stderr)
        body, _, client = result.stdout.rpartition(b"\n")
        self.assertEqual(json.loads(body)["path"], "/echo?pass=1")
        self.assertEqual(len(origin.requests_for("/echo?pass=1")), 1)

        servers = (f"localhost:{origin.port}", f"{HOST}:{origin.port}")
        flow = self.wait_tcp_flow(sluice, lambda f: f["client"] == f"{HOST}:{int(client)}")
        self.assertIn(flow["server"], servers, flow)
        self.assertEqual(flow["state"], "closed", flow)
        self.assertGreater(flow["bytes_up"], 0, flow)
        self.assertGreater(flow["bytes_down"], 0, flow)
        self.assertFalse([f for f in sluice.flows() if f["kind"] == "http"], "passthrough must not record http flows")

        # Byte for byte the origin's certificate, over a raw tunnel.
        tls = self.tls_over_tunnel(port, "localhost", origin.port, self.pki.ca[0])
        self.assertEqual(tls.getpeercert(binary_form=True), der_of_pem_file(self.pki.server_cert))
        tls.close()
        leaves = os.path.join(self.data_dir, "ca", "leaves")
        minted = [n for n in (os.listdir(leaves) if os.path.isdir(leaves) else []) if n != "leaf-key.pem"]
        self.assertEqual(minted, [], "no leaf should be minted for a passthrough host")

    # -----------------------------------------------------------------------------------------------------------------
    # 5

    def test_client_that_does_not_trust_sluice_is_recorded_as_rejecting_its_certificate(self):
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        result = self.curl(f"https://localhost:{origin.port}/echo?untrusted=1", proxy_port=port)
        self.assertIn(result.returncode, (35, 60), result.stderr)
        flows = self.wait_flows(sluice, lambda f: f["kind"] == "http" and f.get("method") == "CONNECT")
        self.assertEqual(len(flows), 1, flows)
        [flow] = flows
        self.assertEqual(flow["state"], "error", flow)
        self.assertIn("Sluice's certificate", flow["error"] or "", flow)
        self.assertIn("rejected", flow["error"] or "", flow)
        self.assertEqual(origin.requests_for("/echo?untrusted=1"), [], "nothing may reach the origin")

    # -----------------------------------------------------------------------------------------------------------------
    # 6

    def test_broken_tls_after_connect_gets_a_decode_error_alert(self):
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        sink = self.server(lambda conn: recv_all(conn))
        drip_url = f"https://localhost:{origin.port}/drip"
        drip = start_thread(lambda: self.curl(drip_url, proxy_port=port, cacert=self.sluice_ca_path()))
        poll(lambda: origin.requests_for("/drip"), 10, message="the parallel request did not reach the origin")

        sock = self.connect_tunnel(port, HOST, sink.port)
        sock.sendall(BROKEN_CLIENT_HELLO)
        self.assertEqual(read_until_closed(sock, timeout=10), DECODE_ERROR_ALERT)

        flow = sluice.wait_for_flow(local_port(sock))
        self.assertEqual(flow["kind"], "tcp", flow)
        self.assertEqual(flow["state"], "error", flow)
        self.assertIn("client sent broken TLS instead of a ClientHello", flow["error"] or "", flow)
        self.assertEqual(flow["server"], f"{HOST}:{sink.port}", flow)

        result = join_thread(drip, 30, "parallel curl")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"".join(b"drip %d\n" % i for i in range(10)))
        after = self.curl(f"https://localhost:{origin.port}/bytes/500", proxy_port=port, cacert=self.sluice_ca_path())
        self.assertEqual(after.returncode, 0, after.stderr)
        self.assertEqual(after.stdout, body_bytes(500))
        sink.join(10)
        self.assertEqual(sink.results, [b""], "the broken ClientHello must not reach the target")

    # -----------------------------------------------------------------------------------------------------------------
    # 7

    def test_non_tls_bytes_after_connect_are_relayed_as_tcp(self):
        sluice, port = self.proxy()
        echo = self.server(echo_handler)
        sock = self.connect_tunnel(port, HOST, echo.port)
        # Neither a TLS record (0x16) nor an HTTP request line ("GET "...), which Sluice would proxy as HTTP.
        payload = b"\x00plain bytes, neither TLS nor HTTP\n" + os.urandom(50_000)
        sender = start_thread(sock.sendall, payload)
        self.assertEqual(recv_all(sock, len(payload)), payload)
        join_thread(sender, IO_TIMEOUT, "tunnel sender")
        sock.sendall(b"ping")
        self.assertEqual(recv_all(sock, 4), b"ping")
        sock.shutdown(socket.SHUT_WR)
        self.assertEqual(read_until_closed(sock), b"")
        flow = sluice.wait_for_flow(local_port(sock))
        self.assertEqual((flow["kind"], flow["state"], flow["server"]), ("tcp", "closed", f"{HOST}:{echo.port}"), flow)
        self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (len(payload) + 4, len(payload) + 4), flow)
        self.assertEqual(stored_payload(self.data_dir, flow["id"], "up")[:len(payload)], payload)

        # A server that speaks first (SSH, SMTP): the client sends nothing until it has the banner.
        banner = b"SSH-2.0-SluiceE2E\r\n"

        def speak_first(conn):
            conn.sendall(banner)
            return echo_handler(conn)
        talker = self.server(speak_first)
        sock = self.connect_tunnel(port, HOST, talker.port)
        sock.settimeout(5)
        self.assertEqual(recv_all(sock, len(banner)), banner, "the server's banner should reach a silent client")
        sock.sendall(b"client hello\n")
        self.assertEqual(recv_all(sock, 13), b"client hello\n")
        sock.shutdown(socket.SHUT_WR)
        self.assertEqual(read_until_closed(sock), b"")
        flow = sluice.wait_for_flow(local_port(sock))
        self.assertEqual((flow["kind"], flow["state"]), ("tcp", "closed"), flow)
        self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (13, len(banner) + 13), flow)

    # -----------------------------------------------------------------------------------------------------------------
    # 8

    def test_reverse_proxy_to_an_https_backend(self):
        origin = self.https_origin()
        rev = free_port()
        sluice = self.start_http_sluice(
            [(rev, f"reverse+http://{HOST}:{rev}=>https://localhost:{origin.port}")], "--upstream-ca", self.pki.ca[0]
        )
        result = self.curl("-H", "X-Test: reverse-tls", f"http://{HOST}:{rev}/echo?rev=1")
        self.assertEqual(result.returncode, 0, result.stderr)
        answer = json.loads(result.stdout)
        self.assertEqual(answer["path"], "/echo?rev=1")
        self.assertEqual(test_http.header(answer["headers"], "X-Test"), "reverse-tls")
        self.assertEqual(test_http.header(answer["headers"], "Host"), f"localhost:{origin.port}")
        [flow] = self.wait_flows(sluice, lambda f: f["kind"] == "http")
        self.assertTrue(flow["url"].startswith("https://localhost:"), flow)
        self.assertEqual(flow["url"], f"https://localhost:{origin.port}/echo?rev=1", flow)
        self.assertEqual((flow["status"], flow["state"]), (200, "closed"), flow)
        self.assertGreater(self.http_row(flow["id"])["tls_ms"] or 0, 0)

    # -----------------------------------------------------------------------------------------------------------------
    # 9

    def test_twenty_mib_download_through_interception_is_intact(self):
        size = 20 << 20
        origin = self.https_origin()
        sluice, port = self.proxy("--upstream-ca", self.pki.ca[0])
        url = f"https://localhost:{origin.port}/bytes/{size}"
        out = self.path("big.bin")
        started = time.monotonic()
        result = self.curl("-o", out, url, proxy_port=port, cacert=self.sluice_ca_path())
        elapsed = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result.stderr)
        digest = hashlib.sha256()
        with open(out, "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                digest.update(piece)
        self.assertEqual(os.path.getsize(out), size)
        self.assertEqual(digest.hexdigest(), body_sha256(size))
        if os.environ.get("SLUICE_E2E_VERBOSE"):
            print(f"\n  {size >> 20} MiB through interception in {elapsed:.2f}s")
        [flow] = self.flow_by_url(sluice, url)
        self.assertEqual((flow["status"], flow["state"], flow_body_size(flow, "down")), (200, "closed", size), flow)


if __name__ == "__main__":
    unittest.main()
