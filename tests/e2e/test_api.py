"""The control API (`--api`) with curl and Python: the bearer token (401 without it), the JSON envelope, 400 for bad
JSON and unknown fields, 404 for unknown ids, listeners added and stopped through it, flows read back with the
filter language, and the live event stream (Server-Sent Events) showing a flow as it happens. Also on a unix socket.

Sessions (issue 19): a bastion's front end opens a session for one user and one resource, then proxies for it on
free ports of `api.proxy_ports`; a real ssh and a real psql go through them to the test sshd and PostgreSQL, and
the session's commands, its recording, its alerts (acknowledged) and replays of its flows come back through the API.
A thousand proxies opened and closed leave no listener, descriptor or memory behind."""

import http.client
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (HOST, SLUICE_BIN, SluiceTest, echo_handler, flows_json, free_port, poll,  # noqa: E402
                     recv_exactly, run_cli)
import pg_support  # noqa: E402
import ssh_support  # noqa: E402
import test_http  # noqa: E402  (as a module: its test classes must not be collected a second time here)
import test_ssh_shell  # noqa: E402  (likewise)


class EventStream:
    """`GET /api/events` read on a thread of its own: every event as (name, data), until `close()`."""

    def __init__(self, port, token):
        self.events = []
        self.lock = threading.Lock()
        self.status = None
        self.ready = threading.Event()
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)
        self.connection.request("GET", "/api/events", headers={"Authorization": f"Bearer {token}"})
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise AssertionError("the event stream did not answer within 10 s")

    def _read(self):
        try:
            response = self.connection.getresponse()
            self.status = (response.status, response.getheader("Content-Type"))
            self.ready.set()
            name = None
            while True:
                line = response.fp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    with self.lock:
                        self.events.append((name, json.loads(line[6:])))
        except (OSError, ValueError, http.client.HTTPException):
            self.ready.set()

    def wait_for(self, predicate, timeout=20, what="event"):
        """The first event (name, data) `predicate` accepts."""
        def found():
            with self.lock:
                return next((event for event in self.events if predicate(*event)), None)
        return poll(found, timeout, message=f"{what} on the event stream")

    def close(self):
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.connection.close()
        self.thread.join(5)


class APIHelpers:
    """Starting sluice with the API, and calling it with curl or Python's http.client (`self.api_port`,
    `self.token`)."""

    def start_with_api(self, api, *extra, data_dir=None):
        """sluice --headless with a tcp listener to an echo server and the API on `api`; returns (proc, echo port)."""
        listen = free_port()
        target = free_port()
        proc = self.start_sluice([(listen, target)], "--api", api, *extra, data_dir=data_dir)
        echo = self.server(echo_handler, target)
        self.token_path = os.path.join(data_dir or self.data_dir, "api-token")
        def token():
            if not os.path.exists(self.token_path):
                return None
            with open(self.token_path) as f:
                return f.read().strip() or None
        self.token = poll(token, 10)
        return proc, echo.port

    def curl(self, method, path, body=None, token=True, unix=None, port=None):
        """`curl` to the API: returns (status, parsed envelope)."""
        args = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"]
        if token:
            args += ["-H", f"Authorization: Bearer {self.token if token is True else token}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", body]
        if unix:
            args += ["--unix-socket", unix, f"http://sluice{path}"]
        else:
            args.append(f"http://{HOST}:{port or self.api_port}{path}")
        result = subprocess.run(args, capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        text, _, status = result.stdout.rpartition("\n")
        return int(status), json.loads(text)

    def request(self, method, path, body=None, token=True):
        """The same with Python's http.client (for many requests): returns (status, parsed envelope). `body`: an
        object sent as JSON, or str/bytes sent as they are."""
        connection = http.client.HTTPConnection(HOST, self.api_port, timeout=30)
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        data = None
        if body is not None:
            data = body if isinstance(body, (str, bytes)) else json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def ok(self, method, path, body=None, status=200):
        """A request that must succeed with `status`; returns its `data`."""
        got, envelope = self.request(method, path, body)
        self.assertEqual(got, status, f"{method} {path}: {envelope}")
        self.assertTrue(envelope["success"], envelope)
        return envelope["data"]

    def events(self):
        stream = EventStream(self.api_port, self.token)
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, (200, "text/event-stream"))
        return stream

    def open_session(self, user="alice", resource="db-prod"):
        return self.ok("POST", "/api/sessions", {"user": user, "resource": resource}, status=201)

    def open_proxy(self, session, protocol, target_port):
        return self.ok("POST", f"/api/sessions/{session}/proxy", {"protocol": protocol, "target": f"{HOST}:{target_port}"},
                       status=201)


