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
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import HOST, IO_TIMEOUT, SluiceTest, free_port, poll, recv_all  # noqa: E402
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
        self.close_codes = []  # the code each connection ended with, as this server saw it (1006: no Close came)
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("websocket server did not start")

    def _run(self):
        asyncio.set_event_loop(self._loop)

        async def handler(ws):
            try:
                async for message in ws:
                    self.received.append(message)
                    await ws.send("echo:" + message if isinstance(message, str) else bytes(reversed(message)))
            except Exception:
                pass  # a connection closed with an error: its code is below
            finally:
                self.close_codes.append(ws.close_code)

        async def main():
            self._stop = asyncio.Event()
            async with ws_serve(handler, HOST, self.port, compression=None, max_size=None):
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

    def open_raw(self, server_port, proxy_port):
        """A WebSocket opened by hand through the explicit proxy (absolute-form upgrade): the socket after the 101."""
        sock = socket.create_connection((HOST, proxy_port), timeout=IO_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(
            (
                f"GET http://{HOST}:{server_port}/chat HTTP/1.1\r\nHost: {HOST}:{server_port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            self.assertTrue(chunk, "connection closed before the 101")
            head += chunk
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        return sock

    def assert_closed_with(self, sock, code):
        """The proxy's answer is a Close with `code`, then the end of the connection."""
        answer = recv_all(sock)
        self.assertGreaterEqual(len(answer), 4, answer)
        self.assertEqual(answer[0], 0x88, f"a Close frame: {answer[:20]!r}")
        self.assertEqual(struct.unpack(">H", answer[2:4])[0], code, answer[:40])

    def test_a_frame_with_a_bad_length_gets_close_1002(self):
        server = self.ws_server()
        proc, port = self.proxy()
        sock = self.open_raw(server.port, port)
        # A masked text frame whose 16-bit length (5) is not minimally encoded: RFC 6455 §5.2 says fail with 1002.
        sock.sendall(b"\x81\xfe" + struct.pack(">H", 5) + b"\x00\x00\x00\x00" + b"hello")
        answer = recv_all(sock)
        self.assertGreaterEqual(len(answer), 4, answer)
        self.assertEqual(answer[0], 0x88, "a Close frame")
        self.assertEqual(struct.unpack(">H", answer[2:4])[0], 1002)

        flow = self.wait_flows(proc, lambda f: f["kind"] == "websocket")[0]
        self.assertEqual(flow["state"], "error")
        self.assertIn("1002", flow["error"])
        # The server is told too: it saw Sluice's Close 1002, not a connection cut without one (1006).
        poll(lambda: server.close_codes, 10, message="the server's connection did not end")
        self.assertEqual(server.close_codes, [1002])
        # Other connections are unaffected: a plain request through the same proxy still works.
        origin = self.origin()
        result = self.curl(f"http://{HOST}:{origin.port}/bytes/10", proxy_port=port)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_a_close_with_a_code_the_rfc_forbids_is_not_forwarded(self):
        # RFC 6455 §7.4: 999, 1005 and 1006 may not be sent, a 1-byte body is malformed, a reason must be UTF-8.
        server = self.ws_server()
        proc, port = self.proxy()
        for body, code in ((struct.pack(">H", 999), 1002), (struct.pack(">H", 1005), 1002), (b"\x03", 1002),
                           (struct.pack(">H", 1000) + b"\xff\xfe", 1007)):
            with self.subTest(body=body):
                before = len(server.close_codes)
                sock = self.open_raw(server.port, port)
                sock.sendall(masked_frame(0x8, body))
                self.assert_closed_with(sock, code)
                poll(lambda: len(server.close_codes) > before, 10, message="the server's connection did not end")
                self.assertEqual(server.close_codes[-1], code, "the server got Sluice's Close, not the forbidden one")

    def test_unfinished_messages_are_freed_when_their_connection_ends(self):
        # Four rounds of a 40 MiB fragmented message that never finishes: the memory goes with the connection.
        # (Before, each round kept its message for good: 71 -> 317 -> 564 -> 810 MiB with 60 MiB messages.)
        server = self.ws_server()
        proc, port = self.proxy()
        fragment = b"\x00" * (1 << 20)
        rss = []
        for round_ in range(4):
            sock = self.open_raw(server.port, port)
            sock.sendall(masked_frame(0x2, fragment, fin=False))
            for _ in range(39):
                sock.sendall(masked_frame(0x0, fragment, fin=False))
            sock.close()
            self.wait_flows(proc, lambda f: f["kind"] == "websocket", count=round_ + 1, timeout=30)
            rss.append(resident_mib(proc.pid))
        self.assertLess(rss[-1] - rss[0], 40, f"resident memory after each round (MiB): {rss}")

    def test_the_limits_are_config_keys_and_the_budget_is_shared(self):
        server = self.ws_server()
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write("websocket:\n  max_message_bytes: 1048576\n  max_buffered_bytes: 3145728\n")
        proc, port = self.proxy("--config", config)
        # One message over max_message_bytes: 1009.
        sock = self.open_raw(server.port, port)
        sock.sendall(masked_frame(0x2, b"a" * 600000, fin=False) + masked_frame(0x0, b"b" * 600000))
        self.assert_closed_with(sock, 1009)
        # Three connections each under the message limit, together over the budget: the third gets 1009.
        held = []
        for _ in range(2):
            sock = self.open_raw(server.port, port)
            sock.sendall(masked_frame(0x2, b"c" * 1000000, fin=False))
            held.append(sock)
        poll(lambda: len(self.query("SELECT id FROM flows WHERE kind = 'websocket'")) >= 3, 10)
        time.sleep(0.3)
        sock = self.open_raw(server.port, port)
        sock.sendall(masked_frame(0x2, b"d" * 1000000, fin=False) + masked_frame(0x0, b"e" * 900000, fin=False))
        self.assert_closed_with(sock, 1009)
        flows = self.wait_flows(proc, lambda f: f["kind"] == "websocket" and f["state"] == "error", count=2)
        self.assertIn("max_buffered_bytes", flows[-1]["error"])
        for sock in held:
            sock.close()


def masked_frame(opcode, payload, fin=True):
    """A client frame (masked, RFC 6455 §5.3) with a zero mask key, so the payload goes as it is."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
    return head + b"\x00\x00\x00\x00" + payload


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


if __name__ == "__main__":
    unittest.main()
