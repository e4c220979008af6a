"""MySQL protocol through Sluice with the real mysql client and PyMySQL against a real MariaDB: logins with
mysql_native_password and ed25519, queries, multi-statements, prepared statements, packets over 16 MiB, policy blocks
answered with ERR 1142, and malformed input."""

import json
import os
import socket
import struct
import subprocess
import time
import unittest

from support import (HOST, SLUICE_BIN, SluiceProcess, SluiceTest, flows_json, free_port, poll, run_cli, run_replay,
                     START_TIMEOUT)
from mysql_support import (DATABASE, ED25519_PASSWORD, ED25519_USER, NATIVE_PASSWORD, NATIVE_USER, MariaDBTestCase,
                           greeting_ready)

try:
    import pymysql
except ImportError:  # scripts/setup --test installs it; the tests that need it skip without
    pymysql = None
try:
    import mysql.connector as connector
except ImportError:  # scripts/setup --test installs it (mysql-connector-python)
    connector = None


class MySQLThroughSluice(MariaDBTestCase, SluiceTest):
    def start_mysql_sluice(self, *extra, options=""):
        """`sluice --headless` with one mysql:// listener (`options`: e.g. "?tls=intercept") in front of the class's
        server; returns (process, port)."""
        port = free_port()
        self._runs = getattr(self, "_runs", 0) + 1
        stderr_path = os.path.join(self.tmp, f"sluice-mysql-{self._runs}.stderr")
        args = [SLUICE_BIN, "--headless", "--data-dir", self.data_dir,
                "--listen", f"mysql://{HOST}:{port}=>{HOST}:{self.mariadb.port}{options}"] + list(extra)
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
                    probe.settimeout(5)
                    if probe.recv(5):  # the server's greeting came through
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.fail(f"sluice not serving MySQL on {port}; stderr:\n{proc.stderr()}")
            time.sleep(0.05)
        return proc, port

    def commands(self, proc, expected=1, timeout=15):
        def listed():
            result = run_cli("commands", "--data-dir", proc.data_dir, "--json", "--limit", "10000")
            rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
            finished = [row for row in rows if row.get("finished_at") or row["decision"] == "blocked"]
            return rows if len(finished) >= expected else None
        return poll(listed, timeout, message=f"fewer than {expected} commands stored")

    def sessions(self, proc):
        return [f for f in proc.flows() if f["kind"] == "mysql" and f["client"].split(":")[-1] not in
                {str(p) for p in proc.probe_ports}]

    def test_the_mysql_client_logs_in_with_every_plugin_and_queries_are_commands(self):
        proc, port = self.start_mysql_sluice()
        for user, password in ((NATIVE_USER, NATIVE_PASSWORD), (ED25519_USER, ED25519_PASSWORD)):
            result = self.mariadb.mysql(["-N", "-B", "-e", "SELECT CURRENT_USER(), 40 + 2"], user=user, password=password, port=port)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("42", result.stdout)
            self.assertIn(user, result.stdout)
        wrong = self.mariadb.mysql(["-e", "SELECT 1"], user=NATIVE_USER, password="not-it", port=port)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("Access denied", wrong.stderr)
        rows = self.commands(proc, 2)
        selects = [row for row in rows if row["text"] == "SELECT CURRENT_USER(), 40 + 2"]
        self.assertEqual({row["user"] for row in selects}, {NATIVE_USER, ED25519_USER})
        self.assertTrue(all(row["database"] == DATABASE and row["result"] == "1 row" for row in selects), selects)
        refused = poll(lambda: next((f for f in self.sessions(proc) if f["state"] == "error"), None), 15)
        self.assertIn("Access denied", refused["error"])

    def test_tls_intercepted_on_both_legs(self):
        # Sluice's own leg to the server is verified: the test server's self-signed certificate is an extra root.
        proc, port = self.start_mysql_sluice("--upstream-ca", self.mariadb.cert_path, options="?tls=intercept")
        ca = os.path.join(self.data_dir, "ca", "sluice-ca.pem")
        cipher = "SHOW SESSION STATUS LIKE 'Ssl_cipher'"
        for user, password in ((NATIVE_USER, NATIVE_PASSWORD), (ED25519_USER, ED25519_PASSWORD)):
            # The client checks Sluice's certificate for the address it dialled; the server sees TLS from Sluice.
            result = self.mariadb.mysql(["-N", "-B", f"--ssl-ca={ca}", "--ssl-verify-server-cert", "-e", cipher], user=user,
                                        password=password, port=port, ssl=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            name, _, value = result.stdout.strip().partition("\t")
            self.assertEqual(name, "Ssl_cipher")
            self.assertTrue(value, f"the server's session is TLS: {result.stdout!r}")
        # Against the server's own certificate the client refuses: it is talking to Sluice.
        refused = self.mariadb.mysql(["-e", "SELECT 1", f"--ssl-ca={self.mariadb.cert_path}", "--ssl-verify-server-cert"],
                                     port=port, ssl=True)
        self.assertNotEqual(refused.returncode, 0)
        # A client that does not ask for TLS stays in clear on both legs (the handshake's packets are numbered, so
        # Sluice cannot add TLS on one leg alone).
        clear = self.mariadb.mysql(["-N", "-B", "-e", cipher], port=port, ssl=False)
        self.assertEqual(clear.returncode, 0, clear.stderr)
        self.assertEqual(clear.stdout.strip().partition("\t")[2], "")
        rows = self.commands(proc, 3)
        self.assertEqual(sum(row["text"] == cipher for row in rows), 3, rows)

    def test_without_interception_a_client_that_requires_tls_is_refused(self):
        proc, port = self.start_mysql_sluice()
        result = self.mariadb.mysql(["-e", "SELECT 1", f"--ssl-ca={self.mariadb.cert_path}", "--ssl-verify-server-cert"],
                                    port=port, ssl=True)
        self.assertNotEqual(result.returncode, 0)

    def test_multi_statements_several_result_sets_and_an_error(self):
        proc, port = self.start_mysql_sluice()
        script = (
            "CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, name TEXT);\n"
            "DELETE FROM items WHERE id > 0;\n"
            "INSERT INTO items VALUES (1, 'one'), (2, 'two');\n"
            # With another delimiter the client sends the two statements as one COM_QUERY (multi-statements).
            "DELIMITER //\nSELECT COUNT(*) FROM items; SELECT name FROM items ORDER BY id//\nDELIMITER ;\n"
            "SELECT * FROM no_such_table;\n"
            "SELECT 'after the error';\n"
        )
        result = self.mariadb.mysql(["-N", "-B", "--force"], port=port, input=script)
        self.assertIn("2\none\ntwo\nafter the error", result.stdout)
        self.assertIn("doesn't exist", result.stderr)
        rows = self.commands(proc, 6)
        by_text = {row["text"]: row for row in rows}
        self.assertEqual(by_text["INSERT INTO items VALUES (1, 'one'), (2, 'two')"]["result"], "OK, 2 affected")
        self.assertEqual(by_text["SELECT COUNT(*) FROM items; SELECT name FROM items ORDER BY id"]["result"], "1 row; 2 rows")
        self.assertIn("1146", by_text["SELECT * FROM no_such_table"]["error"])

    def test_a_blocked_drop_database_is_err_1142_and_the_session_goes_on(self):
        proc, port = self.start_mysql_sluice()
        result = self.mariadb.mysql(["-N", "-B", "--force"], port=port,
                                    input="SELECT 1;\nDROP DATABASE sluice;\nSELECT 2;\n")
        self.assertEqual(result.stdout.split(), ["1", "2"], result.stderr)
        self.assertIn("ERROR 1142 (42000)", result.stderr)
        self.assertIn("drop-database", result.stderr)
        self.assertIn("sluice", self.mariadb.admin("SHOW DATABASES;"))
        rows = self.commands(proc, 3)
        blocked = next(row for row in rows if row["text"] == "DROP DATABASE sluice")
        self.assertEqual((blocked["decision"], blocked["rule"]), ("blocked", "drop-database"))

    @unittest.skipIf(pymysql is None, "PyMySQL is not installed (scripts/setup --test installs it)")
    def test_pymysql_parameters_and_a_block_inside_a_transaction(self):
        proc, port = self.start_mysql_sluice()
        connection = pymysql.connect(**self.mariadb.connect_args(port=port))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT %s + 1, %s", (41, "it's"))
                self.assertEqual(cursor.fetchone(), (42, "it's"))
                cursor.execute("CREATE TABLE IF NOT EXISTS tx (id INT)")
                connection.begin()
                cursor.execute("INSERT INTO tx VALUES (7)")
                with self.assertRaises(pymysql.err.OperationalError) as raised:
                    cursor.execute("TRUNCATE TABLE tx")
                self.assertEqual(raised.exception.args[0], 1142)
                # The transaction is as the server left it: the insert is still there, uncommitted.
                cursor.execute("SELECT COUNT(*) FROM tx WHERE id = 7")
                self.assertEqual(cursor.fetchone(), (1,))
                connection.rollback()
                cursor.execute("SELECT COUNT(*) FROM tx WHERE id = 7")
                self.assertEqual(cursor.fetchone(), (0,))
        finally:
            connection.close()
        rows = self.commands(proc, 5)
        self.assertIn("SELECT 41 + 1, 'it\\'s'", [row["text"] for row in rows])

    def test_server_side_prepared_statements_record_their_parameters(self):
        proc, port = self.start_mysql_sluice()
        # The mysql client prepares on the server with PREPARE/EXECUTE in SQL; the binary protocol is exercised by
        # a raw client below (mysql_stmt_* from Python needs a C connector).
        script = "PREPARE s FROM 'SELECT ? * 2'; SET @v = 21; EXECUTE s USING @v;\n"
        result = self.mariadb.mysql(["-N", "-B"], port=port, input=script)
        self.assertEqual(result.stdout.split(), ["42"], result.stderr)
        rows = self.commands(proc, 1)
        self.assertTrue(any("PREPARE s FROM" in row["text"] for row in rows))

    @unittest.skipIf(connector is None, "mysql-connector-python is not installed (scripts/setup --test installs it)")
    def test_binary_prepared_statements_carry_their_parameters_and_a_blocked_one_is_an_error(self):
        proc, port = self.start_mysql_sluice()
        connection = connector.connect(
            host=HOST, port=port, user=NATIVE_USER, password=NATIVE_PASSWORD, database=DATABASE, use_pure=True,
            ssl_disabled=True, connection_timeout=10)
        try:
            cursor = connection.cursor(prepared=True)  # COM_STMT_PREPARE, then COM_STMT_EXECUTE with binary values
            for value in (41, 7):
                cursor.execute("SELECT ? + 1, ?", (value, f"it's {value}"))
                self.assertEqual([tuple(row) for row in cursor.fetchall()], [(value + 1, f"it's {value}")])
            with self.assertRaises(connector.Error) as raised:
                cursor.execute("DROP DATABASE sluice", ())
            self.assertEqual(raised.exception.errno, 1142)
            cursor.execute("SELECT ?", (5,))
            self.assertEqual([tuple(row) for row in cursor.fetchall()], [(5,)])
        finally:
            connection.close()
        rows = self.commands(proc, 4)
        executed = [row for row in rows if row["text"] == "SELECT ? + 1, ?"]
        self.assertEqual([row["parameters"] for row in executed], [["41", "it's 41"], ["7", "it's 7"]])
        self.assertTrue(all(row["result"] == "1 row" for row in executed), executed)
        self.assertIn("DROP DATABASE sluice", [row["text"] for row in rows if row["decision"] == "blocked"])
        self.assertIn("sluice", self.mariadb.admin("SHOW DATABASES;"))

    def replay(self, *args, password=None):
        return run_replay(self.data_dir, *args, password_variable="MYSQL_PWD", password=password)

    @unittest.skipIf(connector is None, "mysql-connector-python is not installed (scripts/setup --test installs it)")
    def test_a_session_replays_through_the_policy_as_a_new_linked_flow(self):
        self.mariadb.admin("CREATE TABLE IF NOT EXISTS sluice.replayed (n INT, note TEXT);")
        proc, port = self.start_mysql_sluice()
        result = self.mariadb.mysql(["-N", "-B", "--force"], port=port,
                                    input="INSERT INTO replayed VALUES (1, 'simple');\nDROP DATABASE sluice;\n"
                                          "SELECT COUNT(*) FROM replayed;\n")
        self.assertEqual(result.stdout.split(), ["1"], result.stderr)
        connection = connector.connect(
            host=HOST, port=port, user=NATIVE_USER, password=NATIVE_PASSWORD, database=DATABASE, use_pure=True,
            ssl_disabled=True, connection_timeout=10, autocommit=True)
        try:
            cursor = connection.cursor(prepared=True)
            cursor.execute("INSERT INTO replayed VALUES (?, ?)", (2, "it's prepared"))
            cursor.execute("INSERT INTO replayed VALUES (?, ?)", (3, None))
        finally:
            connection.close()
        self.commands(proc, 5)
        simple, prepared = sorted((f for f in self.sessions(proc) if f["state"] != "error"), key=lambda f: f["id"])[-2:]
        proc.stop()

        code, out, err = self.replay(f"{simple['id']},{prepared['id']}", password=NATIVE_PASSWORD)
        self.assertEqual(code, 0, out + err)
        self.assertIn(f"<- #{simple['id']} mysql {NATIVE_USER}@{DATABASE}", out)
        self.assertIn("1 left out (blocked when recorded)", out)
        rows = self.mariadb.admin("SELECT n, COALESCE(note, 'NULL') FROM sluice.replayed ORDER BY n, note;")
        self.assertEqual([line.split("\t") for line in rows.splitlines() if line.strip()][-6:],
                         [["1", "simple"], ["1", "simple"], ["2", "it's prepared"], ["2", "it's prepared"],
                          ["3", "NULL"], ["3", "NULL"]])
        self.assertIn("sluice", self.mariadb.admin("SHOW DATABASES;"))
        replays = [f for f in flows_json(self.data_dir) if f.get("replay_of") in (simple["id"], prepared["id"])]
        self.assertEqual(sorted(f["replay_of"] for f in replays), [simple["id"], prepared["id"]])
        self.assertTrue(all(f["kind"] == "mysql" for f in replays), replays)

        # A wrong password is the server's refusal, said in one line.
        code, out, _ = self.replay(str(simple["id"]), password="not-it")
        self.assertEqual(code, 1)
        self.assertIn("login refused", out)
        self.assertIn("Access denied", out)

    def test_a_payload_over_16_mib_passes_whole(self):
        proc, port = self.start_mysql_sluice()
        self.mariadb.admin("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024;")
        size = 17 * 1024 * 1024
        created = self.mariadb.mysql(["-N", "-B", "-e", "CREATE TABLE big (b LONGBLOB)"], port=port)
        self.assertEqual(created.returncode, 0, created.stderr)
        value = "y" * size
        result = self.mariadb.mysql(["-N", "-B", "--max-allowed-packet=64M"], port=port,
                                    input=f"INSERT INTO big VALUES ('{value}');\nSELECT LENGTH(b) FROM big;\n")
        self.assertEqual(result.stdout.split(), [str(size)], result.stderr[-500:])

    def test_malformed_packets_end_that_connection_and_others_go_on(self):
        proc, port = self.start_mysql_sluice()
        with socket.create_connection((HOST, port), timeout=5) as sock:
            greeting = sock.recv(4096)
            self.assertGreater(len(greeting), 4)
            sock.sendall(struct.pack("<I", 2)[:3] + b"\x01" + b"\x01\x02")  # a handshake response too short to be one
            rest = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                rest += chunk
            self.assertIn(b"the client broke the MySQL protocol", rest)
        result = self.mariadb.mysql(["-N", "-B", "-e", "SELECT 'still serving'"], port=port)
        self.assertEqual(result.stdout.strip(), "still serving", result.stderr)
        failed = poll(lambda: next((f for f in self.sessions(proc) if "broke the MySQL protocol" in (f.get("error") or "")), None), 15)
        self.assertEqual(failed["state"], "error")


if __name__ == "__main__":
    unittest.main()