class ControlAPITest(APIHelpers, SluiceTest):
    def test_token_envelope_errors_listeners_flows_and_the_event_stream(self):
        self.api_port = free_port()
        proc, echo_port = self.start_with_api(f"{HOST}:{self.api_port}")
        self.assertEqual(stat.S_IMODE(os.stat(self.token_path).st_mode), 0o600)
        self.assertEqual(len(self.token), 64)

        # No token, a wrong one: 401, in the envelope.
        for token in (False, "0" * 64):
            status, envelope = self.curl("GET", "/api/stats", token=token)
            self.assertEqual(status, 401)
            self.assertEqual((envelope["success"], envelope["data"]), (False, None))
            self.assertIn("bearer token", envelope["message"])

        status, envelope = self.curl("GET", "/api/stats")
        self.assertEqual(status, 200, envelope)
        self.assertTrue(envelope["success"])
        self.assertEqual(envelope["data"]["listeners"], 1)
        self.assertIn("flows_by_kind", envelope["data"])

        # Bad JSON and unknown fields are 400s that say what is wrong; unknown ids 404s; unknown paths 404s.
        status, envelope = self.curl("POST", "/api/listeners", body="{not json")
        self.assertEqual(status, 400)
        self.assertIn("not JSON", envelope["message"])
        status, envelope = self.curl("POST", "/api/listeners", body=json.dumps({"spec": "tcp://:1=>h:2", "speed": 9}))
        self.assertEqual(status, 400)
        self.assertIn("unknown field 'speed'", envelope["message"])
        self.assertEqual(self.curl("DELETE", "/api/listeners/77")[0], 404)
        self.assertEqual(self.curl("GET", "/api/flows/999999")[0], 404)
        self.assertEqual(self.curl("GET", "/api/nothing")[0], 404)
        status, envelope = self.curl("GET", "/api/flows?filter=~bogus")
        self.assertEqual(status, 400)

        # The event stream, open before the flow happens.
        events = []
        ready = threading.Event()

        def read_stream():
            connection = http.client.HTTPConnection(HOST, self.api_port, timeout=20)
            connection.request("GET", "/api/events", headers={"Authorization": f"Bearer {self.token}"})
            response = connection.getresponse()
            events.append(("status", response.status, response.getheader("Content-Type")))
            ready.set()
            name = None
            while True:
                line = response.fp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
                    if name == "flow_closed":
                        connection.close()
                        return

        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()
        self.assertTrue(ready.wait(10))
        self.assertEqual(events[0], ("status", 200, "text/event-stream"))
        time.sleep(0.2)  # the hub has the stream before the flow opens

        port = free_port()
        spec = f"tcp://{HOST}:{port}=>{HOST}:{echo_port}"
        status, envelope = self.curl("POST", "/api/listeners", body=json.dumps({"spec": spec}))
        self.assertEqual(status, 201, envelope)
        self.assertEqual((envelope["data"]["id"], envelope["data"]["spec"], envelope["data"]["address"]), (2, spec, f"{HOST}:{port}"))
        status, envelope = self.curl("GET", "/api/listeners")
        self.assertEqual([listener["id"] for listener in envelope["data"]], [1, 2])

        with socket.create_connection((HOST, port), timeout=5) as client:
            client.sendall(b"through an API listener")
            self.assertEqual(recv_exactly(client, 23), b"through an API listener")
        reader.join(15)
        names = [event[0] for event in events[1:]]
        self.assertIn("flow_opened", names)
        self.assertIn("flow_closed", names)
        opened = next(data for name, data in events[1:] if name == "flow_opened")
        self.assertEqual(opened["kind"], "tcp")
        self.assertEqual(opened["listener"], spec)

        flow_id = opened["flow"]
        # The store has it once its writer's batch is in (the stream runs ahead of it).
        found = poll(lambda: (lambda r: r if flow_id in [f["id"] for f in r[1]["data"]] else None)(
            self.curl("GET", "/api/flows?filter=~tcp")), 10)
        self.assertEqual(found[0], 200)
        status, envelope = self.curl("GET", f"/api/flows/{flow_id}")
        self.assertEqual((status, envelope["data"]["id"], envelope["data"]["bytes_up"]), (200, flow_id, 23))

        status, envelope = self.curl("DELETE", "/api/listeners/2")
        self.assertEqual(status, 200, envelope)
        with self.assertRaises(OSError):
            socket.create_connection((HOST, port), timeout=2).close()
        self.assertEqual(self.curl("DELETE", "/api/listeners/2")[0], 404)
        self.assertEqual(self.curl("GET", "/api/intercept")[1]["data"], [])
        proc.stop()

    def test_recordings_listed_described_and_downloaded(self):
        self.api_port = free_port()
        self.start_with_api(f"{HOST}:{self.api_port}")
        cast = ('{"version": 2, "width": 100, "height": 30, "timestamp": 1796080701, "env": {"TERM": "xterm"}}\n'
                '[0.5, "o", "$ "]\n[1.25, "o", "ls\\r\\n"]\n')
        # As an SSH session leaves one (the SSH tests record real ones; here the API's side of it).
        os.makedirs(os.path.join(self.data_dir, "recordings"), mode=0o700, exist_ok=True)
        path = os.path.join(self.data_dir, "recordings", "7.cast")
        with open(path, "w") as f:
            f.write(cast)
        status, envelope = self.curl("GET", "/api/recordings")
        self.assertEqual(status, 200, envelope)
        self.assertEqual([(r["flow"], r["size"]) for r in envelope["data"]], [(7, len(cast.encode()))])
        status, envelope = self.curl("GET", "/api/recordings/7")
        self.assertEqual((status, envelope["data"]["width"], envelope["data"]["height"], envelope["data"]["term"]),
                         (200, 100, 30, "xterm"))
        self.assertEqual(self.curl("GET", "/api/recordings/8")[0], 404)
        result = subprocess.run(["curl", "-sS", "-D", "-", "-H", f"Authorization: Bearer {self.token}",
                                 f"http://{HOST}:{self.api_port}/api/recordings/7/cast"],
                                capture_output=True, text=True, timeout=20)
        head, _, body = result.stdout.partition("\n\n")  # text mode reads \r\n as \n
        self.assertIn("200 OK", head)
        self.assertIn("application/x-asciicast", head.lower())
        self.assertEqual(body, cast)
        self.assertEqual(self.curl("GET", "/api/recordings/8/cast")[0], 404)

    def test_a_connection_that_never_finishes_its_request_is_closed(self):
        self.api_port = free_port()
        self.start_with_api(f"{HOST}:{self.api_port}")
        with socket.create_connection((HOST, self.api_port), timeout=20) as idle:
            idle.sendall(b"GET /api/stats HTTP/1.1\r\nHost: a\r\n")  # and never the end of the head
            started = time.monotonic()
            self.assertEqual(idle.recv(1024), b"")
            self.assertLess(time.monotonic() - started, 15)

    def test_a_unix_socket_private_to_its_user(self):
        path = os.path.join(self.tmp, "api.sock")
        self.start_with_api(f"unix:{path}")
        poll(lambda: os.path.exists(path) or None, 10)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        status, envelope = self.curl("GET", "/api/stats", unix=path)
        self.assertEqual((status, envelope["success"]), (200, True))
        self.assertEqual(self.curl("GET", "/api/stats", unix=path, token=False)[0], 401)

    def test_a_bad_api_address_stops_the_start_with_one_line(self):
        result = subprocess.run(
            [SLUICE_BIN, "--headless", "--data-dir", self.data_dir, "--api", "nowhere"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("api.listen: expected HOST:PORT", result.stderr)



def can_bind(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def free_range(count):
    """`count` consecutive ports nothing listens on, below the ephemeral range (so `free_port()` never hands one out)."""
    import random
    for _ in range(500):
        lower = random.randint(20000, 32000 - count)
        if all(can_bind(port) for port in range(lower, lower + count)):
            return lower, lower + count - 1
    raise AssertionError(f"no {count} free consecutive ports found")


def listening_in(lower, upper):
    """The ports of lower..upper something listens on, as `ss -ltn` sees them."""
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, timeout=10, check=True).stdout
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            port = int(fields[3].rpartition(":")[2])
            if lower <= port <= upper:
                ports.add(port)
    return ports


def origin_server(test):
    """A real HTTP/1.1 origin (test_http's), stopped at the end of the test."""
    server = test_http.OriginServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop():
        server.stop()
        thread.join(10)
    test.addCleanup(stop)
    return server


NEW_ROUTES = [
    ("POST", "/api/sessions"), ("GET", "/api/sessions"), ("GET", "/api/sessions/1"), ("DELETE", "/api/sessions/1"),
    ("POST", "/api/sessions/1/proxy"), ("GET", "/api/sessions/1/proxy"), ("DELETE", "/api/sessions/1/proxy/2"),
    ("GET", "/api/sessions/1/commands"), ("GET", "/api/commands?session=1"), ("POST", "/api/alerts/1/ack"),
    ("POST", "/api/flows/1/replay"),
]


class SessionAPITest(APIHelpers, SluiceTest):
    def start(self, ports=4, *extra):
        self.api_port = free_port()
        self.lower, self.upper = free_range(ports)
        proc, echo_port = self.start_with_api(f"{HOST}:{self.api_port}", "--api-proxy-ports", f"{self.lower}-{self.upper}", *extra)
        return proc, echo_port

    def test_sessions_and_their_tcp_and_http_proxies_flows_and_replays(self):
        proc, echo_port = self.start()
        for method, path in NEW_ROUTES:
            status, envelope = self.curl(method, path, body="{}" if method == "POST" else None, token=False)
            self.assertEqual((status, envelope["success"]), (401, False), f"{method} {path}")

        stream = self.events()
        status, envelope = self.curl("POST", "/api/sessions", body=json.dumps({"user": "alice", "resource": "db-prod"}))
        self.assertEqual(status, 201, envelope)
        session = envelope["data"]
        sid = session["id"]
        self.assertEqual((session["user"], session["resource"], session["state"], session["ended_at"], session["proxies"]),
                         ("alice", "db-prod", "open", None, []))

        # A TCP proxy on the first port of the range, on loopback, carrying the session's id into its flows.
        status, envelope = self.curl("POST", f"/api/sessions/{sid}/proxy",
                                     body=json.dumps({"protocol": "tcp", "target": f"{HOST}:{echo_port}"}))
        self.assertEqual(status, 201, envelope)
        tcp = envelope["data"]
        self.assertEqual((tcp["session"], tcp["host"], tcp["protocol"], tcp["target"]), (sid, HOST, "tcp", f"{HOST}:{echo_port}"))
        self.assertTrue(self.lower <= tcp["port"] <= self.upper, tcp)
        self.assertEqual(listening_in(self.lower, self.upper), {tcp["port"]})
        with socket.create_connection((HOST, tcp["port"]), timeout=10) as client:
            client.sendall(b"through a session")
            self.assertEqual(recv_exactly(client, 17), b"through a session")
        opened = stream.wait_for(lambda name, data: name == "flow_opened" and data.get("session") == sid, what="the proxy's flow")[1]
        self.assertEqual(opened["listener"], f"tcp://{HOST}:{tcp['port']}=>{HOST}:{echo_port}")
        stream.wait_for(lambda name, data: name == "flow_closed" and data["flow"] == opened["flow"])

        # An HTTP proxy: a reverse proxy to the origin.
        origin = origin_server(self)
        http = self.open_proxy(sid, "http", origin.port)
        self.assertNotEqual(http["port"], tcp["port"])
        result = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{HOST}:{http['port']}/echo?from=session"],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["path"], "/echo?from=session")

        self.assertEqual([p["id"] for p in self.ok("GET", f"/api/sessions/{sid}/proxy")], [tcp["id"], http["id"]])
        listed = {listener["id"]: listener["session"] for listener in self.ok("GET", "/api/listeners")}
        self.assertEqual((listed[tcp["id"]], listed[http["id"]], listed[1]), (sid, sid, None))
        flows = poll(lambda: (lambda found: found if len(found) == 2 else None)(self.ok("GET", f"/api/flows?session={sid}")), 10)
        self.assertEqual([f["kind"] for f in flows], ["tcp", "http"])
        self.assertTrue(all(f["session"] == sid for f in flows), flows)
        self.assertEqual(flows[0]["bytes_up"], 17)
        details = self.ok("GET", f"/api/sessions/{sid}")
        self.assertEqual((details["flows"], details["commands"], len(details["proxies"])), (2, 0, 2))
        # `sluice flows --json` names the session too.
        listed = flows_json(self.data_dir)
        self.assertEqual([f["session"] for f in listed if f["id"] in (flows[0]["id"], flows[1]["id"])], [sid, sid])
        self.assertEqual([f["session"] for f in listed if f["listener"].startswith(f"tcp://{HOST}:") and f["id"] < opened["flow"]],
                         [None], "the configured listener's (probe) flow belongs to no session")

        # Replays through the API, as the TUI's r does: the new flow names the original.
        http_flow = flows[1]["id"]
        status, envelope = self.curl("POST", f"/api/flows/{http_flow}/replay")
        self.assertEqual(status, 201, envelope)
        replayed = envelope["data"]
        self.assertEqual(replayed["replay_of"], http_flow)
        self.assertGreater(replayed["flow"], http_flow)
        self.assertIn(f"<- #{http_flow} GET", replayed["summary"])
        self.assertEqual(len(origin.requests_for("/echo?from=session")), 2)
        stored = poll(lambda: (lambda s, e: e["data"] if s == 200 else None)(*self.request("GET", f"/api/flows/{replayed['flow']}")), 10)
        self.assertEqual((stored["replay_of"], stored["session"]), (http_flow, None))
        other = origin_server(self)
        replayed = self.ok("POST", f"/api/flows/{http_flow}/replay", {"target": f"http://{HOST}:{other.port}"}, status=201)
        self.assertEqual(len(other.requests_for("/echo?from=session")), 1)
        status, envelope = self.request("POST", f"/api/flows/{http_flow}/replay", {"target": "gopher://x"})
        self.assertEqual(status, 400)
        self.assertIn("field 'target'", envelope["message"])
        status, envelope = self.request("POST", f"/api/flows/{flows[0]['id']}/replay")
        self.assertEqual(status, 409)
        self.assertIn("is tcp: only HTTP requests and PostgreSQL or MySQL sessions can be replayed", envelope["message"])
        self.assertEqual(self.request("POST", "/api/flows/999999/replay")[0], 404)
        status, envelope = self.request("POST", f"/api/flows/{http_flow}/replay", {"target": f"http://{HOST}:{free_port()}"})
        self.assertEqual(status, 502, envelope)
        self.assertIn("error", envelope["message"])

        # Stopping one proxy, then the session: its other proxies stop, its open connections would go on.
        self.assertEqual(self.request("DELETE", f"/api/sessions/{sid}/proxy/999")[0], 404)
        self.ok("DELETE", f"/api/sessions/{sid}/proxy/{tcp['id']}")
        with self.assertRaises(OSError):
            socket.create_connection((HOST, tcp["port"]), timeout=2).close()
        status, envelope = self.curl("DELETE", f"/api/sessions/{sid}")
        self.assertEqual(status, 200, envelope)
        self.assertEqual(envelope["data"]["state"], "ended")
        self.assertIn("1 proxy stopped", envelope["message"])
        self.assertEqual(listening_in(self.lower, self.upper), set())
        self.assertEqual([listener["id"] for listener in self.ok("GET", "/api/listeners")], [1])
        for method, path, body in [("DELETE", f"/api/sessions/{sid}", None), ("GET", f"/api/sessions/{sid}/proxy", None),
                                   ("POST", f"/api/sessions/{sid}/proxy", {"protocol": "tcp", "target": f"{HOST}:{echo_port}"})]:
            status, envelope = self.request(method, path, body)
            self.assertEqual(status, 409, f"{method} {path}: {envelope}")
            self.assertIn(f"session {sid} is ended", envelope["message"])
        self.assertEqual(self.request("DELETE", "/api/sessions/4242")[0], 404)
        self.assertEqual(self.request("GET", "/api/sessions/4242")[0], 404)
        sessions = self.ok("GET", "/api/sessions")
        self.assertEqual([(s["id"], s["state"]) for s in sessions], [(sid, "ended")])
        # A session still open when the recorder stops is over with it: the store says so at once.
        left_open = self.open_session()["id"]
        stream.close()
        proc.stop()
        with sqlite3.connect(f"file:{os.path.join(self.data_dir, 'sluice.sqlite')}?mode=ro", uri=True) as db:
            state, ended_at = db.execute("SELECT state, ended_at FROM sessions WHERE id = ?", (left_open,)).fetchone()
        self.assertEqual(state, "interrupted")
        self.assertIsNotNone(ended_at)

    def test_hostile_input_and_requests_racing_for_ports(self):
        self.start(ports=4)
        sid = self.open_session()["id"]
        # Bodies too large, bad JSON, unknown fields, wrong types, ids that are not numbers, ports that are not ports.
        status, envelope = self.request("POST", "/api/sessions", b'{"user": "' + b"a" * (2 << 20) + b'"}')
        self.assertEqual(status, 413, envelope)
        status, envelope = self.request("POST", "/api/sessions", "[" * 100000)
        self.assertEqual(status, 400)
        cases = [
            ("/api/sessions", {"user": "alice", "resource": "db", "ttl": 60}, "unknown field 'ttl'"),
            ("/api/sessions", {"user": "alice"}, "field 'resource' is required"),
            ("/api/sessions", {"user": ["alice"], "resource": "db"}, "field 'user' must be a string"),
            (f"/api/sessions/{sid}/proxy", {"protocol": "ssh", "target": "h:22", "bind": "0.0.0.0"}, "unknown field 'bind'"),
            (f"/api/sessions/{sid}/proxy", {"protocol": "telnet", "target": "h:23"}, "field 'protocol' must be one of"),
            (f"/api/sessions/{sid}/proxy", {"protocol": "tcp", "target": f"{HOST}:-22"}, "field 'target'"),
            (f"/api/sessions/{sid}/proxy", {"protocol": "tcp", "target": f"{HOST}:0"}, "field 'target'"),
            (f"/api/sessions/{sid}/proxy", {"protocol": "tcp", "target": f"{HOST}:65536"}, "field 'target'"),
            (f"/api/sessions/{sid}/proxy", {"protocol": "tcp", "target": 22}, "field 'target' must be a string"),
            ("/api/alerts/1/ack", {"by": "x" * 201}, "field 'by'"),
        ]
        for path, body, expected in cases:
            status, envelope = self.request("POST", path, body)
            self.assertEqual(status, 400, f"{path} {body}: {envelope}")
            self.assertIn(expected, envelope["message"])
        for method, path in [("GET", "/api/sessions/abc"), ("GET", "/api/sessions/-1"), ("GET", "/api/sessions/1e3"),
                             ("GET", "/api/sessions/99999999999999999999999"), ("DELETE", f"/api/sessions/{sid}/proxy/x"),
                             ("POST", "/api/alerts/x/ack"), ("POST", "/api/flows/-5/replay"), ("GET", "/api/commands?session=x")]:
            self.assertEqual(self.request(method, path, {} if method == "POST" else None)[0], 400, f"{method} {path}")
        self.assertEqual(listening_in(self.lower, self.upper), set())

        # One port of the range is taken by someone else: it is skipped. Eight requests race for the other three.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.bind((HOST, self.lower))
            squatter.listen(1)
            results = []
            lock = threading.Lock()

            def open_one():
                answer = self.request("POST", f"/api/sessions/{sid}/proxy", {"protocol": "tcp", "target": f"{HOST}:9"})
                with lock:
                    results.append(answer)
            threads = [threading.Thread(target=open_one) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            opened = [envelope["data"] for status, envelope in results if status == 201]
            refused = [envelope for status, envelope in results if status != 201]
            self.assertEqual(sorted(p["port"] for p in opened), [self.lower + 1, self.lower + 2, self.lower + 3], results)
            self.assertEqual(len(refused), 5)
            for envelope in refused:
                self.assertIn(f"no free port in api.proxy_ports {self.lower}-{self.upper}", envelope["message"])
            self.assertEqual(listening_in(self.lower, self.upper), set(range(self.lower, self.upper + 1)))
        self.ok("DELETE", f"/api/sessions/{sid}")
        self.assertEqual(listening_in(self.lower, self.upper), set())

    def test_a_bad_proxy_range_or_address_stops_the_start_with_one_line(self):
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write("api:\n  listen: 127.0.0.1:0\n  proxy_ports: 0-100\n")
        cases = [
            (["--api-proxy-ports", "20000-10000"], "--api-proxy-ports: expected LOW-HIGH, ports from 1 to 65535 with LOW <= HIGH"),
            (["--api-proxy-ports=-5-100"], "--api-proxy-ports: expected LOW-HIGH"),
            (["--config", config], "sluice.yaml:3: api.proxy_ports: expected LOW-HIGH"),
            (["--api-proxy-host", "localhost"], "api.proxy_host: expected an IP address"),
            (["--api-proxy-host", "192.0.2.1"], "api.proxy_host 192.0.2.1: cannot bind it: cannot assign requested address"),
        ]
        for args, expected in cases:
            data_dir = os.path.join(self.tmp, "never-made")
            result = subprocess.run(
                [SLUICE_BIN, "--headless", "--data-dir", data_dir, "--api", f"{HOST}:{free_port()}",
                 "--listen", f"tcp://{HOST}:{free_port()}=>{HOST}:9", *args],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 1, f"{args}: {result.stderr}")
            self.assertIn(expected, result.stderr, args)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertFalse(os.path.exists(data_dir), "nothing is created by a start that fails")


class SessionSSHTest(ssh_support.SSHTestCase, APIHelpers, SluiceTest):
    def test_ssh_through_a_session_proxy_its_commands_recording_and_alerts(self):
        # Sluice checks the target's host key: the test sshd's is known.
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(self.data_dir, "known_hosts"), "w") as f:
            f.write(self.sshd.known_hosts_line())
        self.api_port = free_port()
        lower, upper = free_range(4)
        proc, _ = self.start_with_api(f"{HOST}:{self.api_port}", "--api-proxy-ports", f"{lower}-{upper}")
        stream = self.events()
        sid = self.open_session(ssh_support.USER, "sshd")["id"]
        proxy = self.open_proxy(sid, "ssh", self.sshd.port)

        # A person at a terminal, through the proxy: a line, then exit.
        term = test_ssh_shell.Terminal(proxy["port"], ssh_support.askpass(self.tmp))
        self.addCleanup(term.close)
        term.read_until(b"$ ")
        term.type(b"echo hello from a session\r")
        term.read_until(b"hello from a session\r\n$ ")
        term.type(b"exit\r")
        self.assertEqual(term.wait(), 0)
        # An exec the policy blocks (critical): exit 126 and an alert.
        result = self.ssh(proxy["port"], f"{ssh_support.USER}@{HOST}", "sudo -u root rm -rf /")
        self.assertEqual(result.returncode, 126, result.stderr)

        # Live: the flow named the session, the commands as they were judged.
        opened = stream.wait_for(lambda n, d: n == "flow_opened" and d.get("session") == sid and d["kind"] == "ssh")[1]
        stream.wait_for(lambda n, d: n == "command" and d["text"] == "echo hello from a session" and d["flow"] == opened["flow"])
        stream.wait_for(lambda n, d: n == "command" and d["text"] == "sudo -u root rm -rf /" and d["risk"] == "critical")
        stream.wait_for(lambda n, d: n == "alert" and "rm -rf /" in d["message"])

        # The session's commands, all of them and by risk, two ways.
        texts = ["echo hello from a session", "exit", "sudo -u root rm -rf /"]
        commands = poll(lambda: (lambda c: c if len(c) >= 3 else None)(self.ok("GET", f"/api/sessions/{sid}/commands")), 15)
        self.assertEqual([c["text"] for c in commands], texts)
        self.assertEqual([c["user"] for c in commands], [ssh_support.USER] * 3)
        critical = self.ok("GET", f"/api/sessions/{sid}/commands?risk=critical")
        self.assertEqual([(c["text"], c["decision"]) for c in critical], [("sudo -u root rm -rf /", "blocked")])
        self.assertEqual(self.ok("GET", f"/api/commands?session={sid}"), commands)
        self.assertEqual(self.ok("GET", "/api/commands?session=4242"), [])

        # Its recording, through the API.
        interactive = commands[0]["flow"]
        self.assertIn(interactive, [f["id"] for f in self.ok("GET", f"/api/flows?session={sid}")])
        header = poll(lambda: (lambda s, e: e["data"] if s == 200 else None)(*self.request("GET", f"/api/recordings/{interactive}")), 10)
        self.assertEqual((header["width"], header["height"]), (100, 30))
        cast = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", f"Authorization: Bearer {self.token}",
                               f"http://{HOST}:{self.api_port}/api/recordings/{interactive}/cast"],
                              capture_output=True, text=True, timeout=20)
        first, *events = [json.loads(line) for line in cast.stdout.splitlines() if line.strip()]
        self.assertEqual(first["version"], 2)
        self.assertIn("hello from a session", "".join(e[2] for e in events if e[1] == "o"))

        # Its alert, acknowledged once: a second acknowledgement keeps the first.
        alert = poll(lambda: next((a for a in self.ok("GET", "/api/alerts?acknowledged=false&level=critical")
                                   if a["flow"] == commands[2]["flow"]), None), 10)
        self.assertEqual((alert["acknowledged"], alert["acknowledged_by"]), (False, None))
        status, envelope = self.curl("POST", f"/api/alerts/{alert['id']}/ack", body=json.dumps({"by": "e2e-operator"}))
        self.assertEqual(status, 200, envelope)
        acknowledged = envelope["data"]
        self.assertEqual((acknowledged["acknowledged"], acknowledged["acknowledged_by"]), (True, "e2e-operator"))
        again = self.ok("POST", f"/api/alerts/{alert['id']}/ack", {"by": "someone-else"})
        self.assertEqual((again["acknowledged_by"], again["acknowledged_at"]), ("e2e-operator", acknowledged["acknowledged_at"]))
        self.assertEqual(self.ok("POST", f"/api/alerts/{alert['id']}/ack")["acknowledged_by"], "e2e-operator")
        self.assertIn(alert["id"], [a["id"] for a in self.ok("GET", "/api/alerts?acknowledged=true")])
        self.assertNotIn(alert["id"], [a["id"] for a in self.ok("GET", "/api/alerts?acknowledged=false")])
        self.assertEqual(self.request("POST", "/api/alerts/999999/ack")[0], 404)
        listed = [json.loads(line) for line in run_cli("alerts", "--data-dir", self.data_dir, "--json").stdout.splitlines()]
        self.assertEqual(next(a for a in listed if a["id"] == alert["id"])["acknowledged_by"], "e2e-operator")
        table = run_cli("alerts", "--data-dir", self.data_dir).stdout.decode().splitlines()
        self.assertTrue(any(" e2e-operator " in line for line in table[1:]), table)

        # Ended, and after a restart: the session and its commands are still found by it.
        self.ok("DELETE", f"/api/sessions/{sid}")
        stream.close()
        proc.stop()
        self.api_port = free_port()
        self.start_with_api(f"{HOST}:{self.api_port}", "--api-proxy-ports", f"{lower}-{upper}")
        details = self.ok("GET", f"/api/sessions/{sid}")
        self.assertEqual((details["state"], details["commands"], details["proxies"]), ("ended", 3, []))
        self.assertEqual([c["text"] for c in self.ok("GET", f"/api/sessions/{sid}/commands")], texts)
        self.assertEqual(next(f for f in flows_json(self.data_dir) if f["id"] == interactive)["session"], sid)


