"""Failures on one connection stay on that connection: a client reset, a dead target."""

import os
import socket
import struct
import threading
import unittest

from support import (
    IO_TIMEOUT,
    SluiceTest,
    connect,
    echo_handler,
    free_port,
    join_thread,
    local_port,
    run_cli,
    start_thread,
)

ECHO_BYTES = 300 << 10  # per concurrent connection
ECHO_CONNECTIONS = 20


def echo_round_trip(port, data):
    """Sends `data` through an echo target (sender and receiver at once); returns (client port, bytes back).

    The client half-closes only once the first echoed bytes are back, i.e. once the relay to the target is in
    place: a FIN that arrives before that is the subject of its own test (test_relay), not of these ones.
    """
    sock = connect(port)
    first_echo = threading.Event()
    try:
        def send():
            view = memoryview(data)
            for offset in range(0, len(data), 32 << 10):
                sock.sendall(view[offset:offset + (32 << 10)])
            if not first_echo.wait(IO_TIMEOUT):
                raise AssertionError("no echo came back")
            sock.shutdown(socket.SHUT_WR)
        sender = start_thread(send)
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            first_echo.set()
        join_thread(sender, IO_TIMEOUT, "echo client sender")
        return local_port(sock), b"".join(chunks)
    finally:
        first_echo.set()
        sock.close()


def reset_mid_stream(port):
    """Streams through the echo target, then closes with SO_LINGER 0 (an RST) while data is in flight both ways."""
    sock = connect(port)
    chunk = os.urandom(64 << 10)
    for _ in range(8):
        sock.sendall(chunk)
        got = 0
        while got < len(chunk):  # a full echo each round: the relay is really carrying data
            data = sock.recv(len(chunk) - got)
            if not data:
                raise AssertionError("echo ended before the reset")
            got += len(data)
    # More data on its way, its echo unread, then the reset.
    sock.sendall(chunk)
    sock.sendall(chunk)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client_port = local_port(sock)
    sock.close()
    return client_port


class FailureTest(SluiceTest):
    def test_client_reset_is_an_error_flow_while_twenty_others_echo_correctly(self):
        listen, target = free_port(), free_port()
        sluice = self.start_sluice([(listen, target)])
        server = self.server(echo_handler, target)

        payloads = [os.urandom(ECHO_BYTES) for _ in range(ECHO_CONNECTIONS)]
        echoes = [start_thread(echo_round_trip, listen, data) for data in payloads]
        resetter = start_thread(reset_mid_stream, listen)
        reset_port = join_thread(resetter, 30, "resetting client")
        results = [join_thread(t, 60, "echo client") for t in echoes]

        for index, ((_, back), data) in enumerate(zip(results, payloads)):
            self.assertEqual(len(back), len(data), f"echo connection {index}: wrong length")
            self.assertEqual(back, data, f"echo connection {index}: bytes differ")

        flow = sluice.wait_for_flow(reset_port, timeout=10)
        self.assertEqual(flow["state"], "error", f"a client reset must end the flow in error: {flow}")
        self.assertTrue(flow["error"], flow)
        self.assertIn("client", flow["error"], f"the error should be attributed to the client side: {flow}")
        self.assertGreater(flow["bytes_up"], 0, flow)

        for port, data in results:
            echo_flow = sluice.wait_for_flow(port, timeout=10)
            self.assertEqual(echo_flow["state"], "closed", echo_flow)
            self.assertIsNone(echo_flow["error"], echo_flow)
            self.assertEqual((echo_flow["bytes_up"], echo_flow["bytes_down"]), (len(data), len(data)), echo_flow)
        server.join(30)
        self.assertEqual(len(server.results) + len(server.errors), ECHO_CONNECTIONS + 1)

    def test_dead_target_fails_its_flow_and_other_listener_keeps_serving(self):
        dead_listen, dead_target = free_port(), free_port()
        live_listen, live_target = free_port(), free_port()
        sluice = self.start_sluice([(dead_listen, dead_target), (live_listen, live_target)])
        self.server(echo_handler, live_target)  # only the live target ever comes up

        client = connect(dead_listen, timeout=10)
        dead_port = local_port(client)
        try:
            data = client.recv(1)
        except ConnectionResetError:
            data = b""
        finally:
            client.close()
        self.assertEqual(data, b"", "a client of a dead target should see its connection closed")

        flow = sluice.wait_for_flow(dead_port)
        self.assertEqual(flow["state"], "error", flow)
        self.assertIn("connect", flow["error"], flow)
        self.assertIn("refused", flow["error"], flow)
        self.assertIn(str(dead_target), flow["error"], flow)
        self.assertEqual(flow["server"], f"127.0.0.1:{dead_target}", flow)

        shown = run_cli("show", str(flow["id"]), "--data-dir", sluice.data_dir)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        text = shown.stdout.decode()
        self.assertIn(f"flow {flow['id']}", text)
        self.assertIn("error", text)
        self.assertIn("refused", text)

        # The same process, on its other listener, still relays.
        for _ in range(3):
            payload = os.urandom(100_000)
            port, back = echo_round_trip(live_listen, payload)
            self.assertEqual(back, payload)
            live_flow = sluice.wait_for_flow(port)
            self.assertEqual(live_flow["state"], "closed", live_flow)
        self.assertIsNone(sluice.popen.poll(), "sluice exited after a failed connect")


if __name__ == "__main__":
    unittest.main()
