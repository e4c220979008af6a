"""The MySQL-protocol tests' peers: a real MariaDB server on a free loopback port with a fresh data directory in a
temp dir, one user per authentication plugin, and the real clients (the mariadb `mysql` client; PyMySQL from Python).

Everything runs as root (the suite does); mariadbd runs as root too (`--user=root`, so no file in the temp dir needs
another owner). It reads no option file (`--no-defaults`, first on every command line, clients included: Debian's
/etc/mysql would otherwise point them at the system server's socket and settings).

The server (`MariaDBServer`):
- users `root` (no password; from localhost over the unix socket, or from 127.0.0.1), `sluice_native`
  (mysql_native_password) and `sluice_ed25519` (MariaDB's ed25519 plugin), the last two from any host ('%') with
  all privileges on the database `sluice`.
- `--skip-name-resolve` and no host cache: clients are matched by address, and a peer that drops connections
  mid-handshake (a proxy test, a readiness probe) never gets 127.0.0.1 blocked for "too many connection errors".
- InnoDB tuned for speed (no flush at commit, no doublewrite, small buffer pool and redo log), utf8mb4.
- TLS available with a self-signed certificate for localhost/127.0.0.1 (`cert_path`, also a CA certificate).

The `mysql` client uses TLS whenever the server offers it unless told `--skip-ssl`: `mysql()` passes `--skip-ssl`
unless called with `ssl=True`, so the protocol is plaintext by default.

mariadb-install-db takes about 0.5 s here, so every server gets a fresh data directory; there is no template cache.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from support import HOST, free_port, self_signed_cert

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "mysql"

ROOT_USER = "root"
NATIVE_USER = "sluice_native"
NATIVE_PASSWORD = "sluice-native-password"
ED25519_USER = "sluice_ed25519"
ED25519_PASSWORD = "sluice-ed25519-password"
DATABASE = "sluice"

#: Every test user: its password ("" for none) and its authentication plugin.
PASSWORDS = {ROOT_USER: "", NATIVE_USER: NATIVE_PASSWORD, ED25519_USER: ED25519_PASSWORD}
PLUGINS = {ROOT_USER: "mysql_native_password", NATIVE_USER: "mysql_native_password", ED25519_USER: "ed25519"}

#: How long a server may take to accept connections, and to exit after its shutdown signal.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
#: Upper bound for one client run unless the caller gives its own.
CLIENT_TIMEOUT = 60.0

#: Server options besides the paths and the port: speed over durability, and no surprises from the host cache.
SERVER_OPTIONS = [
    "--user=root",
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--host-cache-size=0",
    "--max-connect-errors=1000000",
    "--max-connections=200",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--skip-log-bin",
    "--performance-schema=OFF",
]


def unavailable():
    """Why the MariaDB tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the MariaDB tests run mariadbd with --user=root: they need root"
    for path in (MARIADBD, INSTALL_DB):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: mariadb-server is not installed (scripts/setup --test installs it)"
    if shutil.which(CLIENT) is None:
        return "the mysql client is missing: mariadb-client is not installed (scripts/setup --test installs it)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (scripts/setup --test installs it)"
    return None


