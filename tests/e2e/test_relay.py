"""Relaying: bulk data both ways at once, and half-close."""

import hashlib
import os
import socket
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
    recv_all,
    recv_exactly,
    start_thread,
)

BULK = 64 << 20  # 64 MiB each way
CHUNK = 256 << 10


def send_stream(sock, data):
    """Sends `data` in chunks, then shuts the write side; returns the SHA-256 of what was sent."""
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK):
        sock.sendall(view[offset:offset + CHUNK])
    sock.shutdown(socket.SHUT_WR)
    return len(data), hashlib.sha256(data).hexdigest()


def receive_stream(sock):
    """Reads until EOF, hashing as it goes; returns (byte count, SHA-256)."""
    digest = hashlib.sha256()
    total = 0
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        n = sock.recv_into(buffer)
        if n == 0:
            break
        digest.update(view[:n])
        total += n
    return total, digest.hexdigest()


class RelayTest(SluiceTest):
    def test_64_mib_each_way_at_the_same_time_arrive_identical(self):
        listen, target = free_port(), free_port()
        sluice = self.start_sluice([(listen, target)])
        client_data = os.urandom(BULK)
        server_data = os.urandom(BULK)

        def bulk_handler(conn):
            # The target sends its own 64 MiB while it receives the client's: two threads, both directions at once.
            receiver = start_thread(receive_stream, conn)
            sent = send_stream(conn, server_data)
            received = join_thread(receiver, 120, "target receiver")
            return {"sent": sent, "received": received}

        server = self.server(bulk_handler, target)
        client = connect(listen)
        self.addCleanup(client.close)
        receiver = start_thread(receive_stream, client)
        sender = start_thread(send_stream, client, client_data)
        client_sent = join_thread(sender, 120, "client sender")
        client_received = join_thread(receiver, 120, "client receiver")
        server.join(120)

        self.assertEqual(server.errors, [])
        self.assertEqual(len(server.results), 1, "the target should see exactly one connection")
        result = server.results[0]
        self.assertEqual(client_sent, (BULK, hashlib.sha256(client_data).hexdigest()))
        self.assertEqual(result["received"], client_sent, "client -> server bytes differ (count, sha256)")
        self.assertEqual(client_received, result["sent"], "server -> client bytes differ (count, sha256)")

        flow = sluice.wait_for_flow(local_port(client))
        self.assertEqual(flow["state"], "closed", flow)
        self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (BULK, BULK), flow)

    def test_half_close_server_shuts_write_first_client_keeps_sending(self):
        listen, target = free_port(), free_port()
        sluice = self.start_sluice([(listen, target)])
        first_up = os.urandom(50_000)         # before the server's FIN
        down = os.urandom(200_000)            # the server's whole output
        more_up = os.urandom(1_000_000)       # sent by the client after it saw the server's FIN
        server_saw_eof_after_fin = threading.Event()

        def half_close_handler(conn):
            got_first = recv_exactly(conn, len(first_up))
            conn.sendall(down)
            conn.shutdown(socket.SHUT_WR)
            # The write side is shut; the read side must keep working until the client's own FIN.
            rest = recv_all(conn)
            server_saw_eof_after_fin.set()
            return got_first + rest

        server = self.server(half_close_handler, target)
        client = connect(listen)
        self.addCleanup(client.close)
        client.sendall(first_up)
        # The server's bytes, then EOF: the server's FIN was passed on.
        received = recv_all(client)
        self.assertEqual(len(received), len(down))
        self.assertEqual(received, down, "client did not get the server's bytes intact before EOF")
        # Now keep sending on the half-open connection, then finish.
        client.sendall(more_up)
        client.shutdown(socket.SHUT_WR)
        server.join(IO_TIMEOUT)
        self.assertEqual(server.errors, [])
        self.assertTrue(server_saw_eof_after_fin.is_set())
        self.assertEqual(len(server.results), 1)
        got = server.results[0]
        self.assertEqual(len(got), len(first_up) + len(more_up), "server missed bytes sent after its half-close")
        self.assertEqual(got, first_up + more_up)
        # Nothing more arrives for the client: still EOF.
        self.assertEqual(client.recv(1), b"")

        flow = sluice.wait_for_flow(local_port(client))
        self.assertEqual(flow["state"], "closed", flow)
        self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (len(first_up) + len(more_up), len(down)), flow)

    def test_half_close_client_sends_and_shuts_write_right_after_connect(self):
        # `printf req | nc -N host port`: the request and the client's FIN arrive together, typically before
        # Sluice's own connection to the target is up. Both must still reach the target, and the reply the client.
        listen, target = free_port(), free_port()
        sluice = self.start_sluice([(listen, target)])
        self.server(echo_handler, target)
        trials = 4

        def trial(index):
            payload = f"request {index}\n".encode() * 100
            sock = connect(listen, timeout=10)
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                try:
                    back = recv_all(sock)
                except socket.timeout:
                    back = None
                return local_port(sock), payload, back
            finally:
                sock.close()

        threads = [start_thread(trial, i) for i in range(trials)]
        results = [join_thread(t, 30, "half-closing client") for t in threads]
        hung = [port for port, _, back in results if back is None]
        self.assertEqual(hung, [], f"{len(hung)} of {trials} clients got no reply and no EOF within 10s")
        for port, payload, back in results:
            self.assertEqual(back, payload)
            flow = sluice.wait_for_flow(port)
            self.assertEqual(flow["state"], "closed", flow)
            self.assertEqual((flow["bytes_up"], flow["bytes_down"]), (len(payload), len(payload)), flow)


if __name__ == "__main__":
    unittest.main()