class SessionPostgresTest(pg_support.PostgresTestCase, APIHelpers, SluiceTest):
    def test_psql_through_a_session_proxy_and_a_replay_whose_password_is_never_kept(self):
        self.pg.admin("CREATE TABLE IF NOT EXISTS api_replayed (n int);", database=pg_support.DATABASE)
        self.pg.admin(f"GRANT ALL ON api_replayed TO {pg_support.SCRAM_USER};", database=pg_support.DATABASE)
        self.api_port = free_port()
        lower, upper = free_range(4)
        proc, _ = self.start_with_api(f"{HOST}:{self.api_port}", "--api-proxy-ports", f"{lower}-{upper}")
        stream = self.events()
        sid = self.open_session(pg_support.SCRAM_USER, "postgres")["id"]
        proxy = self.open_proxy(sid, "postgres", self.pg.port)

        statements = ["INSERT INTO api_replayed VALUES (1);", "GRANT SELECT ON api_replayed TO PUBLIC;",
                      "SELECT count(*) FROM api_replayed;"]
        result = self.pg.psql(["-Atq"], user=pg_support.SCRAM_USER, port=proxy["port"], input="\n".join(statements) + "\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["1"])
        opened = stream.wait_for(lambda n, d: n == "flow_opened" and d.get("session") == sid and d["kind"] == "postgres")[1]
        stream.wait_for(lambda n, d: n == "command" and d["flow"] == opened["flow"] and d["text"] == statements[0])

        commands = poll(lambda: (lambda c: c if len(c) >= 3 and all(x["result"] for x in c) else None)(
            self.ok("GET", f"/api/sessions/{sid}/commands")), 15)
        self.assertEqual([c["text"] for c in commands], statements)
        self.assertEqual([c["text"] for c in self.ok("GET", f"/api/sessions/{sid}/commands?risk=medium")], [statements[1]])
        flow = commands[0]["flow"]
        poll(lambda: self.ok("GET", f"/api/flows/{flow}")["state"] == "closed", 10)

        # Sluice keeps no password: without one the replay's login is refused, clearly.
        status, envelope = self.request("POST", f"/api/flows/{flow}/replay")
        self.assertEqual(status, 403, envelope)
        self.assertIn("password", envelope["message"])
        status, envelope = self.curl("POST", f"/api/flows/{flow}/replay", body=json.dumps({"password": pg_support.SCRAM_PASSWORD}))
        self.assertEqual(status, 201, envelope)
        replayed = envelope["data"]
        self.assertEqual(replayed["replay_of"], flow)
        self.assertIn(f"<- #{flow} postgres {pg_support.SCRAM_USER}@{pg_support.DATABASE}", replayed["summary"])
        self.assertIn("3 of 3 statements answered, 0 errors", replayed["summary"])
        self.assertEqual(self.pg.admin("SELECT count(*) FROM api_replayed;", database=pg_support.DATABASE).strip(), "2")
        again = poll(lambda: (lambda c: c if len(c) >= 3 else None)(self.ok("GET", f"/api/commands?flow={replayed['flow']}")), 10)
        self.assertEqual([c["text"] for c in again], statements)
        # One statement alone (the TUI's re-run, attached): the third, a count, as a new flow of its own.
        status, envelope = self.request("POST", f"/api/flows/{flow}/replay", {"password": pg_support.SCRAM_PASSWORD, "statement": 2})
        self.assertEqual(status, 201, envelope)
        self.assertIn("1 of 1 statements answered", envelope["data"]["summary"])
        single = poll(lambda: (lambda c: c if c else None)(self.ok("GET", f"/api/commands?flow={envelope['data']['flow']}")), 10)
        self.assertEqual([c["text"] for c in single], statements[2:])
        self.assertEqual(self.request("POST", f"/api/flows/{flow}/replay", {"statement": -1})[0], 400)
        status, envelope = self.request("POST", f"/api/flows/{flow}/replay",
                                        {"password": pg_support.SCRAM_PASSWORD, "target": f"{HOST}:{free_port()}"})
        self.assertEqual(status, 502, envelope)
        self.assertIn("stopped:", envelope["message"])
        status, envelope = self.request("POST", f"/api/flows/{flow}/replay", {"target": "http://not-a-database"})
        self.assertEqual(status, 400)
        self.assertIn("field 'target'", envelope["message"])
        stream.close()
        proc.stop()

        # The password given to the API is nowhere: not in the store, its logs, or what sluice said.
        secret = pg_support.SCRAM_PASSWORD.encode()
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(secret, f.read(), os.path.join(root, name))
        self.assertNotIn(pg_support.SCRAM_PASSWORD, proc.stderr())


class ThousandProxiesTest(APIHelpers, SluiceTest):
    def test_a_thousand_proxies_opened_and_closed_leave_no_listener_descriptor_or_memory(self):
        self.api_port = free_port()
        lower, upper = free_range(64)
        proc, echo_port = self.start_with_api(f"{HOST}:{self.api_port}", "--api-proxy-ports", f"{lower}-{upper}")

        def descriptors():
            return len(os.listdir(f"/proc/{proc.pid}/fd"))

        def rss_kib():
            with open(f"/proc/{proc.pid}/status") as f:
                return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))

        def api_listeners():
            return len(self.ok("GET", "/api/listeners"))

        def round_of(singles, sessions, per_session):
            """`singles` proxies opened and closed one by one (every 50th carries a connection), then `sessions`
            sessions of `per_session` proxies each, ended whole. Returns how many proxies were opened."""
            sid = self.open_session()["id"]
            for index in range(singles):
                proxy = self.open_proxy(sid, "tcp", echo_port)
                if index % 50 == 0:
                    with socket.create_connection((HOST, proxy["port"]), timeout=10) as client:
                        client.sendall(b"ping")
                        self.assertEqual(recv_exactly(client, 4), b"ping")
                self.ok("DELETE", f"/api/sessions/{sid}/proxy/{proxy['id']}")
            self.ok("DELETE", f"/api/sessions/{sid}")
            for _ in range(sessions):
                sid = self.open_session()["id"]
                ports = {self.open_proxy(sid, "tcp", echo_port)["port"] for _ in range(per_session)}
                self.assertEqual(listening_in(lower, upper), ports)
                self.ok("DELETE", f"/api/sessions/{sid}")
            return singles + sessions * per_session

        def settled(baseline):
            """Descriptors back to `baseline` (a closed API connection may take a moment), or the last count."""
            try:
                return poll(lambda: descriptors() if descriptors() <= baseline else None, 10)
            except AssertionError:
                return descriptors()

        # Warm-up: the store's statements, the event loops' buffers and the first allocations come once.
        fds_start, rss_start = descriptors(), rss_kib()
        round_of(100, 2, 50)
        time.sleep(0.5)
        fds_before, rss_before, listeners_before = descriptors(), rss_kib(), api_listeners()
        self.assertEqual(listening_in(lower, upper), set())

        started = time.monotonic()
        opened = round_of(500, 10, 50)
        seconds = time.monotonic() - started
        self.assertEqual(opened, 1000)
        time.sleep(0.5)
        fds_after, rss_after, listeners_after = settled(fds_before), rss_kib(), api_listeners()
        print(f"\nat start: descriptors {fds_start}, RSS {rss_start / 1024:.1f} MiB; after a warm-up of 200 proxies: "
              f"descriptors {fds_before}, RSS {rss_before / 1024:.1f} MiB", file=sys.stderr)
        print(f"1,000 proxies in {seconds:.1f} s: descriptors {fds_before} -> {fds_after}, API listeners "
              f"{listeners_before} -> {listeners_after}, listening in {lower}-{upper}: {len(listening_in(lower, upper))}, "
              f"RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB ({(rss_after - rss_before) / 1024:+.1f} MiB)",
              file=sys.stderr)
        self.assertEqual(fds_after, fds_before)
        self.assertEqual(listeners_after, listeners_before)
        self.assertEqual(listening_in(lower, upper), set())
        self.assertLess(rss_after - rss_before, 8 * 1024, "RSS grew by 8 MiB or more over 1,000 proxies")
        proc.stop()


if __name__ == "__main__":
    unittest.main()
