"""`sluice replay` end to end: requests recorded by a headless sluice (curl through the explicit proxy to origin A)
are sent again by `sluice replay` to origin B, recorded as new flows with `replay_of`; ranges with concurrency,
refusals (a cut body, a dead target, a store another sluice is recording into) and an https target.

Origins are test_http's `OriginServer` (it records every request: method, path, headers in order, body).
"""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

# `python3 -m unittest tests.e2e.test_replay` from the repository root as well as discovery inside tests/e2e.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_http  # noqa: E402  (as a module: its HTTPTest class must not be collected a second time here)
from test_http import flow_body_size  # noqa: E402
import test_https  # noqa: E402
from support import HOST, SluiceTest, flows_json, free_port, run_cli  # noqa: E402

REPLAY_TIMEOUT = 60
#: Headers that belong to one connection or name the server; everything else must arrive as recorded.
CONNECTION_HEADERS = {"host", "connection", "content-length", "transfer-encoding", "expect", "keep-alive", "proxy-connection"}


def end_to_end(headers):
    return [[k.lower(), v] for k, v in headers if k.lower() not in CONNECTION_HEADERS]


class ReplayTest(test_http.HTTPHelpers, SluiceTest):
    https_origin = test_https.HTTPSTest.https_origin  # uses self.pki

    # --- helpers

    def replay(self, *args):
        return run_cli("replay", *args, "--data-dir", self.data_dir, timeout=REPLAY_TIMEOUT)

    def record(self, requests, *extra):
        """Runs a headless proxy, sends each (curl args, url) through it, waits for the flows, stops it (SIGTERM).
        Returns the recorded flows, oldest first."""
        sluice, port = self.proxy(*extra)
        for args, url in requests:
            result = self.curl(*args, url, proxy_port=port)
            self.assertEqual(result.returncode, 0, result.stderr)
        urls = [url for _, url in requests]
        flows = self.wait_flows(sluice, lambda f: f.get("url") in urls, count=len(requests))
        code, _ = sluice.stop()
        self.assertEqual(code, 0, sluice.stderr())
        return flows

    def assert_one_line_failure(self, result, fragment):
        stderr = result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 1, f"exit code; stderr:\n{stderr}")
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got:\n{stderr}")
        self.assertTrue(lines[0].startswith("sluice: "), lines[0])
        self.assertIn(fragment, lines[0])
        self.assertNotIn("Fatal error", stderr)

    def replays_of(self, original_ids):
        return [f for f in flows_json(self.data_dir) if f.get("replay_of") in original_ids]

    # -----------------------------------------------------------------------------------------------------------------

    def test_replay_to_another_origin_sends_the_same_request_and_records_it(self):
        origin_a, origin_b = self.origin(), self.origin()
        body = b'{"name": "sluice", "blob": "' + bytes(range(32, 127)) * 20 + b'"}'
        url = f"http://{HOST}:{origin_a.port}/echo?x=1&y=two%20words"
        [flow] = self.record([(
            ["-X", "POST", "-H", "X-Replay-Tag: tag-4711", "-H", "X-Multi: one", "-H", "X-Multi: two",
             "-H", "Content-Type: application/json", "-H", "Cookie: session=abc", "--data-binary", body, "-o", os.devnull],
            url,
        )])
        self.assertEqual(flow["status"], 200, flow)
        [original] = origin_a.requests

        result = self.replay(str(flow["id"]), "--target", f"http://{HOST}:{origin_b.port}")
        stdout = result.stdout.decode(errors="replace")
        self.assertEqual(result.returncode, 0, f"stdout:\n{stdout}\nstderr:\n{result.stderr.decode(errors='replace')}")

        [replayed] = origin_b.requests
        self.assertEqual(replayed["method"], "POST")
        self.assertEqual(replayed["path"], "/echo?x=1&y=two%20words")
        self.assertEqual(replayed["body"], body)
        self.assertEqual(end_to_end(replayed["headers"]), end_to_end(original["headers"]),
                         "every end-to-end header, in order, repeats included")
        self.assertEqual(test_http.header_values(replayed["headers"], "X-Multi"), ["one", "two"])
        self.assertEqual(test_http.header(replayed["headers"], "Host"), f"{HOST}:{origin_b.port}")
        self.assertEqual(test_http.header(replayed["headers"], "Content-Length"), str(len(body)))
        self.assertEqual(len(origin_a.requests), 1, "the recorded server was not contacted again")

        lines = stdout.splitlines()
        self.assertEqual(len(lines), 2, stdout)
        new_url = f"http://{HOST}:{origin_b.port}/echo?x=1&y=two%20words"
        self.assertRegex(lines[0], rf"^#\d+ <- #{flow['id']} POST {re.escape(new_url)} -> 200 \S+ B \S+$")
        self.assertRegex(lines[1], r"^replayed 1: 200 x1; 0 failed; time min \S+, median \S+, max \S+$")

        replays = self.replays_of({flow["id"]})
        self.assertEqual(len(replays), 1, flows_json(self.data_dir))
        [new] = replays
        self.assertEqual(lines[0].split()[0], f"#{new['id']}")
        self.assertGreater(new["id"], flow["id"])
        self.assertEqual(new["kind"], "http")
        self.assertEqual(new["listener"], "replay")
        self.assertEqual(new["method"], "POST")
        self.assertEqual(new["url"], new_url)
        self.assertEqual(new["status"], 200)
        self.assertEqual(new["state"], "closed", new)
        self.assertEqual(flow_body_size(new, "up"), len(body))
        self.assertEqual(new["server"], f"{HOST}:{origin_b.port}")
        self.assertEqual(new["replay_of"], flow["id"])
        # Where a client address would be, the table and `show` name the original as the TUI does.
        table = run_cli("flows", "--data-dir", self.data_dir).stdout.decode()
        [line] = [l for l in table.splitlines() if l.split()[0] == str(new["id"])]
        self.assertRegex(line, rf"  replay of #{flow['id']}  +{re.escape(HOST)}:{origin_b.port}  ")
        self.assertNotIn("replay:0", table)
        shown = run_cli("show", str(new["id"]), "--data-dir", self.data_dir).stdout.decode()
        self.assertTrue(shown.startswith(f"flow {new['id']}  http  replay of #{flow['id']} -> "), shown)
        self.assertIn(f"(replay of #{flow['id']})\n", shown)
        [row] = self.query("SELECT * FROM http WHERE flow_id = ?", new["id"])
        self.assertIsNotNone(row["connect_ms"])
        self.assertIsNotNone(row["first_byte_ms"])
        self.assertIsNone(row["tls_ms"])
        stored = b"".join(r["payload"] for r in self.query(
            "SELECT payload FROM messages WHERE flow_id = ? AND direction = 'up' ORDER BY seq", new["id"]))
        self.assertEqual(stored, body)

    def test_a_range_with_concurrency_replays_every_flow(self):
        origin_a, origin_b = self.origin(), self.origin()
        paths = ["/status/200", "/echo?n=2", "/status/404"]
        flows = self.record([(["-o", os.devnull], f"http://{HOST}:{origin_a.port}{p}") for p in paths])
        ids = [f["id"] for f in flows]
        self.assertEqual(ids, list(range(ids[0], ids[0] + 3)), flows)

        result = self.replay(f"{ids[0]}-{ids[-1]}", "--concurrency", "2", "--target", f"http://{HOST}:{origin_b.port}")
        stdout = result.stdout.decode(errors="replace")
        self.assertEqual(result.returncode, 0, f"a 404 is still a response; stdout:\n{stdout}\n{result.stderr!r}")
        self.assertEqual(sorted(r["path"] for r in origin_b.requests), sorted(paths))
        lines = stdout.splitlines()
        self.assertEqual(len(lines), 4, stdout)
        self.assertEqual(sorted(int(re.search(r"<- #(\d+)", line).group(1)) for line in lines[:3]), ids)
        self.assertTrue(lines[3].startswith("replayed 3: 200 x2, 404 x1; 0 failed; time min "), lines[3])

        replays = self.replays_of(set(ids))
        self.assertEqual(sorted(f["replay_of"] for f in replays), ids)
        by_original = {f["replay_of"]: f for f in replays}
        self.assertEqual([by_original[i]["status"] for i in ids], [200, 200, 404])
        self.assertTrue(all(f["state"] == "closed" for f in replays), replays)
        self.assertEqual(len({f["id"] for f in replays}), 3, "each replay has its own id")

    def test_delay_spaces_the_starts_and_a_list_keeps_its_order(self):
        origin_a, origin_b = self.origin(), self.origin()
        flows = self.record([(["-o", os.devnull], f"http://{HOST}:{origin_a.port}/status/{s}") for s in (200, 201, 202)])
        ids = [f["id"] for f in flows]
        started = time.monotonic()
        result = self.replay(f"{ids[2]},{ids[0]}", "--delay", "400", "--target", f"http://{HOST}:{origin_b.port}")
        elapsed = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([r["path"] for r in origin_b.requests], ["/status/202", "/status/200"])
        self.assertGreaterEqual(elapsed, 0.4, "the second start waits for --delay")

    def test_without_a_target_the_recorded_server_gets_the_request_again(self):
        origin = self.origin()
        [flow] = self.record([(["-o", os.devnull, "-H", "X-Again: yes"], f"http://{HOST}:{origin.port}/echo")])
        result = self.replay(str(flow["id"]))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(origin.requests), 2)
        first, second = origin.requests
        self.assertEqual(end_to_end(second["headers"]), end_to_end(first["headers"]))
        self.assertEqual(test_http.header(second["headers"], "Host"), test_http.header(first["headers"], "Host"))

    def test_failures_are_reported_and_exit_1(self):
        origin_a, origin_b = self.origin(), self.origin()
        big = b"x" * 5000
        flows = self.record([
            (["-o", os.devnull], f"http://{HOST}:{origin_a.port}/status/200"),
            (["-o", os.devnull, "--data-binary", big], f"http://{HOST}:{origin_a.port}/echo"),
        ], "--max-body-bytes", "1000")
        ok, cut = (f["id"] for f in flows)

        # The body was stored cut: that replay is refused, the other one goes through.
        result = self.replay(f"{ok},{cut}", "--target", f"http://{HOST}:{origin_b.port}")
        stdout = result.stdout.decode(errors="replace")
        self.assertEqual(result.returncode, 1, stdout)
        self.assertEqual([r["path"] for r in origin_b.requests], ["/status/200"], "no request with a different body")
        self.assertRegex(stdout, rf"(?m)^#- <- #{cut} POST \S+ -> error: .*not recorded whole")
        self.assertIn("replayed 2: 200 x1; 1 failed", stdout)

        # A dead target: each replay is an error flow of its own.
        result = self.replay(str(ok), "--target", f"http://{HOST}:{free_port()}")
        stdout = result.stdout.decode(errors="replace")
        self.assertEqual(result.returncode, 1, stdout)
        self.assertRegex(stdout, rf"(?m)^#\d+ <- #{ok} GET \S+ -> error: cannot connect to .*refused")
        self.assertIn("replayed 1: no responses; 1 failed", stdout)
        errored = [f for f in self.replays_of({ok}) if f["state"] == "error"]
        self.assertEqual(len(errored), 1, self.replays_of({ok}))
        self.assertIn("refused", errored[0]["error"])

    def test_non_http_and_missing_flows_are_skipped_with_a_note(self):
        origin_a, origin_b = self.origin(), self.origin()
        http_port, tcp_port = free_port(), free_port()
        sluice = self.start_http_sluice([
            (http_port, f"http://{HOST}:{http_port}"),
            (tcp_port, f"tcp://{HOST}:{tcp_port}=>{HOST}:{free_port()}"),
        ])
        url = f"http://{HOST}:{origin_a.port}/status/200"
        result = self.curl("-o", os.devnull, url, proxy_port=http_port)
        self.assertEqual(result.returncode, 0, result.stderr)
        [http_flow] = self.wait_flows(sluice, lambda f: f.get("url") == url)
        # The readiness probe of the tcp listener is a tcp flow of its own (its target is down).
        tcp_flow = self.wait_flows(sluice, lambda f: f["kind"] == "tcp")[0]
        code, _ = sluice.stop()
        self.assertEqual(code, 0, sluice.stderr())

        missing = max(http_flow["id"], tcp_flow["id"]) + 50
        selection = f"{tcp_flow['id']},{http_flow['id']},{missing}"
        result = self.replay(selection, "--target", f"http://{HOST}:{origin_b.port}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.decode().splitlines(), [
            f"sluice: flow {tcp_flow['id']} is tcp, not an HTTP request; skipped",
            f"sluice: no flow {missing} in the store; skipped",
        ])
        self.assertEqual(len(origin_b.requests), 1)
        self.assertIn("replayed 1: 200 x1; 0 failed", result.stdout.decode())

        # Only missing flows: nothing to do is an error.
        result = self.replay(str(missing))
        self.assertEqual(result.returncode, 1)
        self.assertIn("nothing to replay", result.stderr.decode())

    def test_operator_mistakes_are_one_line(self):
        for args, fragment in (
            (["9-3"], "reversed range '9-3'"),
            (["abc"], "'abc' is not a flow id"),
            ([""], "empty selection"),
            (["1-200000"], "more than 100000"),
            (["1", "--target", f"http://{HOST}:8080/path"], "--target"),
            (["1", "--target", "ftp://example.com:21"], "--target"),
            (["1", "--concurrency", "0"], "--concurrency"),
        ):
            with self.subTest(args=args):
                self.assert_one_line_failure(self.replay(*args), fragment)
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "sluice.sqlite")), "nothing written on a mistake")
        self.assert_one_line_failure(self.replay("1"), "no store at")

    def test_replaying_into_a_store_a_running_sluice_records_into_is_refused(self):
        origin = self.origin()
        sluice, port = self.proxy()
        result = self.curl("-o", os.devnull, f"http://{HOST}:{origin.port}/status/200", proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)
        [flow] = self.wait_flows(sluice, lambda f: f.get("kind") == "http")

        result = self.replay(str(flow["id"]))
        self.assert_one_line_failure(result, f"another sluice (pid {sluice.pid}) is recording into {self.data_dir}: stop it first")
        self.assertEqual(len(origin.requests), 1, "nothing was replayed")
        self.assertEqual(sluice.popen.poll(), None, "the running sluice is unaffected")

        code, _ = sluice.stop()
        self.assertEqual(code, 0, sluice.stderr())
        result = self.replay(str(flow["id"]))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(origin.requests), 2)

    def test_https_target_verifies_the_server_and_records_tls_timing(self):
        pki_dir = tempfile.mkdtemp(prefix="sluice-e2e-pki-")
        self.addCleanup(shutil.rmtree, pki_dir, True)
        pki = self.pki = test_https.PKI(pki_dir)
        origin_a = self.origin()
        tls_origin = self.https_origin()
        [flow] = self.record([(["-o", os.devnull, "-H", "X-Over: tls"], f"http://{HOST}:{origin_a.port}/echo?q=1")])

        # Untrusted: the server's certificate is from a CA nobody told Sluice about.
        result = self.replay(str(flow["id"]), "--target", f"https://localhost:{tls_origin.port}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("certificate did not verify", result.stdout.decode(errors="replace"))
        self.assertEqual(tls_origin.requests, [])

        result = self.replay(str(flow["id"]), "--target", f"https://localhost:{tls_origin.port}", "--upstream-ca", pki.ca[0])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        [replayed] = tls_origin.requests
        self.assertEqual(replayed["path"], "/echo?q=1")
        self.assertEqual(test_http.header(replayed["headers"], "X-Over"), "tls")
        self.assertEqual(test_http.header(replayed["headers"], "Host"), f"localhost:{tls_origin.port}")
        new = [f for f in self.replays_of({flow["id"]}) if f["state"] == "closed"]
        self.assertEqual(len(new), 1, self.replays_of({flow["id"]}))
        self.assertEqual(new[0]["url"], f"https://localhost:{tls_origin.port}/echo?q=1")
        [row] = self.query("SELECT tls_ms FROM http WHERE flow_id = ?", new[0]["id"])
        self.assertIsNotNone(row["tls_ms"])

    def test_replay_trusts_the_servers_the_recorder_trusted(self):
        # A headless recorder given --upstream-ca as a flag: the replay afterwards needs no flag to trust the same CA.
        pki_dir = tempfile.mkdtemp(prefix="sluice-e2e-pki-")
        self.addCleanup(shutil.rmtree, pki_dir, True)
        pki = self.pki = test_https.PKI(pki_dir)
        origin = self.origin()
        tls_origin = self.https_origin()
        [flow] = self.record([(["-o", os.devnull], f"http://{HOST}:{origin.port}/echo?q=2")], "--upstream-ca", pki.ca[0])
        result = self.replay(str(flow["id"]), "--target", f"https://localhost:{tls_origin.port}")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"trusting {pki.ca[0]} for servers, as the recorder did", result.stderr.decode())
        self.assertEqual([r["path"] for r in tls_origin.requests], ["/echo?q=2"])


if __name__ == "__main__":
    unittest.main()
