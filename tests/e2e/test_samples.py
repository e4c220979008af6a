"""The samples a deployment starts from: the systemd unit is valid for systemd, and the command it runs, with the
sample config, starts a recorder that reloads on SIGHUP (ExecReload), stops cleanly on SIGTERM and keeps its data
directory private."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from support import HOST, SLUICE_BIN, free_port, wait_for_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "samples", "sluice.service")
CONFIG = os.path.join(ROOT, "samples", "sluice.yaml")


class SampleUnitTest(unittest.TestCase):
    def setUp(self):
        wait_for_binary()
        self.tmp = tempfile.mkdtemp(prefix="sluice-samples-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        with open(UNIT) as f:
            self.unit = f.read()

    def directive(self, name):
        match = re.search(rf"^{name}=(.*)$", self.unit, re.M)
        self.assertIsNotNone(match, f"{name}= missing from the unit")
        return match.group(1)

    @unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
    def test_systemd_finds_nothing_wrong_with_the_unit(self):
        # The unit names the installed path; here the binary is the one under test.
        unit = self.unit.replace("/usr/local/bin/sluice", SLUICE_BIN)
        path = os.path.join(self.tmp, "sluice.service")
        with open(path, "w") as f:
            f.write(unit)
        result = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("sluice.service:", result.stdout + result.stderr)

    def test_the_units_command_records_reloads_and_stops_cleanly(self):
        for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure", "UMask=0077",
                        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE", "User=sluice"):
            self.assertIn(setting + "\n", self.unit)
        args = self.directive("ExecStart").split()
        self.assertEqual(args[:2], ["/usr/local/bin/sluice", "record"])
        data_dir = os.path.join(self.tmp, "var-lib-sluice")
        port = free_port()
        with open(CONFIG) as f:
            config = f.read().replace("  - http://127.0.0.1:8080", f"  - http://{HOST}:{port}")
        config_path = os.path.join(self.tmp, "sluice.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        args = [SLUICE_BIN] + args[1:]
        args[args.index("--data-dir") + 1] = data_dir
        args[args.index("--config") + 1] = config_path
        log = open(os.path.join(self.tmp, "sluice.log"), "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   preexec_fn=lambda: os.umask(0o077))
        self.addCleanup(lambda: process.poll() is None and process.kill())
        deadline = time.monotonic() + 30
        while True:
            self.assertIsNone(process.poll(), "the recorder exited at start")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "the recorder never listened")
                time.sleep(0.05)
        # ExecReload sends SIGHUP: the policy is reloaded and the recorder goes on.
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertIsNone(process.poll(), "SIGHUP stopped the recorder")
        socket.create_connection((HOST, port), timeout=2).close()
        process.send_signal(signal.SIGTERM)
        stop = int(self.directive("TimeoutStopSec").rstrip("s"))
        self.assertEqual(process.wait(timeout=stop), 0)
        self.assertEqual(stat.S_IMODE(os.stat(data_dir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(data_dir, "sluice.sqlite")).st_mode), 0o600)
        with open(os.path.join(self.tmp, "sluice.log"), "rb") as f:
            self.assertIn(b"policy", f.read().lower())


if __name__ == "__main__":
    unittest.main()
