"""The PostgreSQL tests' peers: a real PostgreSQL 15 server on a free loopback port, in a cluster made for it in a
temp dir, with one login role per authentication method, and the real clients (psql, pgbench; psycopg from Python).

Everything runs as root (the suite does), but PostgreSQL refuses to run as root: initdb and the server run as the
`postgres` system user that the Debian package creates, and the temp dir belongs to it. The clients run as root and
reach the server over TCP on 127.0.0.1 (the proxy tests put Sluice there) or, for setup, over the unix socket in
the temp dir.

The cluster (`PostgresServer`):
- roles `postgres` (superuser), `sluice_trust`, `sluice_scram`, `sluice_md5`, `sluice_password`, each allowed in
  by pg_hba.conf only with its own method on 127.0.0.1 (`host` lines, so with or without TLS): trust, trust,
  scram-sha-256, md5, password (cleartext). Unix-socket connections are trusted for everyone.
- `sluice_md5`'s password is stored as an MD5 hash (set with password_encryption = md5), the others' as SCRAM.
- a database `sluice` in which every role may create tables (so does every database `create_database` makes).
- fsync off, TLS on with a self-signed certificate for localhost/127.0.0.1 (`cert_path`, a CA certificate too:
  `sslrootcert=cert_path` verifies it).

The helpers default to `sslmode=disable` (libpq's own default, `prefer`, would use TLS whenever the server offers
it); pass `sslmode="require"` and so on to test TLS.

initdb here takes well under 2 s (about 0.8 s on a loaded 2-core machine), so every server gets a fresh cluster;
there is no template cache.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from support import HOST, free_port, self_signed_cert

#: The OS user initdb and the server run as (root may not).
OS_USER = "postgres"
#: The server's major version the tests were written for; `bin_dir()` falls back to the newest installed one.
VERSION = "15"

SUPERUSER = "postgres"
TRUST_USER = "sluice_trust"
SCRAM_USER = "sluice_scram"
SCRAM_PASSWORD = "sluice-scram-password"
MD5_USER = "sluice_md5"
MD5_PASSWORD = "sluice-md5-password"
CLEARTEXT_USER = "sluice_password"
CLEARTEXT_PASSWORD = "sluice-cleartext-password"
DATABASE = "sluice"

#: Every test role: its password (None: none needed) and its pg_hba.conf method on 127.0.0.1.
PASSWORDS = {SUPERUSER: None, TRUST_USER: None, SCRAM_USER: SCRAM_PASSWORD, MD5_USER: MD5_PASSWORD,
             CLEARTEXT_USER: CLEARTEXT_PASSWORD}
METHODS = {SUPERUSER: "trust", TRUST_USER: "trust", SCRAM_USER: "scram-sha-256", MD5_USER: "md5",
           CLEARTEXT_USER: "password"}

#: How long a server may take to accept connections, and to exit after its shutdown signal.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: Upper bound for one client run (psql, pgbench) unless the caller gives its own.
CLIENT_TIMEOUT = 60.0


def bin_dir():
    """The directory of PostgreSQL's programs (initdb, postgres, psql, pgbench, pg_isready): VERSION's if installed,
    else the newest one's. Debian keeps them out of PATH (/usr/bin/psql is a wrapper that picks a version)."""
    preferred = f"/usr/lib/postgresql/{VERSION}/bin"
    if os.path.isfile(os.path.join(preferred, "postgres")):
        return preferred
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[-3]))
    return os.path.dirname(found[-1]) if found else preferred


def tool(name):
    return os.path.join(bin_dir(), name)


def unavailable():
    """Why the PostgreSQL tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the PostgreSQL tests run the server as the postgres user: they need root"
    for name in ("initdb", "postgres", "psql", "pgbench", "pg_isready"):
        if not os.access(tool(name), os.X_OK):
            return f"{tool(name)} is missing: postgresql is not installed (scripts/setup --test installs it)"
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"there is no {OS_USER} system user (the postgresql package creates it)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (scripts/setup --test installs it)"
    return None


def client_env(user, database=DATABASE, port=None, host=HOST, password=None, sslmode="disable", extra=None):
    """The environment libpq clients (psql, pgbench, psycopg) read: PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD
    (the role's known one unless `password` is given; "" sends none), PGSSLMODE (None: libpq's default). Any PG*
    variable of the caller's environment is dropped first, so nothing leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=host, PGUSER=user, PGDATABASE=database, PGCONNECT_TIMEOUT="10")
    if port is not None:
        env["PGPORT"] = str(port)
    password = PASSWORDS.get(user) if password is None else password
    if password:
        env["PGPASSWORD"] = password
    if sslmode is not None:
        env["PGSSLMODE"] = sslmode
    env.update(extra or {})
    return env


