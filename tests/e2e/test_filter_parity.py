"""Filter parity with mitmproxy: the same recorded flows, the same expressions, the same selection.

A headless Sluice records a varied set of real flows: curl through the explicit proxy (GET and POST, bodies, HTML,
JSON, a form, CSS, JavaScript, an image, a font, a gzip body, a 404, a dead server's 502), a WebSocket opened through
the proxy (with its CONNECT tunnel), a raw TCP flow, and a replay (`sluice replay`). Every flow is then read back with
`sluice export --jsonl` and rebuilt as a mitmproxy `HTTPFlow` or `TCPFlow`; for each expression below, the flows
that mitmproxy's own `flowfilter` selects must be exactly those `sluice flows --filter` lists.

The rebuilt flows hold what Sluice recorded, nothing more: a response Sluice wrote itself (the dead server's 502)
is the flow's response there too, and a flow Sluice ended in error carries an error. Marks are not stored, so
`~marked` selects nothing on either side. Bare words are not compared: Sluice matches them against the URL or the
payload, mitmproxy against the URL only (a documented difference).

Needs mitmproxy (PyPI, installed by `scripts/setup --test`); skipped with the reason when it cannot be imported. On
mitmproxy 11.0 (the newest for Python 3.11) the test first makes its regexes case-insensitive, as 11.1 and later
have them (see `ignore_case_as_mitmproxy_11_1_does`).
"""

import asyncio
import base64
import gzip
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import unittest
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_http  # noqa: E402  (its helpers only; a class imported by name would run its tests here too)
from support import HOST, IO_TIMEOUT, SluiceTest, echo_handler, free_port, run_cli  # noqa: E402

try:
    from mitmproxy import connection as mitm_connection
    from mitmproxy import flow as mitm_flow
    from mitmproxy import flowfilter
    from mitmproxy import http as mitm_http
    from mitmproxy import tcp as mitm_tcp
    from mitmproxy import websocket as mitm_websocket
    from wsproto.frame_protocol import Opcode

    MITMPROXY_MISSING = None
except ImportError as error:  # scripts/setup --test installs it
    MITMPROXY_MISSING = f"mitmproxy cannot be imported ({error}); run scripts/setup --test"


def ignore_case_as_mitmproxy_11_1_does():
    """mitmproxy 11.1 made every filter regex case-insensitive (its `maybe_ignore_case`, mitmproxy PR 7483), and so
    are 12 and later; 11.0, the newest release for Python 3.11, matched bodies, headers and content types
    case-sensitively. On 11.0 this applies that one change, so the test compares Sluice with mitmproxy's meaning
    since 11.1."""
    if MITMPROXY_MISSING or hasattr(flowfilter, "maybe_ignore_case"):
        return
    compile_case_sensitively = flowfilter._Rex.__init__

    def __init__(self, expr):
        compile_case_sensitively(self, expr)
        self.re = re.compile(self.re.pattern, self.re.flags | re.IGNORECASE)

    flowfilter._Rex.__init__ = __init__


ignore_case_as_mitmproxy_11_1_does()

try:
    from websockets.asyncio.client import connect as ws_connect
except ImportError:
    ws_connect = None

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))

#: path -> (status, content type, body, extra headers)
PAGES = {
    "/index.html": (200, "text/html; charset=utf-8", b"<html><h1>Welcome</h1>\n<p>second line</p></html>", ()),
    "/style.css": (200, "text/css", b"body { color: red }\n", ()),
    "/app.js": (200, "application/javascript", b"console.log('parity');\n", ()),
    "/logo.png": (200, "image/png", PNG, (("Cache-Control", "max-age=60"),)),
    "/font.woff2": (200, "font/woff2", b"wOF2 font bytes", ()),
    "/notes.txt": (
        200, "text/plain", gzip.compress(b"compressed secret notes\n", mtime=0), (("Content-Encoding", "gzip"),)
    ),
    "/Shouty.CSS": (200, "TEXT/CSS", b"p {}\n", ()),
}

