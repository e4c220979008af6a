"""Transparent mode (issue 19) in network namespaces: a client namespace routes through a gateway namespace, where
Sluice runs with a `tproxy://` and a `redirect://` listener at once and `sluice transparent rules --apply` sends it
the traffic, to a server namespace running sshd, PostgreSQL, MariaDB, an HTTP and an HTTPS server on their usual
ports. The client runs the real ssh, psql, mysql and curl (HTTP and HTTPS, IPv4 and IPv6) against the server's own
address; Sluice records ssh, postgres, mysql and http flows whose server is that address.

Everything happens inside namespaces made per test class (netns_support.Lab) and deleted afterwards, even when a
test fails; the servers and Sluice are stopped by PID before that. Skipped without root, `ip netns` or nft.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import netns_support
from netns_support import GATEWAY_CLIENT_V4, NETWORKS, SERVER_V4, SERVER_V6, Lab
from pg_support import TRUST_USER, PostgresServer, client_env, tool
import pg_support
import mysql_support
from ssh_support import PASSWORD, SSHServer, askpass, ensure_user, ssh_options
import ssh_support
from support import SLUICE_BIN, SluiceProcess, SluiceTest, poll, run_cli

HTTP_BODY = b"hello from the server namespace\n"
#: The ports the listeners take in the gateway.
TPROXY_PORT = 8022
REDIRECT_PORT = 8023
#: The HTTPS server's name: clients name HTTPS servers (SNI), and Sluice checks the server's certificate for it.
HTTPS_NAME = "web.sluice.test"
#: A plain TCP echo server in the server namespace, on a port no target lists.
ECHO_PORT = 7000

ECHO_SERVER = r"""
import socket, sys, threading
server = socket.create_server(("::", int(sys.argv[1])), family=socket.AF_INET6, dualstack_ipv6=True)
def serve(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

HTTPS_SERVER = r"""
import functools, http.server, socket, ssl, sys
cert, key, directory = sys.argv[1:4]
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
server = Server(("::", 443), functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""

CLIENT = r"""
import socket, sys
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
try:
    s = socket.create_connection((host, port), timeout=10)
except OSError as error:
    print(f"error: {error}")
    sys.exit()
data = b""
try:
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass  # reset: closed with the bytes sent unread
print(data.decode(errors="replace"))
"""


def unavailable():
    return netns_support.unavailable() or ssh_support.unavailable() or pg_support.unavailable()


class TransparentModeTest(SluiceTest):
    lab = None

    @classmethod
    def setUpClass(cls):
        reason = unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        cls.class_tmp = tempfile.mkdtemp(prefix="sluice-transparent-")
        cls.addClassCleanup(shutil.rmtree, cls.class_tmp, True)
        cls.lab = Lab()
        cls.addClassCleanup(cls.lab.close)  # last: after every server in the namespaces is stopped
        ensure_user()
        cls.sshd = SSHServer(os.path.join(cls.class_tmp, "sshd"), host=SERVER_V4, port=22, netns=cls.lab.server)
        cls.addClassCleanup(cls.sshd.stop)
        cls.pg = PostgresServer(host=SERVER_V4, port=5432, netns=cls.lab.server, client_networks=NETWORKS)
        cls.addClassCleanup(cls.pg.stop)
        site = os.path.join(cls.class_tmp, "site")
        os.makedirs(site)
        with open(os.path.join(site, "index.html"), "wb") as f:
            f.write(HTTP_BODY)
        cls.http = cls._serve(["python3", "-m", "http.server", "80", "--bind", "::", "--directory", site], 80, "http.server")
        # HTTPS with a certificate of its own for its name, which Sluice is told to trust (--upstream-ca).
        cls.https_cert = os.path.join(cls.class_tmp, "https.crt")
        key = os.path.join(cls.class_tmp, "https.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", cls.https_cert, "-days", "2", "-subj", f"/CN={HTTPS_NAME}", "-addext", f"subjectAltName=DNS:{HTTPS_NAME}"],
            stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=30)
        cls.https = cls._serve(["python3", "-c", HTTPS_SERVER, cls.https_cert, key, site], 443, "HTTPS server")
        cls.echo = cls._serve(["python3", "-c", ECHO_SERVER, str(ECHO_PORT)], ECHO_PORT, "echo server")
        # MariaDB on its usual port; a MySQL server speaks first, so Sluice chooses the protocol by that port.
        cls.mariadb_missing = mysql_support.unavailable()
        if not cls.mariadb_missing:
            cls.mariadb = mysql_support.MariaDBServer(host=SERVER_V4, port=3306, netns=cls.lab.server)
            cls.addClassCleanup(cls.mariadb.stop)

    @classmethod
    def _serve(cls, args, port, what):
        process = subprocess.Popen(Lab.prefix(cls.lab.server) + args, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls._stop, process)
        cls.lab.wait_listening(cls.lab.server, port, process=process, what=what)
        return process

    @staticmethod
    def _stop(process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    # Helpers

    def start_gateway_sluice(self, config, *extra):
        """`sluice --headless` in the gateway namespace with `config` (YAML text) and the server's key trusted;
        returns once both transparent listeners listen."""
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        with open(os.path.join(self.data_dir, "known_hosts"), "w") as f:
            f.write(self.sshd.known_hosts_line())
        self.config = os.path.join(self.tmp, "sluice.yaml")
        with open(self.config, "w") as f:
            f.write(config)
        stderr_path = os.path.join(self.tmp, "sluice.stderr")
        with open(stderr_path, "wb") as stderr:
            popen = subprocess.Popen(
                Lab.prefix(self.lab.gateway) + [SLUICE_BIN, "--headless", "-q", "--data-dir", self.data_dir, "--config", self.config,
                                                "--upstream-ca", self.https_cert, *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        proc = SluiceProcess(popen, self.data_dir, stderr_path, [])
        self.addCleanup(proc.kill)
        try:
            for port in (TPROXY_PORT, REDIRECT_PORT):
                self.lab.wait_listening(self.lab.gateway, port, process=popen, what="sluice")
        except RuntimeError as error:
            self.fail(f"{error}; stderr:\n{proc.stderr()}")
        return proc

    def rules(self, *args, check=True):
        """`sluice transparent rules ARGS` in the gateway namespace."""
        result = self.lab.exec(self.lab.gateway, [SLUICE_BIN, "transparent", "rules", "--data-dir", self.data_dir, *args],
                               check=False)
        if check:
            self.assertEqual(result.returncode, 0, f"rules {args} failed: {result.stdout}{result.stderr}")
        return result

    def apply_both(self):
        """TPROXY for SSH and HTTPS, NAT redirect for HTTP, PostgreSQL and the echo port; removed again when the test
        ends."""
        self.rules("--tproxy", "--port", str(TPROXY_PORT), "--dports", "22,443", "--interface", "r0", "--apply")
        self.addCleanup(self.rules, "--tproxy", "--remove", check=False)
        # The port comes from the config's redirect:// listener.
        self.rules("--redirect", "--config", self.config, "--dports", f"80,5432,{ECHO_PORT}", "--interface", "r0", "--apply")
        self.addCleanup(self.rules, "--redirect", "--remove", check=False)

    def client(self, args, env=None, timeout=60):
        """Runs `args` in the client namespace; returns the CompletedProcess (text)."""
        return self.lab.exec(self.lab.client, args, check=False, env=env, timeout=timeout)

    def raw(self, host, port, payload):
        """Connects from the client namespace, sends `payload`, half-closes, returns what came back until the close
        or a reset ("error: ..." when the connect failed)."""
        return self.client(["python3", "-c", CLIENT, host, str(port), payload]).stdout.strip()

    def wait_flows(self, proc, count, message):
        return poll(lambda: (lambda flows: flows if len(flows) >= count and all(f["state"] in ("closed", "error") for f in flows)
                             else None)(proc.flows()), 20, interval=0.1, message=message)

    # Tests

    def test_ssh_postgres_and_http_through_tproxy_and_redirect_at_once(self):
        proc = self.start_gateway_sluice(
            f"listen:\n  - tproxy://[::]:{TPROXY_PORT}\n  - redirect://[::]:{REDIRECT_PORT}\n"
            "targets:\n"
            "  - name: lab-db\n"
            f"    destination: [{SERVER_V4}, \"{SERVER_V6}\"]\n"
            "    port: 5432\n"
            "    policy:\n"
            "      rules:\n"
            "        - {name: lab-no-show, risk: critical, action: block, sql: {statement: [SHOW]}}\n"
            "  - name: lab\n"
            f"    destination: [{SERVER_V4}, \"{SERVER_V6}\"]\n"
            "    port: [22, 80, 443]\n"
        )
        self.apply_both()

        ssh = self.client(["ssh", *ssh_options(22), f"{ssh_support.USER}@{SERVER_V4}", "echo", "through-sluice"],
                          env=askpass(self.tmp, PASSWORD))
        self.assertEqual(ssh.returncode, 0, ssh.stderr)
        self.assertIn("through-sluice", ssh.stdout)

        env = client_env(TRUST_USER, host=SERVER_V4, port=5432)
        psql = self.client([tool("psql"), "-X", "-w", "-At", "-c", "select 40 + 2"], env=env)
        self.assertEqual(psql.returncode, 0, psql.stderr)
        self.assertEqual(psql.stdout.strip(), "42")
        # The database's target has a policy of its own: it refuses what the top-level one would let run.
        refused = self.client([tool("psql"), "-X", "-w", "-At", "-c", "SHOW server_version"], env=env)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("rule lab-no-show", refused.stderr)

        curl = self.client(["curl", "-sS", "--max-time", "20", f"http://{SERVER_V4}/index.html"])
        self.assertEqual(curl.returncode, 0, curl.stderr)
        self.assertEqual(curl.stdout.encode(), HTTP_BODY)
        curl6 = self.client(["curl", "-sS", "--max-time", "20", f"http://[{SERVER_V6}]/index.html"])
        self.assertEqual(curl6.returncode, 0, curl6.stderr)
        self.assertEqual(curl6.stdout.encode(), HTTP_BODY)

        # HTTPS through TPROXY, IPv4 and IPv6: intercepted with Sluice's CA, which the client trusts.
        ca = os.path.join(self.data_dir, "ca", "sluice-ca.pem")
        for address in (SERVER_V4, f"[{SERVER_V6}]"):
            https = self.client(["curl", "-sS", "--max-time", "20", "--cacert", ca, "--resolve", f"{HTTPS_NAME}:443:{address}",
                                 f"https://{HTTPS_NAME}/index.html"])
            self.assertEqual(https.returncode, 0, https.stderr + proc.stderr())
            self.assertEqual(https.stdout.encode(), HTTP_BODY, https.stdout)

        flows = self.wait_flows(proc, 7, "seven finished flows")
        by_server = {(f["kind"], f["server"]): f for f in flows}
        ssh_flow = by_server.get(("ssh", f"{SERVER_V4}:22"))
        pg_flow = by_server.get(("postgres", f"{SERVER_V4}:5432"))
        http_flow = by_server.get(("http", f"{SERVER_V4}:80"))
        http6_flow = by_server.get(("http", f"[{SERVER_V6}]:80")) or by_server.get(("http", f"{SERVER_V6}:80"))
        self.assertTrue(ssh_flow and pg_flow and http_flow and http6_flow, json.dumps(flows, indent=1))
        self.assertTrue(ssh_flow["listener"].startswith("tproxy://"), ssh_flow)
        self.assertTrue(pg_flow["listener"].startswith("redirect://"), pg_flow)
        self.assertTrue(http_flow["listener"].startswith("redirect://"), http_flow)
        for flow in (ssh_flow, pg_flow, http_flow):
            self.assertEqual(flow["state"], "closed", flow)
            self.assertTrue(flow["client"].startswith("10.250.1.2:"), flow)
        self.assertTrue(http6_flow["client"].startswith("fd5c:1::2") or http6_flow["client"].startswith("[fd5c:1::2]"), http6_flow)
        https_flows = [f for f in flows if f["server"] in (f"{SERVER_V4}:443", f"[{SERVER_V6}]:443")]
        self.assertEqual(len(https_flows), 2, json.dumps(flows, indent=1))
        for flow in https_flows:
            self.assertEqual((flow["kind"], flow["state"]), ("http", "closed"), flow)
            self.assertTrue(flow["listener"].startswith("tproxy://"), flow)
            self.assertEqual(flow.get("url"), f"https://{HTTPS_NAME}/index.html", flow)

        commands = run_cli("commands", "--data-dir", self.data_dir, "--json")
        self.assertEqual(commands.returncode, 0, commands.stderr)
        texts = [json.loads(line)["text"] for line in commands.stdout.decode().splitlines() if line.strip()]
        self.assertIn("select 40 + 2", texts)
        self.assertTrue(any("through-sluice" in text for text in texts), texts)
        self.assertEqual(proc.stop()[0], 0, proc.stderr())

    def test_mysql_through_redirect_is_chosen_by_its_port_and_judged_by_its_targets_policy(self):
        if self.mariadb_missing:
            self.skipTest(self.mariadb_missing)
        proc = self.start_gateway_sluice(
            f"listen:\n  - tproxy://[::]:{TPROXY_PORT}\n  - redirect://[::]:{REDIRECT_PORT}\n"
            "targets:\n"
            "  - name: lab-mysql\n"
            f"    destination: [{SERVER_V4}]\n"
            "    port: 3306\n"
            "    policy:\n"
            "      rules:\n"
            "        - {name: lab-no-drop, risk: critical, action: block, sql: {statement: [DROP]}}\n"
        )
        self.rules("--redirect", "--config", self.config, "--dports", "3306", "--interface", "r0", "--apply")
        self.addCleanup(self.rules, "--redirect", "--remove", check=False)

        def mysql(statement):
            return self.client(["mysql", "--no-defaults", "--protocol=TCP", f"--host={SERVER_V4}", "--port=3306",
                                f"--user={mysql_support.NATIVE_USER}", f"--password={mysql_support.NATIVE_PASSWORD}",
                                f"--database={mysql_support.DATABASE}", "--skip-ssl", "--connect-timeout=10", "-N", "-B",
                                "-e", statement])

        ok = mysql("SELECT 40 + 2")
        self.assertEqual(ok.returncode, 0, ok.stderr + proc.stderr())
        self.assertEqual(ok.stdout.strip(), "42")
        # The target's own policy refuses DROP with MySQL's own error; the statement never reaches the server.
        self.mariadb.admin("CREATE TABLE kept (id INT)", database=mysql_support.DATABASE)
        refused = mysql("DROP TABLE kept")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("1142", refused.stderr)
        self.assertIn("lab-no-drop", refused.stderr)
        self.assertIn("kept", self.mariadb.admin("SHOW TABLES", database=mysql_support.DATABASE))

        flows = self.wait_flows(proc, 2, "two finished MySQL flows")
        for flow in flows:
            self.assertEqual((flow["kind"], flow["server"], flow["state"]), ("mysql", f"{SERVER_V4}:3306", "closed"), flow)
            self.assertTrue(flow["listener"].startswith("redirect://"), flow)
            self.assertTrue(flow["client"].startswith("10.250.1.2:"), flow)
        commands = run_cli("commands", "--data-dir", self.data_dir, "--json")
        self.assertEqual(commands.returncode, 0, commands.stderr)
        recorded = [json.loads(line) for line in commands.stdout.decode().splitlines() if line.strip()]
        by_text = {command["text"]: command for command in recorded}
        self.assertEqual(by_text["SELECT 40 + 2"]["decision"], "allowed", recorded)
        self.assertEqual((by_text["DROP TABLE kept"]["decision"], by_text["DROP TABLE kept"]["rule"]), ("blocked", "lab-no-drop"), recorded)
        self.assertEqual(proc.stop()[0], 0, proc.stderr())

    def test_unknown_and_denied_destinations_are_refused_and_recorded_with_their_reason(self):
        proc = self.start_gateway_sluice(
            f"listen:\n  - tproxy://[::]:{TPROXY_PORT}\n  - redirect://[::]:{REDIRECT_PORT}\n"
            "targets:\n"
            f"  - {{name: no-web, destination: {SERVER_V4}, port: 80, action: deny}}\n"
            f"  - {{name: lab, destination: {SERVER_V4}, port: [22, 5432]}}\n"
        )
        self.apply_both()
        denied = self.client(["curl", "-sS", "--max-time", "10", f"http://{SERVER_V4}/"])
        self.assertNotEqual(denied.returncode, 0, denied.stdout)
        # Refused: closed (or reset) without a byte back.
        self.assertEqual(self.raw(SERVER_V4, ECHO_PORT, "knock"), "")
        # A client that connects to the listener itself: its original destination is Sluice's own listener.
        self.assertEqual(self.raw(GATEWAY_CLIENT_V4, REDIRECT_PORT, "loop"), "")

        flows = self.wait_flows(proc, 3, "three refusals")
        errors = {f["server"]: f["error"] for f in flows}
        self.assertTrue(all(f["state"] == "error" and f["kind"] == "tcp" for f in flows), flows)
        self.assertIn("denied by no-web", errors.get(f"{SERVER_V4}:80", ""), errors)
        self.assertIn("is in no target (transparent.unknown: refuse)", errors.get(f"{SERVER_V4}:{ECHO_PORT}", ""), errors)
        self.assertIn("Sluice's own listener (a loop)", errors.get(f"{GATEWAY_CLIENT_V4}:{REDIRECT_PORT}", ""), errors)

    def test_an_unknown_destination_relayed_is_a_tcp_flow_with_an_alert(self):
        proc = self.start_gateway_sluice(
            f"listen:\n  - tproxy://[::]:{TPROXY_PORT}\n  - redirect://[::]:{REDIRECT_PORT}\n"
            "transparent:\n  unknown: relay\n  sniff_timeout: 0.5\n"
        )
        self.apply_both()
        self.assertEqual(self.raw(SERVER_V4, ECHO_PORT, "echo me"), "echo me")
        self.assertEqual(self.raw(SERVER_V6, ECHO_PORT, "and me"), "and me")
        flows = self.wait_flows(proc, 2, "two relayed flows")
        self.assertEqual(sorted(f["kind"] for f in flows), ["tcp", "tcp"], flows)
        self.assertTrue(all(f["state"] == "closed" for f in flows), flows)
        alerts = run_cli("alerts", "--data-dir", self.data_dir, "--json")
        self.assertEqual(alerts.returncode, 0, alerts.stderr)
        messages = [json.loads(line)["message"] for line in alerts.stdout.decode().splitlines() if line.strip()]
        self.assertIn(f"{SERVER_V4}:{ECHO_PORT} is in no target: relayed as tcp (transparent.unknown: relay)", messages)

    def test_local_traffic_is_redirected_and_sluices_own_marked_connections_are_not(self):
        """--local redirects the gateway's own connections too; Sluice's connection to the server carries its mark
        and passes, where without the mark it would come back to Sluice for ever."""
        proc = self.start_gateway_sluice(
            f"listen:\n  - tproxy://[::]:{TPROXY_PORT}\n  - redirect://[::]:{REDIRECT_PORT}\n"
            f"targets:\n  - {{destination: {SERVER_V4}, port: 80}}\n"
        )
        self.rules("--redirect", "--port", str(REDIRECT_PORT), "--dports", "80", "--local", "--apply")
        self.addCleanup(self.rules, "--redirect", "--remove", check=False)
        curl = self.lab.exec(self.lab.gateway, ["curl", "-sS", "--max-time", "20", f"http://{SERVER_V4}/index.html"], check=False)
        self.assertEqual(curl.returncode, 0, curl.stderr + proc.stderr())
        self.assertEqual(curl.stdout.encode(), HTTP_BODY)
        flows = self.wait_flows(proc, 1, "one flow")
        self.assertEqual([(f["kind"], f["server"]) for f in flows], [("http", f"{SERVER_V4}:80")], flows)

    def test_rules_remove_leaves_nothing_behind(self):
        before_rules = self.lab.exec(self.lab.gateway, ["ip", "rule", "show"]).stdout
        before_rules6 = self.lab.exec(self.lab.gateway, ["ip", "-6", "rule", "show"]).stdout
        printed = self.rules("--tproxy", "--port", str(TPROXY_PORT), "--dports", "22,8000-8099")
        self.assertIn("tcp dport { 22, 8000-8099 } tproxy to :8022", printed.stdout)
        self.assertEqual(self.lab.exec(self.lab.gateway, ["nft", "list", "ruleset"]).stdout.strip(), "", "printing applies nothing")

        self.rules("--tproxy", "--port", str(TPROXY_PORT), "--dports", "22", "--apply")
        self.rules("--tproxy", "--port", str(TPROXY_PORT), "--dports", "22", "--apply")  # again: replaced, not doubled
        self.rules("--redirect", "--port", str(REDIRECT_PORT), "--dports", "80", "--local", "--apply")
        ruleset = self.lab.exec(self.lab.gateway, ["nft", "list", "ruleset"]).stdout
        self.assertEqual(ruleset.count("tproxy to :8022"), 1, ruleset)
        self.assertIn("redirect to :8023", ruleset)
        self.assertIn("fwmark 0x1 lookup 100", self.lab.exec(self.lab.gateway, ["ip", "rule", "show"]).stdout)

        self.rules("--tproxy", "--remove")
        ruleset = self.lab.exec(self.lab.gateway, ["nft", "list", "ruleset"]).stdout
        self.assertNotIn("tproxy", ruleset)
        self.assertIn("redirect to :8023", ruleset)
        self.rules("--redirect", "--remove")
        self.assertEqual(self.lab.exec(self.lab.gateway, ["nft", "list", "ruleset"]).stdout.strip(), "")
        self.assertEqual(self.lab.exec(self.lab.gateway, ["ip", "rule", "show"]).stdout, before_rules)
        self.assertEqual(self.lab.exec(self.lab.gateway, ["ip", "-6", "rule", "show"]).stdout, before_rules6)
        routes = self.lab.exec(self.lab.gateway, ["ip", "route", "show", "table", "100"], check=False).stdout
        self.assertEqual(routes.strip(), "")


if __name__ == "__main__":
    unittest.main()
