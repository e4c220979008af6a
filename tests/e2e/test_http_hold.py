"""HTTP hold points, headless: a request or response the intercept filter matches is held whole, and with nobody
to decide, `hold_default` applies after `hold_timeout` (forward, or drop with a 502 that says why). The held message
is stored whole (head and body as text) with its disposition.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, SluiceTest  # noqa: E402
import test_http  # noqa: E402  (helpers only)


class HTTPHoldTest(test_http.HTTPHelpers, SluiceTest):
    def held_rows(self, flow_id):
        return self.query("SELECT kind, disposition, payload FROM messages WHERE flow_id = ? AND kind IN ('request', 'response')", flow_id)

    def test_a_held_request_nobody_decides_is_dropped_with_a_502_that_says_so(self):
        origin = self.origin()
        proc, port = self.proxy("--intercept", "~q & ~m POST", "--hold-timeout", "1", "--hold-default", "drop")
        url = f"http://{HOST}:{origin.port}/echo"
        started = time.monotonic()
        result = self.curl("-s", "-w", "\n%{http_code}", "--data-binary", "x=1", url, proxy_port=port)
        self.assertGreaterEqual(time.monotonic() - started, 0.9, "held for hold_timeout")
        body, status = result.stdout.decode().rsplit("\n", 1)
        self.assertEqual(status, "502")
        self.assertIn("nobody decided within hold_timeout", body)
        self.assertEqual(origin.requests_for("/echo"), [], "a dropped request never reaches the server")
        # A GET does not match and passes at once.
        self.assertEqual(self.curl("-s", "-o", "/dev/null", "-w", "%{http_code}", url, proxy_port=port).stdout, b"200")
        flow = self.wait_flows(proc, lambda f: f.get("method") == "POST")[0]
        rows = self.held_rows(flow["id"])
        self.assertEqual([(r["kind"], r["disposition"]) for r in rows], [("request", "dropped")])
        self.assertTrue(bytes(rows[0]["payload"]).startswith(b"POST " + url.encode()))
        self.assertTrue(bytes(rows[0]["payload"]).endswith(b"\r\n\r\nx=1"))

    def test_a_held_response_is_forwarded_unchanged_when_the_default_is_forward(self):
        origin = self.origin()
        proc, port = self.proxy("--intercept", "~s & ~c 200", "--hold-timeout", "1", "--hold-default", "forward")
        url = f"http://{HOST}:{origin.port}/bytes/5000"
        direct = self.curl("-s", url).stdout
        result = self.curl("-s", url, proxy_port=port)
        self.assertEqual(result.stdout, direct)
        flow = self.wait_flows(proc, lambda f: f.get("url") == url)[0]
        self.assertEqual(flow["status"], 200)
        self.assertEqual([(r["kind"], r["disposition"]) for r in self.held_rows(flow["id"])], [("response", "forwarded")])

    def test_a_held_response_can_be_dropped(self):
        origin = self.origin()
        proc, port = self.proxy("--intercept", "~s & ~u /bytes", "--hold-timeout", "1", "--hold-default", "drop")
        url = f"http://{HOST}:{origin.port}/bytes/10"
        result = self.curl("-s", "-w", "\n%{http_code}", url, proxy_port=port)
        body, status = result.stdout.decode().rsplit("\n", 1)
        self.assertEqual(status, "502")
        self.assertIn("response was held", body)
        self.assertEqual(len(origin.requests_for("/bytes/10")), 1, "the server answered; the client never saw it")


if __name__ == "__main__":
    unittest.main()
