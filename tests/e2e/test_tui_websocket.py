"""The terminal UI holding a WebSocket message: a real `websockets` client and server through Sluice's explicit
proxy, one client message held by the intercept filter, edited in the hex editor and forwarded; the server gets the
edit and the store keeps both versions.

Run: python3 -m unittest tests/e2e/test_tui_websocket.py -v   (from the repository root)
"""

import asyncio
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tui_support import HOST, TUITestCase, flows_json, free_port, stored_messages  # noqa: E402
from test_websocket import EchoWebSocketServer, ws_connect  # noqa: E402


@unittest.skipIf(ws_connect is None, "python websockets is not installed (scripts/setup --test installs it)")
class TUIWebSocketTests(TUITestCase):
    def test_a_held_websocket_message_is_edited_and_the_server_gets_the_edit(self):
        server = EchoWebSocketServer()
        self.addCleanup(server.close)
        port = free_port()
        tui = self.start_tui(0, listen_port=port, listen=f"http://{HOST}:{port}")

        tui.send("i")
        tui.wait_line("intercept: ")
        tui.type("~bq hello")
        tui.send("Enter")
        tui.wait_text("intercepting: ~bq hello")

        outcome = {}

        async def talk():
            url = f"ws://{HOST}:{server.port}/chat"
            async with ws_connect(url, proxy=f"http://{HOST}:{port}", open_timeout=10, compression=None) as ws:
                await ws.send("hello world")
                outcome["reply"] = await asyncio.wait_for(ws.recv(), 30)
                # Then what the operator sends: to the server (echoed back here), and straight to this client.
                outcome["echo of injected"] = await asyncio.wait_for(ws.recv(), 30)
                outcome["to client"] = await asyncio.wait_for(ws.recv(), 30)

        client = threading.Thread(target=lambda: asyncio.run(talk()), daemon=True)
        client.start()

        tui.wait_line("HELD")
        self.assertEqual(server.received, [], "held means held")
        tui.send("3")
        tui.wait_line("hello world", " up ")
        tui.send("e")
        tui.wait_text("68 65 6c 6c 6f")  # "hello"
        tui.type("4845")  # "HE"
        tui.wait_text("48 45 6c 6c 6f", "(modified)")
        tui.send("Enter")
        tui.wait_text("forwarded 11 edited bytes")

        # The operator sends messages into the live WebSocket from its detail view.
        tui.send("1")
        tui.wait_line("webs", "open")
        tui.send("Enter")
        tui.wait_text("GET http://")
        tui.send("s")
        tui.wait_line("send to server: ")
        tui.type("injected")
        tui.send("Enter")
        tui.wait_text("sent 8 bytes to the server")
        tui.send("S")
        tui.wait_line("send to client: ")
        tui.type("to-client")
        tui.send("Enter")
        tui.wait_text("sent 9 bytes to the client")

        client.join(30)
        self.assertFalse(client.is_alive(), "the client got its answers")
        self.assertEqual(server.received, ["HEllo world", "injected"])
        self.assertEqual(outcome.get("reply"), "echo:HEllo world")
        self.assertEqual(outcome.get("echo of injected"), "echo:injected")
        self.assertEqual(outcome.get("to client"), "to-client")

        tui.send("q")
        tui.send("q")
        self.assertEqual(tui.wait_exit(), 0)
        flows = [f for f in flows_json(self.data_dir) if f["kind"] == "websocket"]
        self.assertEqual(len(flows), 1, flows)
        payloads = [m[2] for m in stored_messages(self.data_dir, flows[0]["id"])]
        self.assertIn(b"hello world", payloads, "the original is kept")
        self.assertIn(b"HEllo world", payloads, "and the edit")


if __name__ == "__main__":
    unittest.main()
