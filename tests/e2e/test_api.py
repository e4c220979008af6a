"""The control API (`--api`) with curl and Python: the bearer token (401 without it), the JSON envelope, 400 for bad
JSON and unknown fields, 404 for unknown ids, listeners added and stopped through it, flows read back with the
filter language, and the live event stream (Server-Sent Events) showing a flow as it happens. Also on a unix socket."""

import http.client
import json
import os
import socket
import stat
import subprocess
import threading
import time
import unittest

from support import HOST, SLUICE_BIN, SluiceTest, echo_handler, free_port, poll, recv_exactly


class ControlAPITest(SluiceTest):
    def start_with_api(self, api):
        """sluice --headless with a tcp listener to an echo server and the API on `api`; returns (proc, echo port)."""
        listen = free_port()
        target = free_port()
        proc = self.start_sluice([(listen, target)], "--api", api)
        echo = self.server(echo_handler, target)
        self.token_path = os.path.join(self.data_dir, "api-token")
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


if __name__ == "__main__":
    unittest.main()
