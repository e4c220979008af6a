"""WebSockets through Sluice with real peers: the `websockets` library's client and server, on loopback.

The client goes through the explicit proxy the way clients do for ws:// (a CONNECT tunnel carrying plain HTTP), and
straight to the proxy with an absolute-form upgrade request. Sluice parses every frame: each message is recorded
with its direction and kind (text, binary, ping, pong, close). A frame with an invalid length ends the WebSocket
with Close 1002 to the client and a recorded error.
"""

import asyncio
import os
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, IO_TIMEOUT, SluiceTest, free_port, recv_all  # noqa: E402
import test_http  # noqa: E402  (its helpers only; a class imported by name would run its tests here too)

try:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.asyncio.server import serve as ws_serve
except ImportError:  # scripts/setup --test installs it
    ws_connect = ws_serve = None


class EchoWebSocketServer:
    """A `websockets` server in its own thread: echoes text as "echo:<text>" and binary reversed; keeps what it got."""

    def __init__(self):
        self.port = free_port()
        self.received = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("websocket server did not start")

    def _run(self):
        asyncio.set_event_loop(self._loop)

        async def handler(ws):
            async for message in ws:
                self.received.append(message)
                await ws.send("echo:" + message if isinstance(message, str) else bytes(reversed(message)))

        async def main():
            self._stop = asyncio.Event()
            async with ws_serve(handler, HOST, self.port, compression=None):
                self._ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())
        self._loop.close()

    def close(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@unittest.skipIf(ws_connect is None, "python websockets is not installed (scripts/setup --test installs it)")
class WebSocketTest(test_http.HTTPHelpers, SluiceTest):
    def ws_server(self):
        server = EchoWebSocketServer()
        self.addCleanup(server.close)
        return server

    def test_text_and_binary_both_ways_are_recorded_through_the_explicit_proxy(self):
        server = self.ws_server()
        proc, port = self.proxy()

        async def talk():
            url = f"ws://{HOST}:{server.port}/chat"
            async with ws_connect(url, proxy=f"http://{HOST}:{port}", open_timeout=10, compression=None) as ws:
                await ws.send("hello sluice")
                text = await asyncio.wait_for(ws.recv(), 10)
                await ws.send(b"\x00\x01\x02\xff")
                binary = await asyncio.wait_for(ws.recv(), 10)
                big = "x" * 70000
                await ws.send(big)
                echoed = await asyncio.wait_for(ws.recv(), 10)
                return text, binary, len(echoed)

        text, binary, big = asyncio.run(asyncio.wait_for(talk(), 30))
        self.assertEqual(text, "echo:hello sluice")
        self.assertEqual(binary, b"\xff\x02\x01\x00")
        self.assertEqual(big, 70005)
        self.assertEqual(server.received[:2], ["hello sluice", b"\x00\x01\x02\xff"])

        flow = self.wait_flows(proc, lambda f: f["kind"] == "websocket")[0]
        self.assertEqual(flow["url"], f"http://{HOST}:{server.port}/chat")
        self.assertEqual(flow["status"], 101)
        rows = self.query(
            "SELECT direction, kind, size, payload FROM messages WHERE flow_id = ? AND kind IN ('text', 'binary') ORDER BY seq",
            flow["id"],
        )
        seen = [(r["direction"], r["kind"], bytes(r["payload"])[:20]) for r in rows]
        self.assertIn(("up", "text", b"hello sluice"), seen)
        self.assertIn(("down", "text", b"echo:hello sluice"), seen)
        self.assertIn(("up", "binary", b"\x00\x01\x02\xff"), seen)
        self.assertIn(("down", "binary", b"\xff\x02\x01\x00"), seen)
        self.assertIn(("up", "text", b"x" * 20), seen)
        closes = self.query("SELECT direction FROM messages WHERE flow_id = ? AND kind = 'close'", flow["id"])
        self.assertTrue(closes, "the closing handshake is recorded")

    def test_a_frame_with_a_bad_length_gets_close_1002(self):
        server = self.ws_server()
        proc, port = self.proxy()
        sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(
            (
                f"GET http://{HOST}:{server.port}/chat HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            self.assertTrue(chunk, "connection closed before the 101")
            head += chunk
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        # A masked text frame whose 16-bit length (5) is not minimally encoded: RFC 6455 §5.2 says fail with 1002.
        sock.sendall(b"\x81\xfe" + struct.pack(">H", 5) + b"\x00\x00\x00\x00" + b"hello")
        answer = recv_all(sock)
        self.assertGreaterEqual(len(answer), 4, answer)
        self.assertEqual(answer[0], 0x88, "a Close frame")
        self.assertEqual(struct.unpack(">H", answer[2:4])[0], 1002)

        flow = self.wait_flows(proc, lambda f: f["kind"] == "websocket")[0]
        self.assertEqual(flow["state"], "error")
        self.assertIn("1002", flow["error"])
        # Other connections are unaffected: a plain request through the same proxy still works.
        origin = self.origin()
        result = self.curl(f"http://{HOST}:{origin.port}/bytes/10", proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
