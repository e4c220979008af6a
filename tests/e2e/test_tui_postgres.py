"""A PostgreSQL statement held by the risk policy and decided in the TUI's Intercept queue (3), with psql and a real
PostgreSQL 15.

Sluice runs its terminal UI in tmux with a `postgres://` listener in front of the test server. The default policy
holds high-risk SQL (`DROP TABLE`): psql waits while the statement is held; `a` lets it run, `d` answers it with an
ordinary error and the session goes on.
"""

import subprocess
import time
import unittest

from pg_support import DATABASE, SCRAM_PASSWORD, SCRAM_USER, PostgresTestCase, client_env, tool
from support import HOST, free_port
from tui_support import IO_TIMEOUT, TUI, TUITestCase


class TUIHeldStatementTest(PostgresTestCase, TUITestCase):
    def start_pg_tui(self):
        port = free_port()
        listen = f"postgres://{HOST}:{port}=>{HOST}:{self.pg.port}"
        tui = TUI(self.data_dir, port, self.pg.port, listen=listen, width=150, height=30,
                  args=["--data-dir", self.data_dir, "--listen", listen])
        self.addCleanup(tui.close)
        tui.wait_ready()
        return tui, port

    def start_psql(self, port, sql):
        """psql running `sql` through Sluice in the background; returns the Popen (text output piped)."""
        client = subprocess.Popen(
            [tool("psql"), "-X", "-w", "-At", "-v", "ON_ERROR_STOP=0", "-c", sql], env=client_env("sluice_trust", DATABASE, port),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.addCleanup(lambda: client.poll() is None and client.kill())
        return client

    def table_exists(self, name):
        return self.pg.admin(f"SELECT count(*) FROM pg_tables WHERE tablename = '{name}';", database=DATABASE).strip() == "1"

    def test_a_held_drop_table_runs_with_a_and_another_is_refused_with_d(self):
        created = self.pg.psql(["-c", "CREATE TABLE held_one (id int); CREATE TABLE held_two (id int);"])  # as the trust user, direct
        self.assertEqual(created.returncode, 0, created.stderr)
        tui, port = self.start_pg_tui()
        tui.send("3")
        tui.wait_text("Nothing held.")

        first = self.start_psql(port, "DROP TABLE held_one")
        line = tui.wait_line("DROP TABLE held_one", timeout=IO_TIMEOUT + 20)
        for part in ("high", "[drop-table]", "sluice_trust"):
            self.assertIn(part, line)
        time.sleep(0.5)
        self.assertIsNone(first.poll(), "psql waits while the statement is held")
        self.assertTrue(self.table_exists("held_one"), "a held statement has not reached the server")
        tui.send("a")
        out, err = first.communicate(timeout=IO_TIMEOUT + 20)
        self.assertEqual(first.returncode, 0, err)
        self.assertFalse(self.table_exists("held_one"))
        tui.wait_text("Nothing held.")

        second = self.start_psql(port, "DROP TABLE held_two")
        tui.wait_line("DROP TABLE held_two", "[drop-table]", timeout=IO_TIMEOUT + 20)
        tui.send("d")
        out, err = second.communicate(timeout=IO_TIMEOUT + 20)
        self.assertIn("ERROR:  blocked by Sluice", err)
        self.assertTrue(self.table_exists("held_two"), "a refused statement never ran")

        # The Commands view shows both with what the operator decided, the session's user and database.
        tui.send("4")
        tui.wait_line("DROP TABLE held_one", "hold→allowed by operator", f"sluice_trust@{DATABASE}")
        tui.wait_line("DROP TABLE held_two", "hold→blocked by operator")

    def test_r_re_runs_a_statement_after_a_yes_above_low_risk_and_asks_for_the_password(self):
        self.pg.admin(f"CREATE TABLE rerun_t (n int); GRANT ALL ON rerun_t TO {SCRAM_USER};", database=DATABASE)
        tui, port = self.start_pg_tui()
        inserted = self.pg.psql(["-c", "INSERT INTO rerun_t VALUES (1)"], user=SCRAM_USER, port=port)
        self.assertEqual(inserted.returncode, 0, inserted.stderr)
        # UPDATE without WHERE is critical: the default policy blocks it.
        updated = self.start_psql(port, "UPDATE rerun_t SET n = n + 10")
        updated.communicate(timeout=IO_TIMEOUT + 20)
        tui.send("4")
        tui.wait_line("UPDATE rerun_t SET n = n + 10", "critical", "block")
        tui.send("End")
        tui.send("r")
        tui.wait_text("re-run this critical-risk statement against")
        tui.send("y", "Enter")
        # The policy judges a re-run as it judges any statement: blocked again, on a new flow.
        tui.wait_row(r"re-ran statement 1 of flow \d+ as #\d+: error 42501")
        tui.send("g")  # the first row: the SCRAM user's INSERT
        tui.send("r")
        tui.wait_text(f"password for {SCRAM_USER}@{HOST}:{self.pg.port}")
        tui.type(SCRAM_PASSWORD)
        screen = tui.wait_text("•" * len(SCRAM_PASSWORD))
        self.assertNotIn(SCRAM_PASSWORD, screen)
        tui.send("Enter")
        tui.wait_row(r"re-ran statement 1 of flow \d+ as #\d+: INSERT 0 1")
        self.assertEqual(self.pg.admin("SELECT string_agg(n::text, ',') FROM rerun_t;", database=DATABASE).strip(), "1,1")


if __name__ == "__main__":
    unittest.main()
