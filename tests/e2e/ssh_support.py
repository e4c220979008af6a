"""The SSH tests' peers: a real OpenSSH sshd on a loopback port with its own config and keys, a dedicated test user
whose login shell is a recording stand-in (fixtures/sluice_test_shell.py), and the real ssh client.

Everything runs as root (the suite does: sshd needs it to switch to the test user). The user is created once per
machine and left (useradd is slow and harmless to keep); the sshd is started per test class and stopped by PID.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from support import HOST, SLUICE_BIN, SluiceProcess, free_port

SSHD = "/usr/sbin/sshd"
USER = "sluicetest"
PASSWORD = "sluice-test-password"
SHELL = "/usr/local/libexec/sluice-test-shell"
FIXTURE_SHELL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sluice_test_shell.py")
START_TIMEOUT = 15.0


def unavailable():
    """Why the SSH tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the SSH tests run sshd and create a test user: they need root"
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        return "openssh-server and openssh-client are not installed (scripts/setup --test installs them)"
    return None


def ensure_user():
    """Creates the test user (once) and installs the stand-in shell (every time, so edits to it apply)."""
    os.makedirs(os.path.dirname(SHELL), exist_ok=True)
    shutil.copyfile(FIXTURE_SHELL, SHELL + ".new")
    os.chmod(SHELL + ".new", 0o755)
    os.replace(SHELL + ".new", SHELL)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", SHELL, USER], check=True, timeout=30)
    subprocess.run(["usermod", "--shell", SHELL, USER], check=True, timeout=30)
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True, timeout=30)
    return pwd.getpwnam(USER).pw_dir