#: Sluice's own operators (`~k`, `~held`, `~risk`, `~cmd`) have no mitmproxy counterpart and are left out:
#: Tests/SluiceModelTests/FilterTests.swift and the TUI's tests cover them.
#: Every operator of mitmproxy's that applies to Sluice's flows, alone, negated and combined. `{origin}`, `{tcp}` and
#: `{dead}` are the origin's, the TCP echo server's and the dead server's ports. mitmproxy wants a space between an
#: operator without an argument and a `)` (its `~a)` is a parse error; Sluice reads both).
EXPRESSIONS = [
    "~all", "~http", "~tcp", "~websocket", "~q", "~s", "~e", "~marked", "~replay", "~replayq", "~replays", "~a",
    "~c 200", "~c 404", "~c 502", "~c 101", "~c 999",
    "~b secret", "~b Welcome", "~b 'second line'", "~b 'h1>.*second'", "~b ^console", "~b parity", "~b PING",
    "~bq alice", "~bq hunter2", "~bq '^PING'", "~bq 'hello parity'", "~bq .", "~bq '^$'",
    "~bs Welcome", "~bs 'compressed secret'", "~bs PNG", "~bs \\x89PNG", "~bs echo", "~bs '^PING'", "~bs '^$'",
    "~h x-trace", "~h 'x-served-by: parity'", "~h upgrade", "~h '^content-type: text/css'", "~h 'css$'",
    "~hq x-trace", "~hq x-served-by", "~hq '^host:'", "~hq websocket",
    "~hs x-served-by", "~hs x-trace", "~hs '^cache-control: max-age'", "~hs 'content-encoding: gzip'",
    "~t css", "~t json", "~t html", "~t image", "~t form", "~t plain",
    "~tq json", "~tq form", "~tq css", "~ts json", "~ts css", "~ts form", "~ts '^text/'",
    "~m GET", "~m POST", "~m ^P", "~m put", "~m CONNECT", "~m T$",
    "~d 127.0.0.1", "~d ^127\\.0\\.0\\.1$", "~d parity", "~d www", "~d nowhere",
    "~u style", "~u \\.css$", "~u /api", "~u missing", "~u 'parity.test'", "~u 127.0.0.1", "~u '^http://'",
    "~u chat", "~u ':{origin}/'",
    "~src 127.0.0.1", "~src ^127\\.0\\.0\\.1:\\d+$", "~src 10.9.9.9",
    "~dst 127.0.0.1", "~dst ':{origin}$'", "~dst ':{tcp}$'", "~dst ':{dead}$'", "~dst nowhere",
    "!~s", "!~http", "!~e", "!(~a | ~e )", "~http & !~websocket", "~s & ~c 200 | ~e",
    "( ~tcp | ~websocket ) & ~b hello",
    "~a | ~t json", "!(~a | ~e ) & ~http", "~replay & ~m POST", "!~replay & ~bq alice", "~q | ~tcp",
    "~m GET & ~t css & !~a", "~c 404 | ~c 502 | ~websocket", "~h x-trace ~d parity", "!!~tcp",
    "~hq x-trace | ~bs PING", "~e & ~c 502 & ~dst ':{dead}$'", "(~c 404 | ~c 502)", "!(~q | ~s )",
]


class ParityOrigin(http.server.BaseHTTPRequestHandler):
    """Serves PAGES; /api/* answers JSON that echoes the request body; anything else is a 404."""

    protocol_version = "HTTP/1.1"
    timeout = IO_TIMEOUT

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path.startswith("/api/"):
            status, content_type, answer, extra = 200, "application/json", json.dumps(
                {"method": self.command, "received": body.decode(errors="replace")}
            ).encode(), ()
        else:
            status, content_type, answer, extra = PAGES.get(path, (404, "text/plain", b"not found\n", ()))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Served-By", "parity")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming


class WebSocketEcho:
    """A `websockets` server in its own thread that answers each text message with "echo:" + it."""

    def __init__(self):
        from websockets.asyncio.server import serve

        self.port = free_port()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def handler(ws):
            try:
                async for message in ws:
                    await ws.send("echo:" + message)
            except Exception:  # noqa: BLE001 - a peer that goes away
                pass

        async def main():
            self._stop = asyncio.Event()
            async with serve(handler, HOST, self.port, compression=None):
                self._ready.set()
                await self._stop.wait()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(main())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("websocket server did not start")

    def close(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def endpoint(text):
    """Sluice's `host:port` / `[v6]:port` as an address tuple; None for `-:0` (no server was chosen)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return None if int(port) == 0 else (host, int(port))


def headers(pairs):
    return mitm_http.Headers([(name.encode(), value.encode()) for name, value in pairs])


def mitmproxy_flow(line):
    """One `sluice export --jsonl` line as the mitmproxy flow that holds the same recording."""
    client = mitm_connection.Client(peername=endpoint(line["client"]), sockname=("127.0.0.1", 0), timestamp_start=0.0)
    server = mitm_connection.Server(address=endpoint(line["server"]))
    request = line.get("request")
    if line["kind"] in ("http", "websocket"):
        flow = mitm_http.HTTPFlow(client, server)
        method = request["method"]
        if method.upper() == "CONNECT":
            authority = urlsplit(request["url"]).netloc if "://" in request["url"] else request["url"]
            host, port = endpoint(authority)
            scheme, authority, path = b"", authority.encode(), b""
        else:
            url = urlsplit(request["url"])
            host = url.hostname
            port = url.port or (443 if url.scheme == "https" else 80)
            scheme, authority = url.scheme.encode(), b""
            path = (url.path or "/").encode() + (b"?" + url.query.encode() if url.query else b"")
        flow.request = mitm_http.Request(
            host, port, method.encode(), scheme, authority, path, request["version"].encode(),
            headers(request["headers"]), base64.b64decode(request["body"]), None, 0.0, 0.0,
        )
        response = line.get("response")
        if response is not None:
            flow.response = mitm_http.Response(
                response["version"].encode(), response["status"], response["reason"].encode(),
                headers(response["headers"]), base64.b64decode(response["body"]), None, 0.0, 0.0,
            )
        if line["kind"] == "websocket":
            flow.websocket = mitm_websocket.WebSocketData()
            for message in line.get("messages", []):
                if message["kind"] in ("text", "binary"):
                    flow.websocket.messages.append(
                        mitm_websocket.WebSocketMessage(
                            Opcode.TEXT if message["kind"] == "text" else Opcode.BINARY,
                            message["direction"] == "up", base64.b64decode(message["payload"]),
                        )
                    )
        if request.get("replay_of") is not None:
            flow.is_replay = "request"
    elif line["kind"] == "tcp":
        flow = mitm_tcp.TCPFlow(client, server)
        for message in line.get("messages", []):
            content = base64.b64decode(message["payload"])
            flow.messages.append(mitm_tcp.TCPMessage(message["direction"] == "up", content))
    else:
        raise AssertionError(f"no mitmproxy flow for a {line['kind']} flow")
    if line["state"] == "error":
        flow.error = mitm_flow.Error(line.get("error") or "error")
    return flow


@unittest.skipIf(MITMPROXY_MISSING, MITMPROXY_MISSING or "")
class FilterParityTest(test_http.HTTPHelpers, SluiceTest):
    maxDiff = None

    def sluice_selects(self, expression):
        result = run_cli("flows", "--data-dir", self.data_dir, "--json", "--limit", "1000", "--filter", expression)
        self.assertEqual(result.returncode, 0, f"{expression}: {result.stderr.decode(errors='replace')}")
        return {json.loads(line)["id"] for line in result.stdout.decode().splitlines() if line.strip()}

    def record(self):
        """Records the flows (see the module's docstring); returns the ports the expressions name."""
        origin = http.server.ThreadingHTTPServer((HOST, 0), ParityOrigin)
        origin.daemon_threads = True
        threading.Thread(target=origin.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.addCleanup(origin.server_close)
        self.addCleanup(origin.shutdown)
        echo = self.server(echo_handler)
        dead = free_port()
        proxy_port, tcp_port = free_port(), free_port()
        proc = self.start_http_sluice(
            [(proxy_port, f"http://{HOST}:{proxy_port}"), (tcp_port, f"tcp://{HOST}:{tcp_port}=>{HOST}:{echo.port}")]
        )
        base = f"http://{HOST}:{origin.server_port}"
        requests = [
            ("-H", "X-Trace: abc123", "-H", "Host: www.parity.test", f"{base}/index.html"),
            (f"{base}/style.css",),
            (f"{base}/app.js",),
            (f"{base}/logo.png",),
            (f"{base}/font.woff2",),
            (f"{base}/notes.txt",),
            (f"{base}/Shouty.CSS",),
            (f"{base}/missing",),
            ("-H", "Content-Type: application/json", "--data-binary", '{"user": "alice", "token": "s3cret"}',
             f"{base}/api/login"),
            ("-X", "PUT", "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary",
             "name=bob&pass=hunter2", f"{base}/api/profile?v=2"),
            (f"http://{HOST}:{dead}/gone",),
        ]
        for args in requests:
            result = self.curl(*args, proxy_port=proxy_port)
            self.assertEqual(result.returncode, 0, result.stderr)

        with socket.create_connection((HOST, tcp_port), timeout=IO_TIMEOUT) as sock:
            sock.sendall(b"PING secret-tcp\n")
            received = b""
            while len(received) < 16:
                chunk = sock.recv(64)
                self.assertTrue(chunk, "the echo ended early")
                received += chunk
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(64):
                pass

        if ws_connect is not None:
            websocket_server = WebSocketEcho()
            self.addCleanup(websocket_server.close)

            async def talk():
                url = f"ws://{HOST}:{websocket_server.port}/chat"
                proxy = f"http://{HOST}:{proxy_port}"
                async with ws_connect(url, proxy=proxy, open_timeout=10, compression=None) as ws:
                    await ws.send("hello parity")
                    return await asyncio.wait_for(ws.recv(), 10)

            self.assertEqual(asyncio.run(asyncio.wait_for(talk(), 30)), "echo:hello parity")
        flows = self.wait_flows(
            proc, lambda f: f["kind"] == "http" and f.get("method") != "CONNECT", count=len(requests)
        )
        self.wait_flows(proc, lambda f: f["kind"] == "tcp" and f["bytes_up"] > 0)
        if ws_connect is not None:
            self.wait_flows(proc, lambda f: f["kind"] == "websocket")
        code, _ = proc.stop()
        self.assertEqual(code, 0, proc.stderr())

        login = [f for f in flows if f.get("url", "").endswith("/api/login")]
        self.assertEqual(len(login), 1, flows)
        result = run_cli("replay", str(login[0]["id"]), "--data-dir", self.data_dir, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        return {"origin": origin.server_port, "tcp": echo.port, "dead": dead}

    def test_sluice_selects_what_mitmproxy_selects(self):
        ports = self.record()
        exported = run_cli("export", "--data-dir", self.data_dir, "--jsonl", "-")
        self.assertEqual(exported.returncode, 0, exported.stderr.decode(errors="replace"))
        lines = [json.loads(line) for line in exported.stdout.decode().splitlines() if line.strip()]
        flows = {line["id"]: mitmproxy_flow(line) for line in lines}
        kinds = {line["kind"] for line in lines}
        self.assertTrue({"http", "tcp"} <= kinds, kinds)
        self.assertTrue(any(line.get("request", {}).get("replay_of") for line in lines if line["kind"] == "http"))
        self.assertTrue(any(line["state"] == "error" for line in lines))

        mismatches = []
        selected_somewhere = set()
        for template in EXPRESSIONS:
            expression = template.format(**ports)
            selects = flowfilter.parse(expression)
            mitmproxy = {flow_id for flow_id, flow in flows.items() if selects(flow)}
            sluice = self.sluice_selects(expression)
            selected_somewhere |= mitmproxy
            if mitmproxy != sluice:
                mismatches.append(
                    f"{expression!r}: mitmproxy {sorted(mitmproxy)}, sluice {sorted(sluice)}"
                )
        summary = "\n".join(
            f"  #{line['id']} {line['kind']} {(line.get('request') or {}).get('url', '')}" for line in lines
        )
        self.assertEqual(mismatches, [], f"flows:\n{summary}")
        self.assertEqual(selected_somewhere, set(flows), "every flow is selected by some expression")

    def test_a_bad_expression_is_one_line_with_its_column(self):
        result = run_cli("flows", "--data-dir", self.data_dir, "--filter", "~m POST &")
        stderr = result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 1, stderr)
        self.assertEqual(
            stderr.strip().splitlines(), ["sluice: filter '~m POST &': column 10: expected an expression after '&'"]
        )


if __name__ == "__main__":
    unittest.main()
