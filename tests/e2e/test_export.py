"""`sluice export` end to end: real requests recorded through the explicit proxy, then exported.

curl sends three requests through Sluice to an `http.server` origin (HTTP/1.1): a GET with a query string and
cookies, a POST with a JSON body, and a GET whose answer is gzip-encoded. The HAR export must load with `json.load`,
have every field PROTOCOLS.md §8 requires with the right JSON type, and hold the gzip answer decoded. The command
`sluice export --curl ID` prints is run with bash straight against the origin, which must then see the same
method, path, headers and body again. Filters select flows; a bad filter is one `sluice:` line.
"""

import asyncio
import base64
import gzip
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    HOST,
    IO_TIMEOUT,
    SLUICE_BIN,
    START_TIMEOUT,
    SluiceProcess,
    SluiceTest,
    free_port,
    poll,
    run_cli,
)

from test_websocket import EchoWebSocketServer, ws_connect  # noqa: E402  (None without python websockets)

CURL = "/usr/bin/curl"
CURL_TIMEOUT = 30
FLOW_TIMEOUT = 10.0
GZIP_TEXT = "compressed hello from the origin\n" * 50
POST_BODY = b'{"name":"sluice","quote":"it\'s","n":1}'
CUSTOM = ("X-Custom", "it's custom; v=1")


class Origin(http.server.ThreadingHTTPServer):
    """Records every request (method, path, headers in order, body) and answers by path."""

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__((HOST, 0), OriginHandler)
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.requests = []

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def seen(self):
        with self.lock:
            return list(self.requests)


class OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IO_TIMEOUT

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record({
            "method": self.command, "path": self.path, "headers": [[k, v] for k, v in self.headers.items()],
            "body": body,
        })
        extra = []
        if self.path.startswith("/page"):
            payload, content_type = b"<html>hello page</html>", "text/html; charset=utf-8"
            extra = [("Set-Cookie", "seen=1; Path=/; HttpOnly"), ("Set-Cookie", "lang=en; Path=/")]
        elif self.path.startswith("/submit"):
            payload, content_type = json.dumps({"ok": True, "got": len(body)}).encode(), "application/json"
        elif self.path.startswith("/gzip"):
            payload, content_type = gzip.compress(GZIP_TEXT.encode(), mtime=0), "text/plain; charset=utf-8"
            extra = [("Content-Encoding", "gzip")]
        else:
            payload, content_type = b"not found\n", "text/plain"
        self.send_response(404 if payload == b"not found\n" else 200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer  # noqa: N815 - http.server's naming
    do_POST = _answer  # noqa: N815
    do_PUT = _answer  # noqa: N815


def header(headers, name):
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def without_proxy_env():
    """The environment minus proxy settings, so that curl goes where the command says."""
    proxies = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    return {k: v for k, v in os.environ.items() if k.lower() not in proxies}


class ExportTest(SluiceTest):
    def setUp(self):
        super().setUp()
        self.origin = Origin()
        thread = threading.Thread(target=self.origin.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        def stop():
            self.origin.shutdown()
            self.origin.server_close()
            thread.join(10)
        self.addCleanup(stop)
        self.proxy_port = free_port()
        # A raw TCP listener whose target refuses: a connection to it records a non-HTTP flow that HAR must skip.
        self.tcp_port = free_port()
        self.sluice = self.start_proxy(self.proxy_port)

    def start_proxy(self, port):
        """`sluice --headless` with an explicit proxy listener, once it accepts (an HTTP probe that sends nothing
        records no flow)."""
        stderr_path = os.path.join(self.tmp, "sluice.stderr")
        args = [SLUICE_BIN, "--headless", "-q", "--data-dir", self.data_dir, "--listen", f"http://{HOST}:{port}",
                "--listen", f"tcp://{HOST}:{self.tcp_port}=>{HOST}:{free_port()}"]
        with open(stderr_path, "wb") as stderr:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        proc = SluiceProcess(popen, self.data_dir, stderr_path, [])
        self.addCleanup(proc.kill)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if popen.poll() is not None:
                self.fail(f"sluice exited with {popen.returncode}; stderr:\n{proc.stderr()}")
            try:
                probe = socket.create_connection((HOST, port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.fail(f"sluice not listening on {port} after {START_TIMEOUT}s; stderr:\n{proc.stderr()}")
                time.sleep(0.02)
        probe.close()
        return proc

    def url(self, path):
        return f"http://{HOST}:{self.origin.port}{path}"

    def curl(self, *args, proxy=True):
        command = [CURL, "-sS", "--max-time", str(CURL_TIMEOUT)]
        if proxy:
            command += ["-x", f"http://{HOST}:{self.proxy_port}"]
        result = subprocess.run(command + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=CURL_TIMEOUT + 10, env=without_proxy_env())
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        return result.stdout

    def export(self, *args):
        return run_cli("export", "--data-dir", self.data_dir, *args)

    def record_three(self):
        """The three requests through Sluice; returns their finished flows by name, from `sluice flows --json`."""
        urls = {
            "get": self.url("/page?q=hello%20world&lang=en&n=1&n=2"),
            "post": self.url("/submit?v=2"),
            "gzip": self.url("/gzip"),
        }
        self.curl(urls["get"], "-b", "session=abc123; theme=dark", "-H", "X-Trace: t-1")
        self.curl("-X", "POST", urls["post"], "-H", "Content-Type: application/json", "-H", f"{CUSTOM[0]}: {CUSTOM[1]}",
                  "--data-binary", POST_BODY)
        self.assertEqual(self.curl("--compressed", urls["gzip"]).decode(), GZIP_TEXT)

        def finished():
            flows = {f.get("url"): f for f in self.sluice.flows()}
            found = {name: flows.get(url) for name, url in urls.items()}
            return found if all(f and f["state"] in ("closed", "error") for f in found.values()) else None
        return poll(finished, FLOW_TIMEOUT, interval=0.1, message="three finished HTTP flows")

    def load_har(self, *filter_args):
        path = os.path.join(self.tmp, f"out-{len(os.listdir(self.tmp))}.har")
        result = self.export("--har", path, *filter_args)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, "an export holds cookies and tokens")
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    # --- HAR shape

    def assert_har_shape(self, har):
        def is_number(value):
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        def pairs(container, key):
            self.assertIsInstance(container[key], list, key)
            for pair in container[key]:
                self.assertIsInstance(pair.get("name"), str, f"{key}: {pair}")
                self.assertIsInstance(pair.get("value"), str, f"{key}: {pair}")

        log = har["log"]
        self.assertEqual(log["version"], "1.2")
        self.assertEqual(log["creator"]["name"], "sluice")
        version = run_cli("--version")
        self.assertEqual(version.returncode, 0)
        self.assertEqual(log["creator"]["version"], version.stdout.decode().strip(), "the HAR names the version `sluice --version` prints")
        self.assertIsInstance(log["entries"], list)
        for entry in log["entries"]:
            with self.subTest(url=entry.get("request", {}).get("url")):
                self.assertRegex(entry["startedDateTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
                self.assertTrue(is_number(entry["time"]))
                request = entry["request"]
                for key in ("method", "url", "httpVersion"):
                    self.assertIsInstance(request[key], str, key)
                for key in ("cookies", "headers", "queryString"):
                    pairs(request, key)
                for key in ("headersSize", "bodySize"):
                    self.assertTrue(is_number(request[key]), key)
                if "postData" in request:
                    self.assertIsInstance(request["postData"]["mimeType"], str)
                    self.assertIsInstance(request["postData"]["text"], str)
                response = entry["response"]
                for key in ("status", "headersSize", "bodySize"):
                    self.assertTrue(is_number(response[key]), key)
                for key in ("statusText", "httpVersion", "redirectURL"):
                    self.assertIsInstance(response[key], str, key)
                for key in ("cookies", "headers"):
                    pairs(response, key)
                self.assertTrue(is_number(response["content"]["size"]))
                self.assertIsInstance(response["content"]["mimeType"], str)
                self.assertIsInstance(entry["cache"], dict)
                timings = entry["timings"]
                for key in ("send", "wait", "receive"):
                    self.assertTrue(is_number(timings[key]) and timings[key] >= 0, f"timings.{key} = {timings[key]}")
                for key in ("blocked", "dns", "connect", "ssl"):
                    if key in timings:
                        self.assertTrue(is_number(timings[key]) and (timings[key] >= 0 or timings[key] == -1), key)
                # ssl is counted inside connect (HAR 1.2), so time sums the other phases.
                total = sum(timings[k] for k in ("blocked", "dns", "connect", "send", "wait", "receive")
                            if timings.get(k, -1) != -1)
                self.assertAlmostEqual(entry["time"], total, places=2)

    def entry_for(self, har, url):
        matching = [e for e in har["log"]["entries"] if e["request"]["url"] == url]
        urls = [e["request"]["url"] for e in har["log"]["entries"]]
        self.assertEqual(len(matching), 1, f"one entry for {url}; urls: {urls}")
        return matching[0]

    # -----------------------------------------------------------------------------------------------------------------

    def test_har_has_every_required_field_and_the_decoded_gzip_body(self):
        flows = self.record_three()
        har = self.load_har()
        self.assertEqual(len(har["log"]["entries"]), 3, [e["request"]["url"] for e in har["log"]["entries"]])
        self.assert_har_shape(har)

        get = self.entry_for(har, flows["get"]["url"])
        self.assertEqual(get["request"]["method"], "GET")
        self.assertEqual(get["request"]["httpVersion"], "HTTP/1.1")
        cookies = [(c["name"], c["value"]) for c in get["request"]["cookies"]]
        self.assertEqual(cookies, [("session", "abc123"), ("theme", "dark")])
        query = [(q["name"], q["value"]) for q in get["request"]["queryString"]]
        self.assertEqual(query, [("q", "hello world"), ("lang", "en"), ("n", "1"), ("n", "2")])
        self.assertEqual(header([(h["name"], h["value"]) for h in get["request"]["headers"]], "X-Trace"), "t-1")
        self.assertEqual(get["response"]["status"], 200)
        self.assertEqual(get["response"]["statusText"], "OK")
        self.assertEqual([c["name"] for c in get["response"]["cookies"]], ["seen", "lang"])
        self.assertTrue(get["response"]["cookies"][0].get("httpOnly"))
        self.assertEqual(get["response"]["content"]["text"], "<html>hello page</html>")
        self.assertEqual(get["response"]["content"]["mimeType"], "text/html; charset=utf-8")
        self.assertNotIn("postData", get["request"])
        self.assertEqual(get["serverIPAddress"], HOST)

        post = self.entry_for(har, flows["post"]["url"])
        self.assertEqual(post["request"]["method"], "POST")
        self.assertEqual(post["request"]["postData"]["mimeType"], "application/json")
        self.assertEqual(post["request"]["postData"]["text"], POST_BODY.decode())
        self.assertEqual(post["request"]["bodySize"], len(POST_BODY))
        self.assertEqual(json.loads(post["response"]["content"]["text"]), {"ok": True, "got": len(POST_BODY)})

        compressed = self.entry_for(har, flows["gzip"]["url"])
        content = compressed["response"]["content"]
        self.assertEqual(content["text"], GZIP_TEXT, "content.text is the decoded body")
        self.assertNotIn("encoding", content)
        self.assertEqual(content["size"], len(GZIP_TEXT.encode()), "content.size is the decoded length")
        wire = len(gzip.compress(GZIP_TEXT.encode(), mtime=0))
        self.assertEqual(compressed["response"]["bodySize"], wire, "bodySize is what travelled")
        self.assertEqual(content.get("compression"), len(GZIP_TEXT.encode()) - wire)

        # The same document on stdout.
        result = self.export("--har", "-")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(json.loads(result.stdout)["log"]["entries"]), 3)

    def test_curl_command_repeats_the_request_at_the_origin(self):
        flows = self.record_three()
        for name in ("post", "get"):
            with self.subTest(request=name):
                flow = flows[name]
                result = self.export("--curl", str(flow["id"]))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stderr, b"")
                command = result.stdout.decode()
                self.assertTrue(command.startswith("curl "), command)
                self.assertIn(f"'{flow['url']}'", command, "the origin's absolute URL, nothing to replace")
                path = flow["url"].split(str(self.origin.port), 1)[1]
                original = [r for r in self.origin.seen() if r["path"] == path]
                self.assertEqual(len(original), 1, self.origin.seen())
                before = len(self.origin.seen())
                run = subprocess.run(["bash", "-c", command], stdin=subprocess.DEVNULL, capture_output=True,
                                     timeout=CURL_TIMEOUT, env=without_proxy_env())
                self.assertEqual(run.returncode, 0, run.stderr.decode(errors="replace"))
                seen = self.origin.seen()
                self.assertEqual(len(seen), before + 1, "the command reached the origin once, directly")
                again, first = seen[-1], original[0]
                self.assertEqual(again["method"], first["method"])
                self.assertEqual(again["path"], first["path"])
                self.assertEqual(again["body"], first["body"])
                for name_ in ("Content-Type", CUSTOM[0], "X-Trace", "Cookie", "User-Agent", "Accept"):
                    self.assertEqual(header(again["headers"], name_), header(first["headers"], name_), name_)
        self.assertEqual(header(self.origin.seen()[-1]["headers"], "Cookie"), "session=abc123; theme=dark")

        # The gzip request asked for compression, so its command does too, and curl decodes the answer.
        result = self.export("--curl", str(flows["gzip"]["id"]))
        self.assertIn("--compressed", result.stdout.decode())
        run = subprocess.run(["bash", "-c", result.stdout.decode()], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=CURL_TIMEOUT, env=without_proxy_env())
        self.assertEqual(run.stdout.decode(), GZIP_TEXT)

    def test_filters_select_flows_and_jsonl_has_the_bodies(self):
        flows = self.record_three()
        har = self.load_har("~m POST")
        self.assert_har_shape(har)
        self.assertEqual([e["request"]["method"] for e in har["log"]["entries"]], ["POST"])
        har = self.load_har("~u", "gzip", "|", "~u", "page")  # a filter given as several words
        self.assertEqual(sorted(e["request"]["url"] for e in har["log"]["entries"]),
                         sorted([flows["get"]["url"], flows["gzip"]["url"]]))
        self.assertEqual(self.load_har("~c 404")["log"]["entries"], [])

        # A TCP flow is counted on stderr, not exported; a filter that leaves it out does not mention it.
        with socket.create_connection((HOST, self.tcp_port), timeout=IO_TIMEOUT) as tcp:
            tcp.settimeout(IO_TIMEOUT)
            try:
                tcp.recv(1)  # Sluice closes it once the target refuses
            except ConnectionResetError:
                pass
        poll(lambda: [f for f in self.sluice.flows() if f["kind"] == "tcp" and f["state"] in ("closed", "error")],
             FLOW_TIMEOUT, interval=0.1, message="a finished TCP flow")
        everything = os.path.join(self.tmp, "all.har")
        result = self.export("--har", everything)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.decode(), "sluice: skipped 1 flow that HAR cannot hold (tcp 1)\n")
        with open(everything, encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["log"]["entries"]), 3)
        result = self.export("--har", everything, "~m POST")
        self.assertEqual(result.stderr, b"")

        result = self.export("--jsonl", "-", "~m POST | ~u /gzip")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
        self.assertEqual([line["id"] for line in lines], [flows["post"]["id"], flows["gzip"]["id"]])
        post = lines[0]
        for key in ("kind", "client", "server", "start", "bytes_up", "bytes_down", "state", "method", "url", "status"):
            self.assertEqual(post[key], flows["post"][key], key)
        self.assertEqual(base64.b64decode(post["request"]["body"]), POST_BODY)
        self.assertEqual(header(post["request"]["headers"], CUSTOM[0]), CUSTOM[1])
        self.assertEqual(post["response"]["status"], 200)
        self.assertEqual(gzip.decompress(base64.b64decode(lines[1]["response"]["body"])).decode(), GZIP_TEXT,
                         "JSON Lines keep bodies as they travelled")

    @unittest.skipIf(ws_connect is None, "python websockets is not installed (scripts/setup --test installs it)")
    def test_websocket_messages_are_in_the_har(self):
        server = EchoWebSocketServer()
        self.addCleanup(server.close)

        async def talk():
            url = f"ws://{HOST}:{server.port}/chat"
            proxy = f"http://{HOST}:{self.proxy_port}"
            async with ws_connect(url, proxy=proxy, open_timeout=10, compression=None) as ws:
                await ws.send("hello ✓")
                first = await asyncio.wait_for(ws.recv(), 10)
                await ws.send(b"\x00\x01\xff")
                second = await asyncio.wait_for(ws.recv(), 10)
                return first, second

        self.assertEqual(asyncio.run(asyncio.wait_for(talk(), 30)), ("echo:hello ✓", b"\xff\x01\x00"))

        def finished():
            found = [f for f in self.sluice.flows() if f["kind"] == "websocket" and f["state"] in ("closed", "error")]
            return found or None
        [flow] = poll(finished, FLOW_TIMEOUT, interval=0.1, message="a finished WebSocket flow")
        har = self.load_har("~k ws")
        self.assert_har_shape(har)
        [entry] = har["log"]["entries"]
        self.assertEqual(entry["request"]["url"], flow["url"])
        self.assertEqual(entry["response"]["status"], 101)
        self.assertEqual(entry["_resourceType"], "websocket")
        frames = [(m["type"], m["opcode"], m["data"]) for m in entry["_webSocketMessages"]]
        self.assertEqual(frames, [
            ("send", 1, "hello ✓"), ("receive", 1, "echo:hello ✓"),
            ("send", 2, base64.b64encode(b"\x00\x01\xff").decode()),
            ("receive", 2, base64.b64encode(b"\xff\x01\x00").decode()),
        ])
        started = entry["_webSocketMessages"][0]["time"]
        self.assertIsInstance(started, float)
        self.assertLess(abs(started - time.time()), 600, "epoch seconds")
        # curl cannot speak WebSocket; saying so is one line.
        result = self.export("--curl", str(flow["id"]))
        self.assertEqual(result.returncode, 1)
        self.assertIn("WebSocket", result.stderr.decode())

    def test_mistakes_are_one_line(self):
        flows = self.record_three()

        def assert_one_line(result, *fragments):
            stderr = result.stderr.decode(errors="replace")
            self.assertEqual(result.returncode, 1, stderr)
            lines = stderr.splitlines()
            self.assertEqual(len(lines), 1, stderr)
            self.assertTrue(lines[0].startswith("sluice: "), lines[0])
            for fragment in fragments:
                self.assertIn(fragment, lines[0])
            self.assertEqual(result.stdout, b"")

        out = os.path.join(self.tmp, "bad.har")
        assert_one_line(self.export("--har", out, "~m POST &"), "column 10")
        assert_one_line(self.export("--har", out, "~nope"), "column 1", "~nope")
        self.assertFalse(os.path.exists(out), "a bad filter writes nothing")
        unwritable = os.path.join(self.tmp, "missing-dir", "x.har")
        assert_one_line(self.export("--har", unwritable), "cannot write", "missing-dir")
        assert_one_line(self.export("--curl", "99999"), "no flow 99999")
        assert_one_line(self.export("--curl", "abc"), "abc")
        assert_one_line(self.export(), "exactly one")
        assert_one_line(self.export("--har", out, "--curl", str(flows["get"]["id"])), "exactly one")
        assert_one_line(run_cli("export", "--data-dir", os.path.join(self.tmp, "empty"), "--har", "-"), "no store")


if __name__ == "__main__":
    unittest.main()