class SSHServer:
    """A real sshd on 127.0.0.1:port, logging to `dir/sshd.log`, its stand-in shell logging to `dir/shell.log`.

    With `netns`, it runs in that network namespace (`ip netns exec`) on `host`:`port` (a free loopback port when
    not given), and readiness is read from its log: nothing outside the namespace can connect to it."""

    def __init__(self, directory, host=HOST, port=None, netns=None):
        self.dir = directory
        self.host = host
        self.netns = netns
        os.makedirs(directory, exist_ok=True)
        # The test user's shell writes its log here: every directory above must let it through.
        os.chmod(directory, 0o755)
        parent = os.path.dirname(os.path.abspath(directory))
        while parent not in ("/", "/tmp"):
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
            parent = os.path.dirname(parent)
        self.port = port or free_port()
        self.shell_log = os.path.join(directory, "shell.log")
        open(self.shell_log, "w").close()
        os.chmod(self.shell_log, 0o666)
        self.host_key = os.path.join(directory, "ssh_host_ed25519_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key], check=True, timeout=30)
        # Keys that may log in as the test user (Sluice's own, for ssh.target_login tests).
        self.authorized_keys = os.path.join(directory, "authorized_keys")
        open(self.authorized_keys, "w").close()
        os.chmod(self.authorized_keys, 0o644)
        self.config = os.path.join(directory, "sshd_config")
        with open(self.config, "w") as f:
            f.write(
                f"Port {self.port}\n"
                f"ListenAddress {host}\n"
                f"HostKey {self.host_key}\n"
                f"PidFile {directory}/sshd.pid\n"
                "PasswordAuthentication yes\n"
                "KbdInteractiveAuthentication no\n"
                "PubkeyAuthentication yes\n"
                f"AuthorizedKeysFile {directory}/authorized_keys\n"
                "UsePAM no\n"
                f"AllowUsers {USER}\n"
                "PermitRootLogin no\n"
                "StrictModes no\n"
                "MaxStartups 200\n"
                "MaxSessions 50\n"
                "Subsystem sftp internal-sftp\n"
                f"SetEnv SLUICE_SHELL_LOG={self.shell_log}\n"
                "LogLevel VERBOSE\n"
            )
        os.makedirs("/run/sshd", exist_ok=True)
        self.log_path = os.path.join(directory, "sshd.log")
        prefix = ["ip", "netns", "exec", netns] if netns else []
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(prefix + [SSHD, "-D", "-e", "-f", self.config], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.popen.returncode}: {self.log()}")
            if netns:
                if f"Server listening on {host} port {self.port}" in self.log():
                    break
            else:
                try:
                    with socket.create_connection((HOST, self.port), timeout=1.0) as probe:
                        probe.settimeout(2.0)
                        if probe.recv(64).startswith(b"SSH-2.0-"):
                            break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd not answering on {self.port} after {START_TIMEOUT}s: {self.log()}")
            time.sleep(0.05)

    def public_key(self):
        with open(self.host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        return f"{kind} {blob}"

    def known_hosts_line(self):
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{name} {self.public_key()}\n"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def shell_events(self):
        """What the stand-in shell received: [{"kind": "line"|"exec"|..., "text": ...}, ...]."""
        with open(self.shell_log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def askpass(directory, password=PASSWORD):
    """An SSH_ASKPASS program that answers `password`, and the environment that makes ssh use it."""
    path = os.path.join(directory, "askpass.sh")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\necho '{password}'\n")
    os.chmod(path, stat.S_IRWXU)
    env = dict(os.environ, SSH_ASKPASS=path, SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    return env


def ssh_options(port, known_hosts="/dev/null"):
    """Client options for going through Sluice (or direct): password only, Sluice's key accepted via known_hosts."""
    return [
        "-p", str(port),
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=no" if known_hosts == "/dev/null" else "StrictHostKeyChecking=yes",
        "-o", "PreferredAuthentications=password",
        "-o", "PubkeyAuthentication=no",
        "-o", "NumberOfPasswordPrompts=1",
        "-o", "ConnectTimeout=10",
        "-o", "LogLevel=" + os.environ.get("SSH_LOG_LEVEL", "ERROR"),
        "-F", "/dev/null",
    ]


class SSHTestCase:
    """Mixin for SluiceTest: an sshd for the class, Sluice in front of it, and ssh/scp/sftp run through Sluice."""

    sshd = None

    @classmethod
    def setUpClass(cls):
        reason = unavailable()
        if reason:
            raise unittest.SkipTest(reason)
        ensure_user()
        cls.class_tmp = tempfile.mkdtemp(prefix="sluice-sshd-")
        cls.sshd = SSHServer(os.path.join(cls.class_tmp, "sshd"))

    @classmethod
    def tearDownClass(cls):
        if cls.sshd:
            cls.sshd.stop()
        shutil.rmtree(cls.class_tmp, True)

    def start_ssh_sluice(self, *extra, trust_target=True, data_dir=None):
        """`sluice --headless` with one ssh:// listener in front of the class's sshd; returns (process, port).
        With `trust_target`, the sshd's key is put in the data directory's known_hosts first."""
        data_dir = data_dir or self.data_dir
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        if trust_target:
            with open(os.path.join(data_dir, "known_hosts"), "a") as f:
                f.write(self.sshd.known_hosts_line())
        port = free_port()
        self._ssh_runs = getattr(self, "_ssh_runs", 0) + 1
        stderr_path = os.path.join(self.tmp, f"sluice-ssh-{self._ssh_runs}.stderr")
        args = [SLUICE_BIN, "--headless", "--data-dir", data_dir, "--listen", f"ssh://{HOST}:{port}=>{HOST}:{self.sshd.port}"]
        args += list(extra)
        with open(stderr_path, "wb") as stderr:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        proc = SluiceProcess(popen, data_dir, stderr_path, [])
        self.addCleanup(proc.kill)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if popen.poll() is not None:
                self.fail(f"sluice exited with {popen.returncode}; stderr:\n{proc.stderr()}")
            try:
                with socket.create_connection((HOST, port), timeout=1.0) as probe:
                    proc.probe_ports.add(probe.getsockname()[1])
                    probe.settimeout(5.0)
                    if probe.recv(8).startswith(b"SSH-2.0-"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.fail(f"sluice not serving SSH on {port}; stderr:\n{proc.stderr()}")
            time.sleep(0.05)
        return proc, port

    def ssh(self, port, *command, password=PASSWORD, timeout=60, tool="ssh", extra=(), input=None):
        """Runs ssh (or scp/sftp, with `tool`) against Sluice's port; returns the CompletedProcess (bytes)."""
        env = askpass(self.tmp, password)
        options = ssh_options(port)
        if tool != "ssh":
            options[0] = "-P"  # scp and sftp spell the port option differently
        # ssh takes the first value given for an option: the test's own come first.
        args = [tool] + list(extra) + options + list(command)
        if input is None:
            return subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return subprocess.run(args, env=env, input=input, capture_output=True, timeout=timeout)