def greeting_ready(port, timeout=2.0):
    """True when a server on `port` sends a protocol-10 handshake (the first packet: 3-byte length, sequence 0,
    then the protocol version byte 10)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as probe:
            probe.settimeout(timeout)
            head = probe.recv(5)
            return len(head) == 5 and head[3] == 0 and head[4] == 10
    except OSError:
        return False


class MariaDBServer:
    """A real MariaDB server on 127.0.0.1:port with a fresh data directory in its own temp dir `dir`: data in
    `dir/data`, the unix socket at `socket_path`, the server's log at `log_path`, the TLS certificate at
    `cert_path`. Started by the constructor (which returns once it accepts connections and the users exist);
    `stop()` ends it by PID and removes the temp dir."""

    def __init__(self, host=HOST, port=None, netns=None):
        """`host`, `port`: where it listens (a free loopback port by default). With `netns` it runs in that network
        namespace (`ip netns exec`); its unix socket, which `admin` uses, is a path and works from anywhere."""
        self.popen = None
        self.host = host
        self.netns = netns
        self.dir = tempfile.mkdtemp(prefix="sluice-mariadb-")
        try:
            self.data = os.path.join(self.dir, "data")
            self.socket_path = os.path.join(self.dir, "mysqld.sock")
            self.port = port or free_port()
            self.log_path = os.path.join(self.dir, "mariadb.log")
            started = time.monotonic()
            self._install_db()
            self.install_seconds = time.monotonic() - started
            self.cert_path, self.key_path = self_signed_cert(self.dir)
            self.start()
            self._create_users()
            self.start_seconds = time.monotonic() - started
        except BaseException:
            self.stop()
            raise

    def _install_db(self):
        result = subprocess.run(
            [INSTALL_DB, "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
             "--innodb-log-file-size=16M", "--innodb-buffer-pool-size=16M"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=self.dir, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed ({result.returncode}): {result.stdout}{result.stderr}")

    def start(self):
        """Starts the server (again, after `stop_server()`) and returns once it sends its handshake."""
        args = [MARIADBD, "--no-defaults", f"--datadir={self.data}", f"--socket={self.socket_path}",
                f"--port={self.port}", f"--pid-file={os.path.join(self.dir, 'mariadbd.pid')}",
                f"--tmpdir={self.dir}", f"--log-error={self.log_path}",
                f"--ssl-cert={self.cert_path}", f"--ssl-key={self.key_path}"] + SERVER_OPTIONS
        args = [arg if not arg.startswith("--bind-address=") else f"--bind-address={self.host}" for arg in args]
        if self.netns:
            args = ["ip", "netns", "exec", self.netns] + args
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(args, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.popen.returncode}: {self.log()}")
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd not answering on {self.port} after {START_TIMEOUT}s: {self.log()}")
            time.sleep(0.05)

    def _ready(self):
        """On loopback: its TCP port sends the handshake. In a namespace, where this process cannot reach the port:
        its unix socket answers a query."""
        if not self.netns:
            return greeting_ready(self.port)
        if not os.path.exists(self.socket_path):
            return False
        probe = subprocess.run([CLIENT, "--no-defaults", f"--socket={self.socket_path}", "--user=root", "-e", "SELECT 1"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=CLIENT_TIMEOUT)
        return probe.returncode == 0

    def _create_users(self):
        self.admin(
            "INSTALL SONAME 'auth_ed25519';\n"
            f"CREATE DATABASE {DATABASE};\n"
            f"CREATE USER '{NATIVE_USER}'@'%' IDENTIFIED VIA mysql_native_password"
            f" USING PASSWORD('{NATIVE_PASSWORD}');\n"
            f"CREATE USER '{ED25519_USER}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{ED25519_PASSWORD}');\n"
            f"GRANT ALL ON {DATABASE}.* TO '{NATIVE_USER}'@'%';\n"
            f"GRANT ALL ON {DATABASE}.* TO '{ED25519_USER}'@'%';\n"
        )

    def admin(self, sql, database=None):
        """Runs `sql` as root over the unix socket (not through any proxy); fails on the first error. Returns the
        client's stdout (batch mode, no column names)."""
        args = [CLIENT, "--no-defaults", f"--socket={self.socket_path}", "--user=root", "--batch",
                "--skip-column-names"]
        if database:
            args.append(f"--database={database}")
        result = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f"mysql as root failed ({result.returncode}): {result.stderr}\nSQL:\n{sql}")
        return result.stdout

    def create_database(self, name, users=(NATIVE_USER, ED25519_USER)):
        """Creates database `name` with all privileges on it for `users`."""
        self.admin(f"CREATE DATABASE `{name}`;\n" + "".join(f"GRANT ALL ON `{name}`.* TO '{u}'@'%';\n" for u in users))

    def mysql(self, args, user=NATIVE_USER, password=None, port=None, host=HOST, database=DATABASE, ssl=False,
              input=None, timeout=CLIENT_TIMEOUT):
        """`mysql --no-defaults --protocol=TCP ... ARGS...` as `user` (password: the user's known one unless given;
        "" sends none) against `port` (default: the server's own; pass Sluice's to go through the proxy). `ssl`:
        False adds --skip-ssl, True --ssl, None leaves the client's default (TLS when offered). E.g.
        mysql(["-N", "-B", "-e", "select 1"]). Returns the CompletedProcess (text)."""
        password = PASSWORDS.get(user, "") if password is None else password
        command = [CLIENT, "--no-defaults", "--protocol=TCP", f"--host={host}", f"--port={port or self.port}",
                   f"--user={user}", "--connect-timeout=10"]
        if password:
            command.append(f"--password={password}")
        if database:
            command.append(f"--database={database}")
        if ssl is True:
            command.append("--ssl")
        elif ssl is False:
            command.append("--skip-ssl")
        command += list(args)
        return subprocess.run(command, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=timeout)

    def connect_args(self, user=NATIVE_USER, password=None, port=None, host=HOST, database=DATABASE):
        """Keyword arguments for pymysql.connect(**...) as `user` (PyMySQL has no ed25519 without PyNaCl: use
        the native user)."""
        password = PASSWORDS.get(user, "") if password is None else password
        return dict(host=host, port=port or self.port, user=user, password=password, database=database,
                    connect_timeout=10, read_timeout=30, write_timeout=30)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop_server(self):
        """Stops the server by PID: SIGTERM (normal shutdown), SIGKILL after STOP_TIMEOUT. The data stays;
        `start()` brings it back."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
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


class MariaDBTestCase:
    """Mixin for a unittest.TestCase (or SluiceTest): one MariaDBServer for the class as `cls.mariadb`, skipped
    when `unavailable()` says so, stopped after the class even when its setUpClass fails halfway."""

    mariadb = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reason = unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        cls.mariadb = MariaDBServer()
        cls.addClassCleanup(cls.mariadb.stop)
