"""PostgreSQL through Sluice with the real clients (psql, pgbench, psycopg) and a real PostgreSQL 15: logins with
trust, md5 and SCRAM, simple and extended queries, COPY both ways, statements recorded as commands, policy blocks
answered as the server would answer them, cancel requests, and malformed input."""

import json
import os
import socket
import struct
import subprocess
import threading
import time
import unittest

from support import (HOST, SLUICE_BIN, SluiceProcess, SluiceTest, flows_json, free_port, poll, run_cli, run_replay,
                     START_TIMEOUT)
from pg_support import (DATABASE, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, TRUST_USER,
                        PostgresTestCase)

try:
    import psycopg
except ImportError:  # scripts/setup --test installs it; the tests that need it skip without
    psycopg = None


class PostgresThroughSluice(PostgresTestCase, SluiceTest):
    def start_pg_sluice(self, *extra, policy=None, options=""):
        """`sluice --headless` with one postgres:// listener (`options`: e.g. "?tls=intercept") in front of the
        class's server; returns (process, port)."""
        port = free_port()
        self._pg_runs = getattr(self, "_pg_runs", 0) + 1
        stderr_path = os.path.join(self.tmp, f"sluice-pg-{self._pg_runs}.stderr")
        args = [SLUICE_BIN, "--headless", "--data-dir", self.data_dir,
                "--listen", f"postgres://{HOST}:{port}=>{HOST}:{self.pg.port}{options}"]
        if policy is not None:
            path = os.path.join(self.tmp, f"policy-{self._pg_runs}.yaml")
            with open(path, "w") as f:
                f.write(policy)
            args += ["--policy", path]
        args += list(extra)
        with open(stderr_path, "wb") as stderr:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        proc = SluiceProcess(popen, self.data_dir, stderr_path, [])
        self.addCleanup(proc.kill)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if popen.poll() is not None:
                self.fail(f"sluice exited with {popen.returncode}; stderr:\n{proc.stderr()}")
            try:
                with socket.create_connection((HOST, port), timeout=1.0) as probe:
                    proc.probe_ports.add(probe.getsockname()[1])
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.fail(f"sluice not listening on {port}; stderr:\n{proc.stderr()}")
                time.sleep(0.05)
        return proc, port

    def commands(self, proc, expected=1, timeout=15):
        """`sluice commands --json` once at least `expected` commands are stored (the writer batches)."""
        def listed():
            result = run_cli("commands", "--data-dir", proc.data_dir, "--json", "--limit", "10000")
            rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
            return rows if len(rows) >= expected else None
        return poll(listed, timeout, message=f"fewer than {expected} commands stored")

    def finished_commands(self, proc, count, timeout=15):
        """The commands once `count` of them have their outcome."""
        def done():
            rows = self.commands(proc, count, timeout)
            return rows if sum(1 for row in rows if row.get("finished_at")) >= count else None
        return poll(done, timeout, message=f"fewer than {count} commands finished")

    def sessions(self, proc):
        return [f for f in proc.flows() if f["kind"] == "postgres" and f["client"].split(":")[-1] not in
                {str(p) for p in proc.probe_ports}]

    # Logins and simple queries

    def test_psql_logins_of_every_method_and_simple_queries_are_recorded_as_commands(self):
        # With the raw bytes stored too, so that the password messages' redaction is what keeps them out.
        proc, port = self.start_pg_sluice("--sql-record-bytes")
        result = self.pg.psql(["-At", "-c", "SELECT 40 + 2"], port=port)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "42"), result.stderr)
        for user, password in ((SCRAM_USER, SCRAM_PASSWORD), (MD5_USER, MD5_PASSWORD)):
            result = self.pg.psql(["-At", "-c", "SELECT current_user"], user=user, port=port)
            self.assertEqual((result.returncode, result.stdout.strip()), (0, user), result.stderr)
        wrong = self.pg.psql(["-At", "-c", "SELECT 1"], user=SCRAM_USER, password="not-it", port=port)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("password authentication failed", wrong.stderr)

        rows = self.finished_commands(proc, 3)
        texts = [row["text"] for row in rows]
        self.assertIn("SELECT 40 + 2", texts)
        first = next(row for row in rows if row["text"] == "SELECT 40 + 2")
        self.assertEqual((first["kind"], first["user"], first["database"], first["result"]), ("sql", TRUST_USER, DATABASE, "SELECT 1"))
        self.assertEqual(first["decision"], "allowed")
        self.assertGreaterEqual(first["duration"], 0)
        self.assertEqual({row["user"] for row in rows if row["text"] == "SELECT current_user"}, {SCRAM_USER, MD5_USER})
        refused = poll(lambda: next((f for f in self.sessions(proc) if f["state"] == "error"), None), 15)
        self.assertIn("password authentication failed", refused["error"])
        # No password, in clear or as a hash, reaches the store or the logs.
        proc.stop()
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    content = f.read()
                for secret in (SCRAM_PASSWORD, MD5_PASSWORD, "not-it"):
                    self.assertNotIn(secret.encode(), content, f"{secret} in {name}")

    def test_ssl_is_refused_so_prefer_goes_on_in_clear_and_require_fails(self):
        proc, port = self.start_pg_sluice()
        result = self.pg.psql(["-At", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"], port=port, sslmode="prefer")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "f"), result.stderr)
        result = self.pg.psql(["-At", "-c", "SELECT 1"], port=port, sslmode="require")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("does not support SSL", result.stderr)

    def test_several_statements_copy_both_ways_and_errors(self):
        proc, port = self.start_pg_sluice()
        script = (
            "CREATE TABLE copy_test (id int, name text);\n"
            "\\copy copy_test FROM STDIN\n1\tone\n2\ttwo\n\\.\n"
            "SELECT count(*) FROM copy_test;\n"
            "\\copy copy_test TO STDOUT\n"
            "SELECT * FROM no_such_table;\n"
        )
        result = self.pg.psql(["-At", "-v", "ON_ERROR_STOP=0"], port=port, input=script)
        self.assertIn("1\tone\n2\ttwo", result.stdout)
        self.assertIn("\n2\n", result.stdout)
        # psql sends a script's statements one by one; -c sends them as one Query.
        several = self.pg.psql(["-At", "-c", "SELECT count(*) FROM copy_test; SELECT 'x'"], port=port)
        self.assertEqual(several.stdout.split(), ["2", "x"], several.stderr)
        self.assertIn('relation "no_such_table" does not exist', result.stderr)
        rows = self.finished_commands(proc, 6)
        by_text = {row["text"]: row for row in rows}
        copy_in = next(row for row in rows if row["text"].upper().startswith("COPY") and "FROM STDIN" in row["text"].upper())
        self.assertEqual(copy_in["result"], "COPY 2")
        copy_out = next(row for row in rows if row["text"].upper().startswith("COPY") and "TO STDOUT" in row["text"].upper())
        self.assertEqual(copy_out["result"], "COPY 2")
        self.assertEqual(by_text["SELECT count(*) FROM copy_test; SELECT 'x'"]["result"], "SELECT 1; SELECT 1")
        self.assertIn("42P01", by_text["SELECT * FROM no_such_table;"]["error"])
        self.pg.admin("DROP TABLE IF EXISTS copy_test;", database=DATABASE)

    def test_tls_intercepted_on_both_legs(self):
        # Sluice's own leg to the server is verified: the test server's self-signed certificate is an extra root.
        proc, port = self.start_pg_sluice("--upstream-ca", self.pg.cert_path, options="?tls=intercept")
        ca = os.path.join(self.data_dir, "ca", "sluice-ca.pem")
        ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        # The client verifies Sluice's certificate for the name it connected to; the server sees TLS from Sluice.
        result = self.pg.psql(["-At", "-c", ssl], port=port, sslmode="verify-full", env={"PGSSLROOTCERT": ca})
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "t"), result.stderr)
        # Against the server's own certificate the client refuses: it is talking to Sluice.
        refused = self.pg.psql(["-At", "-c", "SELECT 1"], port=port, sslmode="verify-full", env={"PGSSLROOTCERT": self.pg.cert_path})
        self.assertNotEqual(refused.returncode, 0)
        # SCRAM passes without channel binding (Sluice does not offer it: it would bind Sluice's TLS session) ...
        scram = self.pg.psql(["-At", "-c", "SELECT current_user"], user=SCRAM_USER, port=port, sslmode="require",
                             env={"PGCHANNELBINDING": "disable"})
        self.assertEqual((scram.returncode, scram.stdout.strip()), (0, SCRAM_USER), scram.stderr)
        # ... a client in clear too (the server's leg is still TLS) ...
        clear = self.pg.psql(["-At", "-c", ssl], user=SCRAM_USER, port=port, sslmode="disable")
        self.assertEqual((clear.returncode, clear.stdout.strip()), (0, "t"), clear.stderr)
        # ... and a client that requires channel binding is refused, saying so.
        bound = self.pg.psql(["-At", "-c", "SELECT 1"], user=SCRAM_USER, port=port, sslmode="require",
                             env={"PGCHANNELBINDING": "require"})
        self.assertNotEqual(bound.returncode, 0)
        self.assertIn("channel binding", bound.stderr)
        rows = self.finished_commands(proc, 3)
        self.assertIn(ssl, [row["text"] for row in rows])

    # Policy

    def test_a_blocked_statement_is_an_error_and_the_next_one_runs(self):
        proc, port = self.start_pg_sluice()
        result = self.pg.psql(["-At", "-v", "ON_ERROR_STOP=0"], port=port,
                              input="SELECT 1;\nDROP DATABASE sluice;\nSELECT 2;\n")
        self.assertEqual(result.stdout.split(), ["1", "2"], result.stderr)
        self.assertIn("blocked by Sluice policy", result.stderr)
        self.assertIn("drop-database", result.stderr)
        self.assertEqual(self.pg.admin("SELECT count(*) FROM pg_database WHERE datname = 'sluice';").strip(), "1")
        rows = self.finished_commands(proc, 3)
        blocked = next(row for row in rows if row["text"] == "DROP DATABASE sluice;")
        self.assertEqual((blocked["risk"], blocked["action"], blocked["decision"], blocked["rule"]),
                         ("critical", "block", "blocked", "drop-database"))
        self.assertIn("42501", blocked["error"])
        alerts = run_cli("alerts", "--data-dir", proc.data_dir, "--json").stdout.decode()
        self.assertIn("drop-database", alerts)

    @unittest.skipIf(psycopg is None, "psycopg is not installed (scripts/setup --test installs it)")
    def test_prepared_statements_carry_their_parameters_and_a_blocked_one_leaves_the_session_usable(self):
        proc, port = self.start_pg_sluice()
        with psycopg.connect(self.pg.dsn(port=port), autocommit=True) as conn:
            for value in (7, 8):
                row = conn.execute("SELECT %s::int * 6, %s::text", (value, f"name-{value}"), prepare=True).fetchone()
                self.assertEqual(row, (value * 6, f"name-{value}"))
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as raised:
                conn.execute("DROP DATABASE sluice", prepare=True)
            self.assertIn("blocked by Sluice policy", str(raised.exception))
            self.assertEqual(conn.execute("SELECT %s::int", (5,)).fetchone(), (5,))
            # Inside a transaction the client sees the state the server is in: aborted by the error.
            conn.autocommit = False
            conn.execute("SELECT 1")
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DROP SCHEMA public CASCADE")
            self.assertEqual(conn.info.transaction_status, psycopg.pq.TransactionStatus.INERROR)
            conn.rollback()
            self.assertEqual(conn.execute("SELECT 9").fetchone(), (9,))
            conn.rollback()
        rows = self.finished_commands(proc, 4)
        executed = [row for row in rows if row["text"].startswith("SELECT $1::int * 6")]
        self.assertEqual([row["parameters"] for row in executed], [["7", "name-7"], ["8", "name-8"]])
        self.assertTrue(all(row["result"] == "SELECT 1" for row in executed), executed)
        self.assertIn("DROP DATABASE sluice", [row["text"] for row in rows if row["decision"] == "blocked"])

    @unittest.skipIf(psycopg is None, "psycopg is not installed (scripts/setup --test installs it)")
    def test_a_cancel_request_reaches_the_backend_it_names(self):
        proc, port = self.start_pg_sluice()
        with psycopg.connect(self.pg.dsn(port=port), autocommit=True) as conn:
            timer = threading.Timer(0.5, conn.cancel)
            timer.start()
            started = time.monotonic()
            with self.assertRaises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(20)")
            timer.join()
            self.assertLess(time.monotonic() - started, 10)
            self.assertEqual(conn.execute("SELECT 3").fetchone(), (3,))
        # A made-up key is not passed on.
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(struct.pack("!iiii", 16, 80877102, 12345, 67890))
            self.assertEqual(sock.recv(100), b"")
        flows = poll(lambda: [f for f in self.sessions(proc) if "cancel request" in (f.get("error") or "")] or None, 15)
        self.assertIn("not passed on", flows[0]["error"])

    # Load

    def test_pgbench_in_every_query_mode_without_errors(self):
        init = self.pg.pgbench(["-i", "-q", "-s", "1"])
        self.assertEqual(init.returncode, 0, init.stderr)
        proc, port = self.start_pg_sluice()
        for mode in ("simple", "extended", "prepared"):
            # -n: no vacuum or truncate before the run (TRUNCATE is a critical statement the default policy blocks).
            result = self.pg.pgbench(["-n", "-M", mode, "-c", "4", "-j", "2", "-T", "10"], port=port, timeout=90)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("number of failed transactions: 0", result.stdout)
            self.assertNotIn("error", result.stderr.lower())
        rows = self.commands(proc, 100)
        self.assertTrue(any(row["parameters"] for row in rows), "extended and prepared runs record parameters")

    # Replay

    def replay(self, *args, password=None):
        return run_replay(self.data_dir, *args, password_variable="PGPASSWORD", password=password)

    @unittest.skipIf(psycopg is None, "psycopg is not installed (scripts/setup --test installs it)")
    def test_a_session_replays_through_the_policy_as_a_new_linked_flow(self):
        self.pg.admin("CREATE TABLE IF NOT EXISTS replayed (n int, note text);", database=DATABASE)
        self.pg.admin(f"GRANT ALL ON replayed TO {SCRAM_USER};", database=DATABASE)
        proc, port = self.start_pg_sluice()
        # A SCRAM login, simple statements (one the policy blocks), then prepared ones with parameters and a NULL.
        result = self.pg.psql(["-Atq", "-v", "ON_ERROR_STOP=0"], user=SCRAM_USER, port=port,
                              input="INSERT INTO replayed VALUES (1, 'simple');\nDROP DATABASE sluice;\n"
                                    "SELECT count(*) FROM replayed;\n")
        self.assertEqual(result.stdout.split(), ["1"], result.stderr)
        with psycopg.connect(self.pg.dsn(user=SCRAM_USER, port=port), autocommit=True) as conn:
            conn.execute("INSERT INTO replayed VALUES (%s, %s)", (2, "it's prepared"), prepare=True)
            conn.execute("INSERT INTO replayed VALUES (%s, %s)", (3, None), prepare=True)
        self.finished_commands(proc, 5)
        simple, prepared = sorted((f for f in self.sessions(proc) if f["state"] != "error"), key=lambda f: f["id"])[-2:]
        proc.stop()

        # Sluice keeps no password: without one the login is refused, clearly, and nothing runs.
        code, out, err = self.replay(str(simple["id"]))
        self.assertEqual(code, 1, out + err)
        self.assertIn("login refused", out)
        self.assertIn("password", out)

        code, out, err = self.replay(f"{simple['id']},{prepared['id']}", password=SCRAM_PASSWORD)
        self.assertEqual(code, 0, out + err)
        self.assertIn(f"<- #{simple['id']} postgres {SCRAM_USER}@{DATABASE}", out)
        self.assertIn("2 of 2 statements answered, 0 errors; 1 left out (blocked when recorded)", out)
        self.assertIn(f"<- #{prepared['id']} postgres", out)
        rows = self.pg.admin("SELECT n, coalesce(note, 'NULL') FROM replayed ORDER BY n, note;", database=DATABASE)
        self.assertEqual(rows.splitlines(), ["1|simple", "1|simple", "2|it's prepared", "2|it's prepared", "3|NULL", "3|NULL"])
        self.assertEqual(self.pg.admin("SELECT count(*) FROM pg_database WHERE datname = 'sluice';").strip(), "1")

        # The replays are flows of their own, linked to what they repeat, their statements recorded as commands.
        flows = flows_json(self.data_dir)
        # (The refused login was recorded too: a replay of the simple session that got no further than the login.)
        replays = [f for f in flows if f.get("replay_of") in (simple["id"], prepared["id"])]
        self.assertEqual(sorted(f["replay_of"] for f in replays), [simple["id"], simple["id"], prepared["id"]])
        self.assertTrue(all(f["kind"] == "postgres" and f["client"] == "replay:0" for f in replays), replays)
        replayed_commands = [json.loads(line) for line in run_cli(
            "commands", "--data-dir", self.data_dir, "--json", "--limit", "1000").stdout.splitlines()]
        again = [c for c in replayed_commands if c["flow"] in {f["id"] for f in replays}]
        self.assertEqual(sorted(c["text"] for c in again),
                         sorted(["INSERT INTO replayed VALUES (1, 'simple');", "SELECT count(*) FROM replayed;",
                                 "INSERT INTO replayed VALUES ($1, $2)", "INSERT INTO replayed VALUES ($1, $2)"]))
        self.assertIn(["3", "NULL"], [c.get("parameters") for c in again])
        self.assertTrue(all(c["user"] == SCRAM_USER and c["result"] for c in again), again)

        # Elsewhere with --target: a port nothing listens on is an error of that session, said in one line.
        code, out, _ = self.replay(str(simple["id"]), "--target", f"{HOST}:{free_port()}", password=SCRAM_PASSWORD)
        self.assertEqual(code, 1)
        self.assertIn("stopped:", out)

    # Hostile input

    def test_malformed_packets_end_that_connection_with_an_error_and_others_go_on(self):
        proc, port = self.start_pg_sluice()
        cases = [
            ("bad startup length", struct.pack("!i", 3) + b"\x00" * 8),
            ("oversized startup", struct.pack("!ii", 20000, 196608)),
            ("unknown startup code", struct.pack("!ii", 8, 1234)),
        ]
        for name, payload in cases:
            with socket.create_connection((HOST, port), timeout=5) as sock:
                sock.sendall(payload)
                answer = sock.recv(1000)
                self.assertTrue(answer == b"" or answer.startswith(b"E"), f"{name}: {answer!r}")
                if answer:
                    self.assertIn(b"08P01", answer, name)
        # After a real startup: an unknown message type, then a message that claims a length under 4.
        for name, message in (("unknown type", b"\x01" + struct.pack("!i", 4)), ("length 3", b"Q" + struct.pack("!i", 3))):
            with socket.create_connection((HOST, port), timeout=5) as sock:
                params = b"user\x00" + TRUST_USER.encode() + b"\x00database\x00" + DATABASE.encode() + b"\x00\x00"
                sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
                greeting = b""
                while not greeting.endswith(b"Z\x00\x00\x00\x05I"):
                    chunk = sock.recv(4096)
                    self.assertTrue(chunk, f"{name}: the server hung up during the login")
                    greeting += chunk
                sock.sendall(message)
                rest = b""
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    rest += chunk
                self.assertIn(b"FATAL", rest, name)
                self.assertIn(b"the client broke the PostgreSQL protocol", rest, name)
        result = self.pg.psql(["-At", "-c", "SELECT 'still serving'"], port=port)
        self.assertEqual(result.stdout.strip(), "still serving", result.stderr)
        errors = poll(lambda: [f for f in self.sessions(proc) if f["state"] == "error"] if len(
            [f for f in self.sessions(proc) if f["state"] == "error"]) >= 5 else None, 15)
        self.assertTrue(all("the client broke the PostgreSQL protocol" in f["error"] for f in errors), errors)


if __name__ == "__main__":
    unittest.main()
