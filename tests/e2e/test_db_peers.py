"""Self-test of the database peers (pg_support.py, mysql_support.py): each server starts, every test role gets in
with its own authentication method, and the real clients work against it DIRECTLY (no Sluice). When one of these
fails, the proxy tests built on the same peers cannot pass either; this says whether the peer or Sluice is at fault.
"""

import re
import unittest

import mysql_support
import pg_support
from mysql_support import ED25519_USER, NATIVE_USER, MariaDBTestCase
from pg_support import CLEARTEXT_USER, MD5_USER, SCRAM_USER, SUPERUSER, TRUST_USER, PostgresTestCase
from support import poll

try:
    import psycopg
except ImportError:  # scripts/setup --test installs it
    psycopg = None
try:
    import pymysql
except ImportError:  # scripts/setup --test installs it
    pymysql = None


class PostgresPeerTests(PostgresTestCase, unittest.TestCase):

    def query(self, sql, **kwargs):
        """One value from psql -At, asserting success."""
        result = self.pg.psql(["-At", "-c", sql], timeout=30, **kwargs)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def authenticated(self, user, method):
        """Waits for the server's log_connections line saying `user` got in with `method`."""
        line = f'connection authenticated: identity="{user}" method={method}'
        poll(lambda: line in self.pg.log(), 5.0, message=f"no '{line}' in the server log")

    def test_trust_users(self):
        for user in (TRUST_USER, SUPERUSER):
            with self.subTest(user=user):
                self.assertEqual(self.query("select current_user", user=user, password=""), user)

    def test_password_users_with_their_own_method(self):
        for user, method in ((SCRAM_USER, "scram-sha-256"), (MD5_USER, "md5"), (CLEARTEXT_USER, "password")):
            with self.subTest(user=user):
                self.assertEqual(self.query("select current_user", user=user), user)
                self.authenticated(user, method)

    def test_md5_user_password_is_stored_as_md5(self):
        stored = self.query(f"select rolname || ' ' || case when rolpassword like 'md5%' then 'md5'"
                            f" when rolpassword like 'SCRAM-SHA-256$%' then 'scram' end from pg_authid"
                            f" where rolname in ('{MD5_USER}', '{SCRAM_USER}') order by 1", user=SUPERUSER)
        self.assertEqual(stored.splitlines(), [f"{MD5_USER} md5", f"{SCRAM_USER} scram"])

    def test_wrong_or_missing_password_is_refused(self):
        for user in (SCRAM_USER, MD5_USER):
            with self.subTest(user=user):
                wrong = self.pg.psql(["-At", "-c", "select 1"], user=user, password="wrong", timeout=30)
                self.assertEqual(wrong.returncode, 2)
                self.assertIn("password authentication failed", wrong.stderr)
                missing = self.pg.psql(["-At", "-c", "select 1"], user=user, password="", timeout=30)
                self.assertEqual(missing.returncode, 2)
                self.assertIn("no password supplied", missing.stderr)

    def test_tls_verified_against_the_certificate(self):
        result = self.pg.psql(["-At", "-c", "select ssl from pg_stat_ssl where pid = pg_backend_pid()"],
                              user=SCRAM_USER, sslmode="verify-full", env={"PGSSLROOTCERT": self.pg.cert_path},
                              timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "t")

    def test_stdin_script(self):
        result = self.pg.psql(["-At", "-f", "-"], user=SCRAM_USER, timeout=30,
                              input="create table script_t (n int);\ninsert into script_t values (1), (2);\n"
                                    "select sum(n) from script_t;\ndrop table script_t;\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["CREATE", "TABLE", "INSERT", "0", "2", "3", "DROP", "TABLE"])

    @unittest.skipIf(psycopg is None, "psycopg is not installed (scripts/setup --test installs it)")
    def test_psycopg_prepared_statement(self):
        with psycopg.connect(self.pg.dsn(SCRAM_USER)) as conn:
            self.assertFalse(conn.info.pgconn.ssl_in_use)
            row = conn.execute("select %s::int + 1, %s::text || '!'", (41, "sluice"), prepare=True).fetchone()
            self.assertEqual(row, (42, "sluice!"))
            prepared = conn.execute("select count(*) from pg_prepared_statements where not from_sql").fetchone()[0]
            self.assertEqual(prepared, 1)
        with psycopg.connect(self.pg.dsn(MD5_USER, sslmode="verify-full", sslrootcert=self.pg.cert_path)) as conn:
            self.assertTrue(conn.info.pgconn.ssl_in_use)
            self.assertEqual(conn.execute("select current_user").fetchone()[0], MD5_USER)

    def test_pgbench_select_only(self):
        self.pg.create_database("bench", owner=TRUST_USER)
        init = self.pg.pgbench(["-i", "-s", "1", "-q"], user=TRUST_USER, database="bench", timeout=60)
        self.assertEqual(init.returncode, 0, init.stderr)
        self.pg.admin("grant select on all tables in schema public to public", database="bench")
        run = self.pg.pgbench(["-n", "-S", "-c", "2", "-T", "2"], user=SCRAM_USER, database="bench", timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        processed = re.search(r"number of transactions actually processed: (\d+)", run.stdout)
        self.assertIsNotNone(processed, run.stdout)
        self.assertGreater(int(processed.group(1)), 0)
        self.assertIn("number of failed transactions: 0", run.stdout)


class MariaDBPeerTests(MariaDBTestCase, unittest.TestCase):

    def query(self, sql, **kwargs):
        result = self.mariadb.mysql(["-N", "-B", "-e", sql], timeout=30, **kwargs)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_users_with_their_own_plugin(self):
        for user in (NATIVE_USER, ED25519_USER):
            with self.subTest(user=user):
                self.assertEqual(self.query("select current_user()", user=user), f"{user}@%")
        plugins = self.mariadb.admin("select user, plugin from mysql.user where user like 'sluice%' order by user")
        self.assertEqual(plugins.splitlines(), [f"{ED25519_USER}\ted25519", f"{NATIVE_USER}\tmysql_native_password"])

    def test_wrong_password_is_refused(self):
        for user in (NATIVE_USER, ED25519_USER):
            with self.subTest(user=user):
                result = self.mariadb.mysql(["-e", "select 1"], user=user, password="wrong", timeout=30)
                self.assertEqual(result.returncode, 1)
                self.assertIn("Access denied", result.stderr)

    def test_tables_in_the_shared_database(self):
        self.query("create table t (n int); insert into t values (1), (2), (3)", user=NATIVE_USER)
        self.assertEqual(self.query("select sum(n) from t", user=ED25519_USER), "6")
        self.assertEqual(self.query("select @@character_set_server", user=ED25519_USER), "utf8mb4")

    def test_tls_and_plaintext(self):
        self.assertEqual(self.query("show status like 'Ssl_cipher'", user=NATIVE_USER), "Ssl_cipher")
        cipher = self.query("show status like 'Ssl_cipher'", user=ED25519_USER, ssl=True)
        self.assertRegex(cipher, r"^Ssl_cipher\tTLS_")
        verified = self.mariadb.mysql(["-N", "-B", "-e", "select 1", f"--ssl-ca={self.mariadb.cert_path}",
                                       "--ssl-verify-server-cert"], ssl=True, timeout=30)
        self.assertEqual(verified.returncode, 0, verified.stderr)

    @unittest.skipIf(pymysql is None, "PyMySQL is not installed (scripts/setup --test installs it)")
    def test_pymysql_parameterised_query(self):
        conn = pymysql.connect(**self.mariadb.connect_args(NATIVE_USER))
        try:
            with conn.cursor() as cursor:
                cursor.execute("select %s + 1, concat(%s, '!')", (41, "it's sluice"))
                self.assertEqual(cursor.fetchone(), (42, "it's sluice!"))
                cursor.execute("select current_user()")
                self.assertEqual(cursor.fetchone()[0], f"{NATIVE_USER}@%")
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