class PostgresServer:
    """A real PostgreSQL server on 127.0.0.1:port with a fresh cluster in its own temp dir `dir` (owned by the
    postgres user): data in `dir/data`, the unix socket in `dir`, the server's log in `dir/postgres.log`, the TLS
    certificate at `cert_path`. Started by the constructor (which returns once it accepts connections and the
    roles exist); `stop()` ends it by PID and removes the temp dir.

    With `netns` the server runs in that network namespace (`ip netns exec`, then `setpriv` to the postgres user) on
    `host`:`port`; `client_networks` (CIDR ranges) get the same pg_hba.conf lines as 127.0.0.1. The unix socket is
    in the file system, so `admin` reaches it from anywhere."""

    def __init__(self, host=HOST, port=None, netns=None, client_networks=()):
        self.popen = None
        self.host = host
        self.netns = netns
        self.client_networks = list(client_networks)
        self.dir = tempfile.mkdtemp(prefix="sluice-pg-")
        try:
            account = pwd.getpwnam(OS_USER)
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            os.chmod(self.dir, 0o755)  # root's clients read the certificate and the log
            self.data = os.path.join(self.dir, "data")
            self.socket_dir = self.dir
            self.port = port or free_port()
            self.log_path = os.path.join(self.dir, "postgres.log")
            started = time.monotonic()
            self._initdb()
            self.initdb_seconds = time.monotonic() - started
            self.cert_path, self.key_path = self_signed_cert(self.dir)
            os.chown(self.key_path, account.pw_uid, account.pw_gid)
            os.chmod(self.key_path, 0o600)  # the server insists
            self._configure()
            self.start()
            self._create_roles()
            self.start_seconds = time.monotonic() - started
        except BaseException:
            self.stop()
            raise

    def _as_postgres(self, args, **kwargs):
        """Runs `args` as the postgres user in the temp dir (root's cwd may be closed to it); output captured."""
        return subprocess.run(args, user=OS_USER, group=OS_USER, extra_groups=[], cwd=self.dir,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs)

    def _initdb(self):
        result = self._as_postgres(
            [tool("initdb"), "-D", self.data, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C",
             "--no-sync", "--no-instructions"],
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}): {result.stdout}{result.stderr}")

    def _configure(self):
        """pg_hba.conf: one `host` line per role with its method, unix socket trusted; the settings appended to
        postgresql.conf (the last setting of a name wins), so a restart keeps them."""
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("# TYPE  DATABASE  USER  ADDRESS  METHOD  (written by tests/e2e/pg_support.py)\n")
            f.write("local all all trust\n")
            for user, method in METHODS.items():
                for network in ["127.0.0.1/32"] + self.client_networks:
                    f.write(f"host all {user} {network} {method}\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(
                "\n# tests/e2e/pg_support.py\n"
                f"listen_addresses = '{self.host}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "shared_buffers = 32MB\n"
                "max_connections = 100\n"
                "password_encryption = 'scram-sha-256'\n"
                "ssl = on\n"
                f"ssl_cert_file = '{self.cert_path}'\n"
                f"ssl_key_file = '{self.key_path}'\n"
                "log_connections = on\n"
                "log_disconnections = on\n"
                "logging_collector = off\n"
            )

    def start(self):
        """Starts the server (again, after `stop_server()`) and returns once it accepts connections."""
        with open(self.log_path, "ab") as log:
            if self.netns:
                # Into the namespace as root first (setns needs it), then down to the postgres user.
                self.popen = subprocess.Popen(
                    ["ip", "netns", "exec", self.netns, "setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}",
                     "--clear-groups", "--", tool("postgres"), "-D", self.data],
                    cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            else:
                self.popen = subprocess.Popen([tool("postgres"), "-D", self.data], user=OS_USER, group=OS_USER,
                                              extra_groups=[], cwd=self.dir, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.popen.returncode}: {self.log()}")
            # 0: accepting; 1: rejecting (still starting up); 2: no answer yet.
            prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
            ready = subprocess.run(prefix + [tool("pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "2"],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not accepting on {self.port} after {START_TIMEOUT}s: {self.log()}")
            time.sleep(0.05)

    def _create_roles(self):
        # The MD5 role's password is hashed with MD5 only while password_encryption says so (this session only).
        sql = (
            "GRANT ALL ON SCHEMA public TO PUBLIC;\n"  # in template1, so every database made later has it
            f"CREATE ROLE {TRUST_USER} LOGIN;\n"
            f"CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}';\n"
            f"CREATE ROLE {CLEARTEXT_USER} LOGIN PASSWORD '{CLEARTEXT_PASSWORD}';\n"
            "SET password_encryption = 'md5';\n"
            f"CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}';\n"
            "RESET password_encryption;\n"
        )
        self.admin(sql, database="template1")
        self.create_database(DATABASE)

    def admin(self, sql, database="postgres"):
        """Runs `sql` as the superuser over the unix socket (not through any proxy); fails on the first error.
        Returns psql's stdout (unaligned, tuples only)."""
        result = subprocess.run(
            [tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir, "-p", str(self.port),
             "-U", SUPERUSER, "-d", database, "-f", "-"],
            input=sql, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
            env=client_env(SUPERUSER, database, self.port, host=self.socket_dir),
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql as {SUPERUSER} failed ({result.returncode}): {result.stderr}\nSQL:\n{sql}")
        return result.stdout

    def create_database(self, name, owner=SUPERUSER):
        """Creates database `name` (every role may create tables in it) owned by `owner`."""
        self.admin(f'CREATE DATABASE "{name}" OWNER "{owner}";')

    def dsn(self, user=TRUST_USER, port=None, host=HOST, database=DATABASE, password=None, sslmode="disable",
            **params):
        """A libpq keyword/value connection string (psql, psycopg.connect) for `user`, with the role's known
        password unless `password` is given ("" leaves it out). `port` defaults to the server's own; pass Sluice's
        port to go through the proxy. Extra libpq parameters as keywords (sslrootcert=..., channel_binding=...)."""
        parts = {"host": host, "port": port or self.port, "user": user, "dbname": database, "connect_timeout": 10}
        password = PASSWORDS.get(user) if password is None else password
        if password:
            parts["password"] = password
        if sslmode is not None:
            parts["sslmode"] = sslmode
        parts.update(params)
        return " ".join(f"{key}={value}" for key, value in parts.items())

    def client(self, program, args, user=TRUST_USER, port=None, host=HOST, database=DATABASE, password=None,
               sslmode="disable", input=None, timeout=CLIENT_TIMEOUT, env=None):
        """Runs a libpq client (`program`: "psql", "pgbench", ... from the server's version) as `user`, connection
        settings in the environment (see `client_env`); returns the CompletedProcess (text)."""
        environment = client_env(user, database, port or self.port, host, password, sslmode, env)
        return subprocess.run([tool(program)] + list(args), input=input,
                              stdin=None if input is not None else subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout, env=environment)

    def psql(self, args, user=TRUST_USER, port=None, host=HOST, database=DATABASE, password=None,
             sslmode="disable", input=None, timeout=CLIENT_TIMEOUT, env=None):
        """`psql -X -w -v ON_ERROR_STOP=1 ARGS...` as `user` against `port` (default: the server's own). -w: never
        prompt, a missing password fails at once. E.g. psql(["-At", "-c", "select 1"]). Returns CompletedProcess."""
        return self.client("psql", ["-X", "-w", "-v", "ON_ERROR_STOP=1"] + list(args), user, port, host, database,
                           password, sslmode, input, timeout, env)

    def pgbench(self, args, user=TRUST_USER, port=None, host=HOST, database=DATABASE, password=None,
                sslmode="disable", timeout=CLIENT_TIMEOUT, env=None):
        """`pgbench ARGS...` as `user` against `port`; returns the CompletedProcess."""
        return self.client("pgbench", args, user, port, host, database, password, sslmode, None, timeout, env)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop_server(self):
        """Stops the server by PID: SIGINT (fast shutdown: ends sessions, checkpoints), SIGKILL after STOP_TIMEOUT.
        The cluster stays; `start()` brings it back."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        """Stops the server and removes the temp dir. Safe to call more than once."""
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.dir, True)


class PostgresTestCase:
    """Mixin for a unittest.TestCase (or SluiceTest): one PostgresServer for the class as `cls.pg`, skipped when
    `unavailable()` says so, stopped after the class even when its setUpClass fails halfway."""

    pg = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reason = unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        cls.pg = PostgresServer()
        cls.addClassCleanup(cls.pg.stop)
