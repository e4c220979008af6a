"""Access control for a proxy left running on a jumphost: proxy authentication (407 until the client sends
credentials, Basic users or a token) and source-address allow/deny lists (CIDR). Every refusal is a recorded flow,
and credentials never reach the store or the logs.
"""

import base64
import os
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, IO_TIMEOUT, SluiceTest, recv_all  # noqa: E402
import test_http  # noqa: E402  (helpers only)


class AccessTest(test_http.HTTPHelpers, SluiceTest):
    def all_files_text(self):
        text = b""
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    text += f.read()
        return text

    def test_proxy_authentication_with_users_and_a_token(self):
        origin = self.origin()
        proc, port = self.proxy("--proxy-user", "alice:s3cret-pw", "--proxy-token", "tok-9f8e7d")
        url = f"http://{HOST}:{origin.port}/bytes/10"

        refused = self.curl("-o", "/dev/null", "-w", "%{http_code}", url, proxy_port=port)
        self.assertEqual(refused.stdout.decode(), "407")
        head = self.curl("-s", "-D", "-", "-o", "/dev/null", url, proxy_port=port).stdout.decode()
        self.assertIn('Proxy-Authenticate: Basic realm="sluice"', head)

        wrong = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-U", "alice:wrong", url, proxy_port=port)
        self.assertEqual(wrong.stdout.decode(), "407")
        good = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-U", "alice:s3cret-pw", url, proxy_port=port)
        self.assertEqual(good.stdout.decode(), "200")
        token = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-U", "anyone:tok-9f8e7d", url, proxy_port=port)
        self.assertEqual(token.stdout.decode(), "200")
        bearer = self.curl(
            "-o", "/dev/null", "-w", "%{http_code}", "--proxy-header", "Proxy-Authorization: Bearer tok-9f8e7d", url,
            proxy_port=port,
        )
        self.assertEqual(bearer.stdout.decode(), "200")

        flows = self.wait_flows(proc, lambda f: f.get("url") == url, count=6)
        statuses = sorted(f["status"] for f in flows)
        self.assertEqual(statuses, [200, 200, 200, 407, 407, 407])
        refusals = [f for f in flows if f["status"] == 407]
        self.assertTrue(all(f["state"] == "error" and "refused" in f["error"] for f in refusals), refusals)
        self.assertTrue(any("alice" in f["error"] for f in refusals), "the user is named")
        proc.stop()
        stored = self.all_files_text()
        for secret in (b"s3cret-pw", b"tok-9f8e7d", base64.b64encode(b"alice:s3cret-pw")):
            self.assertNotIn(secret, stored, "credentials must never be stored")

    def test_credentials_from_files_and_the_environment_stay_out_of_ps(self):
        origin = self.origin()
        url = f"http://{HOST}:{origin.port}/bytes/10"
        users = os.path.join(self.tmp, "users")
        with open(users, "w") as f:
            f.write("# proxy users\ncarol:f1le-secret\n\n")
        token = os.path.join(self.tmp, "token")
        with open(token, "w") as f:
            f.write("tok-from-file\n")
        os.environ["SLUICE_PROXY_TOKEN"] = "tok-from-env"
        try:
            proc, port = self.proxy("--proxy-users-file", users)
        finally:
            del os.environ["SLUICE_PROXY_TOKEN"]
        code = lambda *args: self.curl("-o", "/dev/null", "-w", "%{http_code}", *args, url, proxy_port=port).stdout.decode()
        self.assertEqual(code(), "407")
        self.assertEqual(code("-U", "carol:f1le-secret"), "200")
        self.assertEqual(code("-U", "anyone:tok-from-env"), "200")
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        self.assertNotIn(b"f1le-secret", cmdline)
        self.assertNotIn(b"tok-from-env", cmdline)
        proc.stop()
        proc, port = self.proxy("--proxy-token-file", token)
        self.assertEqual(code("-U", "x:tok-from-file"), "200")
        self.assertEqual(code("-U", "x:wrong"), "407")

    def test_a_user_name_with_control_characters_cannot_drive_the_terminal(self):
        origin = self.origin()
        proc, port = self.proxy("--proxy-user", "alice:pw", quiet=False)
        url = f"http://{HOST}:{origin.port}/bytes/10"
        evil = base64.b64encode(b"\x1b[2J\n12:00:00.000 #99 forged:x").decode()
        result = self.curl("-o", "/dev/null", "-w", "%{http_code}", "--proxy-header", f"Proxy-Authorization: Basic {evil}",
                           url, proxy_port=port)
        self.assertEqual(result.stdout.decode(), "407")
        self.wait_flows(proc, lambda f: f.get("status") == 407)
        proc.stop()
        output = b""
        for name in os.listdir(self.tmp):
            if name.startswith("sluice-") and (name.endswith(".stderr") or name.endswith(".stdout")):
                with open(os.path.join(self.tmp, name), "rb") as f:
                    output += f.read()
        self.assertIn(b"user '\\e[2J\\n12'", output, output[-2000:])  # the user is what precedes the first colon
        self.assertNotIn(b"\x1b", output)
        self.assertFalse([line for line in output.splitlines() if line.startswith(b"12:00:00.000 #99")], "no forged line")

    def test_connect_needs_credentials_too(self):
        proc, port = self.proxy("--proxy-user", "bob:pw")
        sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
        answer = recv_all(sock)
        self.assertTrue(answer.startswith(b"HTTP/1.1 407 "), answer[:80])

    def test_denied_and_not_allowed_sources_are_refused_and_recorded(self):
        origin = self.origin()
        url = f"http://{HOST}:{origin.port}/bytes/10"
        proc, port = self.proxy("--deny", "127.0.0.0/8")
        result = self.curl("-o", "/dev/null", url, proxy_port=port)
        self.assertNotEqual(result.returncode, 0, "the connection is closed without an answer")
        flows = self.wait_flows(proc, lambda f: "refused" in (f.get("error") or ""))
        self.assertIn("127.0.0.1 is denied (deny 127.0.0.0/8)", flows[0]["error"])
        proc.stop()

        proc, port = self.proxy("--allow", "10.0.0.0/8")
        self.curl("-o", "/dev/null", url, proxy_port=port)
        flows = self.wait_flows(proc, lambda f: "not in the allow list" in (f.get("error") or ""))
        self.assertEqual(flows[0]["state"], "error")
        proc.stop()

        proc, port = self.proxy("--allow", "127.0.0.1/32", "--allow", "::1")
        ok = self.curl("-o", "/dev/null", "-w", "%{http_code}", url, proxy_port=port)
        self.assertEqual(ok.stdout.decode(), "200")

    def test_a_bad_range_is_one_clear_error(self):
        result = subprocess.run(
            [test_http.SLUICE_BIN, "--headless", "--data-dir", self.data_dir, "--allow", "10.0.0.0/33"],
            capture_output=True, timeout=30,
        )
        self.assertEqual(result.returncode, 1)
        lines = result.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("10.0.0.0/33", lines[0])


if __name__ == "__main__":
    unittest.main()
