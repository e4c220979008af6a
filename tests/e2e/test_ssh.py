"""SSH through Sluice with the real OpenSSH client and server: logins, exec, exit status, target host keys, file
transfer and refusals. The interactive shell, command capture and policy are in test_ssh_shell.py."""

import hashlib
import os
import socket
import subprocess
import time
import unittest

from support import HOST, SLUICE_BIN, SluiceTest, free_port, poll
from ssh_support import USER, SSHTestCase


class SSHExecTest(SSHTestCase, SluiceTest):
    def test_exec_output_stderr_and_exit_status_cross_unchanged(self):
        proc, port = self.start_sluice_ssh()
        result = self.ssh(port, f"{USER}@{HOST}", "uname -a")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"Linux", result.stdout)
        result = self.ssh(port, f"{USER}@{HOST}", "exit 3")
        self.assertEqual(result.returncode, 3, result.stderr)
        result = self.ssh(port, f"{USER}@{HOST}", "rm -rf /tmp/nothing")  # the stand-in refuses, on stdout, 127
        self.assertEqual(result.returncode, 127)
        self.assertIn(b"not run", result.stdout)
        execs = [e["text"] for e in self.sshd.shell_events() if e["kind"] == "exec"]
        self.assertIn("uname -a", execs)
        self.assertIn("exit 3", execs)
        flows = poll(lambda: (lambda ended: ended if len(ended) >= 3 else None)([f for f in proc.flows() if f["state"] != "open"]), 15)
        self.assertEqual([f["kind"] for f in flows], ["ssh"] * 3)
        self.assertTrue(all(f["state"] == "closed" for f in flows), flows)
        self.assertGreater(flows[0]["bytes_down"], 0)

    def test_several_channels_share_one_connection_and_one_flow(self):
        proc, port = self.start_sluice_ssh()
        control = ("-o", "ControlMaster=auto", "-o", f"ControlPath={self.tmp}/cm-%p", "-o", "ControlPersist=30")
        first = self.ssh(port, f"{USER}@{HOST}", "echo first", extra=control)
        self.assertEqual((first.returncode, first.stdout), (0, b"first\n"), first.stderr)
        second = self.ssh(port, f"{USER}@{HOST}", "echo second", extra=control)
        self.assertEqual((second.returncode, second.stdout), (0, b"second\n"), second.stderr)
        self.ssh(port, f"{USER}@{HOST}", extra=control + ("-O", "exit"))
        flows = poll(lambda: [f for f in proc.flows() if f["state"] != "open"] or None, 15)
        self.assertEqual(len(proc.flows()), 1, "both sessions went over the master's one connection")
        self.assertEqual(flows[0]["state"], "closed")

    def test_wrong_password_is_a_failed_login_not_a_dropped_connection(self):
        proc, port = self.start_sluice_ssh()
        result = self.ssh(port, f"{USER}@{HOST}", "true", password="not-the-password")
        self.assertEqual(result.returncode, 255)
        self.assertIn(b"Permission denied", result.stderr)
        flow = poll(lambda: next((f for f in proc.flows() if f["state"] == "error"), None), 15)
        self.assertIn(f"login as {USER} failed", flow["error"])

    def test_unknown_target_key_is_refused_before_any_password_is_sent(self):
        proc, port = self.start_sluice_ssh(trust_target=False)
        result = self.ssh(port, f"{USER}@{HOST}", "true")
        self.assertEqual(result.returncode, 255)
        flow = poll(lambda: next((f for f in proc.flows() if f["state"] == "error"), None), 15)
        self.assertIn("host key", flow["error"])
        self.assertIn("known_hosts", flow["error"])
        self.assertIn("SHA256:", flow["error"])
        self.assertNotIn("password", self.sshd_log_since_start().lower().replace("passwordauthentication", ""))

    def test_tofu_records_the_key_then_a_changed_key_is_refused(self):
        proc, port = self.start_sluice_ssh("--ssh-host-key-policy", "tofu", trust_target=False)
        result = self.ssh(port, f"{USER}@{HOST}", "true")
        self.assertEqual(result.returncode, 0, result.stderr)
        known_hosts = os.path.join(self.data_dir, "known_hosts")
        with open(known_hosts) as f:
            self.assertEqual(f.read(), self.sshd.known_hosts_line())
        self.assertEqual(os.stat(known_hosts).st_mode & 0o777, 0o600)
        proc.stop()
        # Another key for the same host: as if the server were replaced, or someone sat in the middle.
        other = os.path.join(self.tmp, "other_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True, timeout=30)
        with open(other + ".pub") as f:
            kind, blob = f.read().split()[:2]
        with open(known_hosts, "w") as f:
            f.write(f"[{HOST}]:{self.sshd.port} {kind} {blob}\n")
        proc, port = self.start_sluice_ssh("--ssh-host-key-policy", "tofu", trust_target=False)
        result = self.ssh(port, f"{USER}@{HOST}", "true")
        self.assertEqual(result.returncode, 255)
        flow = poll(lambda: next((f for f in proc.flows() if f["state"] == "error"), None), 15)
        self.assertIn("host key changed", flow["error"])

    def test_ten_mebibytes_up_with_scp_and_down_with_sftp_arrive_identical(self):
        proc, port = self.start_sluice_ssh()
        data = os.urandom(10 << 20)
        source = os.path.join(self.tmp, "up.bin")
        with open(source, "wb") as f:
            f.write(data)
        result = self.ssh(port, source, f"{USER}@{HOST}:sluice-up.bin", tool="scp", timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        back = os.path.join(self.tmp, "down.bin")
        # Commands on stdin rather than -b, which would turn on BatchMode and with it off password logins.
        commands = f"get sluice-up.bin {back}\nrm sluice-up.bin\n".encode()
        result = self.ssh(port, f"{USER}@{HOST}", tool="sftp", input=commands, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(back, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())
        flows = poll(lambda: (lambda closed: closed if len(closed) >= 2 else None)([f for f in proc.flows() if f["state"] == "closed"]), 15)
        self.assertGreater(flows[0]["bytes_up"], 10 << 20)
        self.assertGreater(flows[1]["bytes_down"], 10 << 20)

    def test_port_forwarding_is_refused(self):
        proc, port = self.start_sluice_ssh()
        # -W asks for a direct-tcpip channel, as -L and -J do.
        result = self.ssh(port, f"{USER}@{HOST}", extra=("-W", f"{HOST}:{self.sshd.port}"))
        self.assertEqual(result.returncode, 255)
        self.assertRegex(result.stderr, b"(open|forwarding) failed")

    def test_an_allowed_port_forward_is_a_tcp_flow_of_its_own(self):
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write("ssh:\n  allow_port_forwarding: true\n")
        proc, port = self.start_sluice_ssh("--config", config)
        # Forward to the sshd itself: what comes back is its banner.
        result = self.ssh(port, f"{USER}@{HOST}", extra=("-W", f"{HOST}:{self.sshd.port}"), input=b"", timeout=30)
        self.assertIn(b"SSH-2.0-OpenSSH", result.stdout)
        flows = poll(lambda: (lambda f: f if len(f) >= 2 else None)([f for f in proc.flows() if f["state"] != "open"]), 15)
        forwarded = [f for f in flows if f["kind"] == "tcp"]
        self.assertEqual(len(forwarded), 1, flows)
        self.assertEqual(forwarded[0]["server"], f"{HOST}:{self.sshd.port}")
        self.assertGreater(forwarded[0]["bytes_down"], 0)

    def test_garbage_instead_of_ssh_is_an_error_flow_and_the_next_login_works(self):
        proc, port = self.start_sluice_ssh()
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 300 + b"\r\n")
            sock.settimeout(10)
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        flow = poll(lambda: next((f for f in proc.flows() if f["state"] == "error"), None), 15)
        self.assertIn("SSH from the client", flow["error"])
        result = self.ssh(port, f"{USER}@{HOST}", "true")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_sluice_logs_in_with_its_own_key_for_a_client_that_proved_a_listed_key(self):
        target_key = os.path.join(self.tmp, "target_ed25519")
        client_key = os.path.join(self.tmp, "client_ecdsa")
        stranger_key = os.path.join(self.tmp, "stranger_ed25519")
        for path, kind in ((target_key, "ed25519"), (client_key, "ecdsa"), (stranger_key, "ed25519")):
            subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", path], check=True, timeout=30)
        with open(target_key + ".pub") as f, open(self.sshd.authorized_keys, "a") as keys:
            keys.write(f.read())
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write(f"ssh:\n  target_login:\n    key_file: {target_key}\n  users:\n    alice: {client_key}.pub\n")
        proc, port = self.start_sluice_ssh("--config", config)
        key_options = ("-i", client_key, "-o", "PubkeyAuthentication=yes", "-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes")
        # Without target_login.user Sluice logs in as the client's name, alice, whom the target does not know: a
        # failed login for the client, and a flow error that says whose credentials the target refused.
        result = self.ssh(port, f"alice@{HOST}", "echo key-login", extra=key_options)
        self.assertEqual(result.returncode, 255)
        flow = poll(lambda: next((f for f in proc.flows() if f["state"] == "error"), None), 15)
        self.assertIn("refused Sluice's credentials", flow["error"])
        proc.stop()
        with open(config, "w") as f:
            f.write(
                f"ssh:\n  target_login:\n    user: {USER}\n    key_file: {target_key}\n  users:\n    alice: {client_key}.pub\n"
            )
        proc, port = self.start_sluice_ssh("--config", config, trust_target=False)
        result = self.ssh(port, f"alice@{HOST}", "echo key-login", extra=key_options)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"key-login\n")
        stranger = ("-i", stranger_key) + key_options[2:]
        result = self.ssh(port, f"alice@{HOST}", "true", extra=stranger)
        self.assertEqual(result.returncode, 255)
        flow = poll(lambda: next((f for f in proc.flows() if f["state"] == "error" and "no such key" in (f["error"] or "")), None), 15)
        self.assertIn("login as alice failed", flow["error"])

    def test_an_unusable_key_file_is_one_clear_error_at_start(self):
        bad = os.path.join(self.tmp, "bad_key")
        with open(bad, "w") as f:
            f.write("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write(f"ssh:\n  target_login:\n    key_file: {bad}\n  users:\n    alice: {bad}\n")
        result = subprocess.run(
            [SLUICE_BIN, "--headless", "--data-dir", self.data_dir, "--config", config, "--listen", f"ssh://{HOST}:{free_port()}=>{HOST}:22"],
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
        )
        self.assertNotEqual(result.returncode, 0)
        lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("key_file", lines[0])
        self.assertIn("not an OpenSSH private key", lines[0])

    # Helpers

    def setUp(self):
        super().setUp()
        self._sshd_log_offset = len(self.sshd.log())

    def sshd_log_since_start(self):
        return self.sshd.log()[self._sshd_log_offset:]

    def start_sluice_ssh(self, *extra, trust_target=True):
        return self.start_ssh_sluice(*extra, trust_target=trust_target)


if __name__ == "__main__":
    unittest.main()
