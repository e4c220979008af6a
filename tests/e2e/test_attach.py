"""`sluice attach`: the TUI on a recorder that runs headless, with psql and a real PostgreSQL 15.

A headless recorder serves its control API on a port the system picks (it writes the address into
`<data-dir>/api-address`) with a `postgres://` listener; the default policy holds `DROP TABLE`. Two operators attach in
tmux. Both see a flow arrive live and a held statement in their queues; one approves it and psql goes on, the other's
queue empties. A statement the second one blocks is refused. Quitting one TUI, and killing the other, leaves the
recorder recording.
"""

import json
import os
import signal
import subprocess
import time
import unittest

from pg_support import DATABASE, PostgresTestCase, client_env, tool
from support import HOST, SLUICE_BIN, free_port, poll
from tui_support import IO_TIMEOUT, START_TIMEOUT, TUI, TUITestCase


class AttachTest(PostgresTestCase, TUITestCase):
    def start_recorder(self):
        port = free_port()
        listen = f"postgres://{HOST}:{port}=>{HOST}:{self.pg.port}"
        self.stderr_path = os.path.join(self.tmp, "recorder.stderr")
        with open(self.stderr_path, "wb") as stderr:
            recorder = subprocess.Popen(
                [SLUICE_BIN, "--headless", "-q", "--data-dir", self.data_dir, "--api", f"{HOST}:0", "--listen", listen],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            )
        def stop():
            if recorder.poll() is None:
                recorder.kill()
            recorder.wait(timeout=10)
        self.addCleanup(stop)
        address_path = os.path.join(self.data_dir, "api-address")
        poll(lambda: os.path.exists(address_path) or recorder.poll() is not None, START_TIMEOUT)
        self.assertIsNone(recorder.poll(), self.recorder_log())
        with open(address_path) as f:
            self.api = f.read().strip()
        self.assertTrue(self.api.startswith(f"http://{HOST}:"), self.api)
        return recorder, port

    def recorder_log(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def attach(self, *extra):
        tui = TUI(self.data_dir, 0, 0, width=150, height=30, args=["attach", "--data-dir", self.data_dir, *extra])
        self.addCleanup(tui.close)
        tui.wait_text("attached to", "1 Flows", timeout=START_TIMEOUT)
        return tui

    def psql(self, port, sql):
        client = subprocess.Popen(
            [tool("psql"), "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], env=client_env("sluice_trust", DATABASE, port),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.addCleanup(lambda: client.poll() is None and client.kill())
        return client

    def table_exists(self, name):
        return self.pg.admin(f"SELECT count(*) FROM pg_tables WHERE tablename = '{name}';", database=DATABASE).strip() == "1"

    def stored_flows(self):
        result = subprocess.run(
            [SLUICE_BIN, "flows", "--json", "--data-dir", self.data_dir], capture_output=True, text=True, timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def test_two_operators_see_flows_live_and_decide_holds_and_the_recorder_outlives_them(self):
        created = self.pg.psql(["-c", "CREATE TABLE attach_one (id int); CREATE TABLE attach_two (id int);"])
        self.assertEqual(created.returncode, 0, created.stderr)
        recorder, port = self.start_recorder()
        first = self.attach()
        second = self.attach()

        # A flow arrives live on both screens.
        select = self.psql(port, "SELECT 40 + 2")
        out, err = select.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual((select.returncode, out.strip()), (0, "42"), err)
        for tui in (first, second):
            tui.wait_line(f"{HOST}:{self.pg.port}", "closed", timeout=IO_TIMEOUT)

        # A held statement waits in both queues; the first operator lets it run and the second's queue empties.
        for tui in (first, second):
            tui.send("3")
            tui.wait_text("Nothing held.")
        drop = self.psql(port, "DROP TABLE attach_one")
        for tui in (first, second):
            tui.wait_line("DROP TABLE attach_one", timeout=IO_TIMEOUT + 20)
        time.sleep(0.3)
        self.assertIsNone(drop.poll(), "psql waits while the statement is held")
        first.send("a")
        out, err = drop.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(drop.returncode, 0, err)
        self.assertFalse(self.table_exists("attach_one"))
        first.wait_text("Nothing held.")
        second.wait_text("Nothing held.")

        # The second operator blocks the next one.
        refused = self.psql(port, "DROP TABLE attach_two")
        second.wait_line("DROP TABLE attach_two", timeout=IO_TIMEOUT + 20)
        first.wait_line("DROP TABLE attach_two", timeout=IO_TIMEOUT)
        second.send("d")
        out, err = refused.communicate(timeout=IO_TIMEOUT + 20)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("blocked by Sluice", err)
        self.assertTrue(self.table_exists("attach_two"))
        first.wait_text("Nothing held.")

        # The Commands view shows who decided what, from the live stream.
        first.send("4")
        first.wait_line("DROP TABLE attach_one", "hold→allowed by operator")
        first.wait_line("DROP TABLE attach_two", "hold→blocked by operator")

        # `r` on the first flow replays it in the recorder: a new flow there, linked to the original.
        first.send("1")
        first.wait_text("CLIENT → SERVER")
        first.send("g")
        first.send("r")
        first.wait_text("replayed flow 1:", "<- #1 postgres", timeout=IO_TIMEOUT + 20)
        first.wait_line("replay of #1", timeout=IO_TIMEOUT)

        # One operator quits, the other's TUI is killed: the recorder records on.
        first.send("q")
        self.assertEqual(first.wait_exit(), 0, first.dump())
        second.close()
        self.assertIsNone(recorder.poll(), self.recorder_log())
        after = self.psql(port, "SELECT 'still recording'")
        out, err = after.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(after.returncode, 0, err)
        poll(lambda: len(self.stored_flows()) >= 5, IO_TIMEOUT, message="the recorder stored the flow made after detaching")

        # Stopped, the recorder takes its address file away: nobody attaches to a recorder that is gone.
        recorder.send_signal(signal.SIGTERM)
        self.assertEqual(recorder.wait(timeout=20), 0, self.recorder_log())
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "api-address")))
        gone = subprocess.run(
            [SLUICE_BIN, "attach", "--data-dir", self.data_dir], capture_output=True, text=True, timeout=30,
        )
        self.assertNotEqual(gone.returncode, 0)

    def test_a_wrong_token_is_one_line_and_no_screen(self):
        recorder, _ = self.start_recorder()
        token_file = os.path.join(self.tmp, "wrong-token")
        with open(token_file, "w") as f:
            f.write("0" * 64 + "\n")
        tui = TUI(self.data_dir, 0, 0, args=["attach", "--data-dir", self.data_dir, "--token-file", token_file])
        self.addCleanup(tui.close)
        tui.wait_exit()
        tui.wait_text("sluice: the recorder refused GET /api/schemes: HTTP 401")
        self.assertIsNone(recorder.poll())


if __name__ == "__main__":
    unittest.main()
