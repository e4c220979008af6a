"""The terminal UI holding an HTTP request: curl through Sluice's explicit proxy, the POST is held whole by the
intercept filter, its body edited as text in the editor, forwarded; the origin gets the edited body and the store
keeps the original request and the edit.

Run: python3 -m unittest tests/e2e/test_tui_http.py -v   (from the repository root)
"""

import os
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tui_support import HOST, TUITestCase, flows_json, free_port, poll, stored_messages  # noqa: E402
import test_http  # noqa: E402  (the origin only)


class TUIHTTPHoldTests(TUITestCase):
    def origin(self):
        server = test_http.OriginServer()
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        def stop():
            server.stop()
            thread.join(10)
        self.addCleanup(stop)
        return server

    def test_a_held_request_is_edited_as_text_and_the_origin_gets_the_edit(self):
        origin = self.origin()
        port = free_port()
        # screen-256color: End reaches the application as one key inside tmux.
        tui = self.start_tui(0, listen_port=port, listen=f"http://{HOST}:{port}", term="screen-256color")
        tui.send("i")
        tui.wait_line("intercept: ")
        tui.type("~q & ~m POST")  # the request only; without ~q the response would be held too
        tui.send("Enter")
        tui.wait_text("intercepting: ~q & ~m POST")

        url = f"http://{HOST}:{origin.port}/echo"
        result = {}

        def post():
            result["curl"] = subprocess.run(
                ["curl", "-sS", "--max-time", "30", "-x", f"http://{HOST}:{port}", "--data-binary", "amount=1", url],
                capture_output=True, timeout=40,
            )

        client = threading.Thread(target=post, daemon=True)
        client.start()
        tui.wait_line("HELD")
        self.assertEqual(origin.requests_for("/echo"), [], "held means held")

        tui.send("3")
        tui.wait_line(" up ")
        tui.send("e")
        tui.wait_text("50 4f 53 54")  # "POST"
        tui.send("End", "Left")
        tui.type("39")  # the body's last byte, "1" -> "9"
        tui.wait_text("(modified)")
        tui.send("Enter")
        tui.wait_text("forwarded")

        client.join(40)
        self.assertFalse(client.is_alive())
        self.assertEqual(result["curl"].returncode, 0, result["curl"].stderr)
        received = poll(lambda: origin.requests_for("/echo"), 10)
        self.assertEqual(received[0]["body"], b"amount=9")
        self.assertEqual(received[0]["method"], "POST")

        tui.send("q")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)
        flows = [f for f in flows_json(self.data_dir) if f["kind"] == "http"]
        self.assertEqual(len(flows), 1, flows)
        payloads = [m[2] for m in stored_messages(self.data_dir, flows[0]["id"])]
        self.assertTrue(any(p.startswith(b"POST ") and p.endswith(b"amount=1") for p in payloads), "the held original")
        self.assertTrue(any(p.startswith(b"POST ") and p.endswith(b"amount=9") for p in payloads), "the edit")

        # Replaying the flow sends the request as edited.
        replay = subprocess.run(
            [test_http.SLUICE_BIN, "replay", str(flows[0]["id"]), "--data-dir", self.data_dir], capture_output=True, timeout=60
        )
        self.assertEqual(replay.returncode, 0, replay.stderr)
        received = poll(lambda: origin.requests_for("/echo")[1:], 10)
        self.assertEqual(received[0]["body"], b"amount=9")


    def test_a_held_request_rewritten_into_a_response_is_answered_without_the_server(self):
        origin = self.origin()
        port = free_port()
        tui = self.start_tui(0, listen_port=port, listen=f"http://{HOST}:{port}", term="screen-256color")
        tui.send("i")
        tui.wait_line("intercept: ")
        tui.type("~q & ~u canned")
        tui.send("Enter")
        tui.wait_text("intercepting: ~q & ~u canned")
        url = f"http://{HOST}:{origin.port}/canned"
        result = {}

        def get():
            result["curl"] = subprocess.run(
                ["curl", "-sS", "--max-time", "30", "-x", f"http://{HOST}:{port}", "-w", "\n%{http_code}", url],
                capture_output=True, timeout=40,
            )

        client = threading.Thread(target=get, daemon=True)
        client.start()
        tui.wait_line("HELD")
        tui.send("3")
        tui.wait_line(" up ")
        tui.send("e")
        tui.wait_text("47 45 54 20")  # "GET "
        # As text, in the ASCII column: overwrite the start with a status line, then two line breaks (Ctrl-O, since
        # Enter forwards): the rest of the held text becomes the body.
        tui.send("Tab")
        tui.type("HTTP/1.1 203 Canned")
        tui.send("C-o", "C-o")
        tui.wait_text("48 54 54 50")  # "HTTP"
        tui.wait_text("0d 0a 0d 0a")  # the blank line
        tui.wait_text("(modified)")
        tui.send("Enter")
        client.join(40)
        self.assertFalse(client.is_alive())
        body, status = result["curl"].stdout.decode().rsplit("\n", 1)
        self.assertEqual(status, "203")
        self.assertTrue(body, "the rest of the held text is the canned body")
        self.assertEqual(origin.requests_for("/canned"), [], "the server is never asked")
        tui.send("q")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)
        flow = [f for f in flows_json(self.data_dir) if f.get("url") == url][0]
        self.assertEqual(flow["status"], 203)

    def test_a_held_request_blocked_with_a_message_gets_a_403_that_says_it(self):
        origin = self.origin()
        port = free_port()
        tui = self.start_tui(0, listen_port=port, listen=f"http://{HOST}:{port}", term="screen-256color")
        tui.send("i")
        tui.wait_line("intercept: ")
        tui.type("~q & ~u blocked")
        tui.send("Enter")
        tui.wait_text("intercepting: ~q & ~u blocked")
        url = f"http://{HOST}:{origin.port}/blocked"
        result = {}

        def get():
            result["curl"] = subprocess.run(
                ["curl", "-sS", "--max-time", "30", "-x", f"http://{HOST}:{port}", "-w", "\n%{http_code}", url],
                capture_output=True, timeout=40,
            )

        client = threading.Thread(target=get, daemon=True)
        client.start()
        tui.wait_line("HELD")
        tui.send("3")
        tui.wait_line(" up ")
        tui.send("D")
        tui.wait_line("block, saying")
        tui.type("not during the freeze")
        tui.send("Enter")
        client.join(40)
        self.assertFalse(client.is_alive())
        body, status = result["curl"].stdout.decode().rsplit("\n", 1)
        self.assertEqual(status, "403")
        self.assertIn("not during the freeze", body)
        self.assertEqual(origin.requests_for("/blocked"), [], "a blocked request never reaches the server")


if __name__ == "__main__":
    unittest.main()
