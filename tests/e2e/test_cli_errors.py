"""Operator mistakes end in one `sluice: ...` line on stderr and exit code 1, never a crash or a hang."""

import os
import socket
import unittest

from support import HOST, SluiceTest, free_port, run_cli, spec


class CLIErrorTest(SluiceTest):
    def assert_one_line_failure(self, result, *fragments):
        stderr = result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 1, f"exit code; stderr:\n{stderr}")
        self.assertNotIn("Fatal error", stderr)
        self.assertNotIn("Stack dump", stderr)
        self.assertNotIn("backtrace", stderr.lower())
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected exactly one line on stderr, got:\n{stderr}")
        self.assertTrue(lines[0].startswith("sluice: "), lines[0])
        self.assertTrue(stderr.endswith("\n"), repr(stderr))
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        return lines[0]

    def run_headless(self, *args):
        return run_cli("--headless", *args)

    def test_malformed_listen_spec(self):
        for bad in (
            f"tcp://{HOST}:notaport=>{HOST}:80",
            f"tcp://{HOST}:9000",                  # no target
            f"gopher://{HOST}:9000=>{HOST}:80",    # unknown scheme
            f"tcp://{HOST}:70000=>{HOST}:80",      # port out of range
        ):
            with self.subTest(spec=bad):
                result = self.run_headless("--data-dir", self.data_dir, "-q", "--listen", bad)
                self.assert_one_line_failure(result, "listen spec", bad)
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "sluice.sqlite")),
                         "a bad spec must be refused before anything is written")

    def test_occupied_port(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.bind((HOST, 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            result = self.run_headless("--data-dir", self.data_dir, "-q", "--listen", spec(port, free_port()))
        line = self.assert_one_line_failure(result, str(port))
        self.assertIn("in use", line)
        self.assertFalse(os.path.exists(self.data_dir), "a start that fails creates no data directory, CA or store")

    def test_unwritable_data_dir(self):
        # A path under a regular file can't be created even by root.
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("not a directory\n")
        data_dir = os.path.join(blocker, "data")
        result = self.run_headless("--data-dir", data_dir, "-q", "--listen", spec(free_port(), free_port()))
        self.assert_one_line_failure(result, data_dir)
        # The data dir given is itself a regular file.
        result = self.run_headless("--data-dir", blocker, "-q", "--listen", spec(free_port(), free_port()))
        self.assert_one_line_failure(result, blocker)

    def test_config_with_unknown_key_names_key_and_line(self):
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write("listen:\n")
            f.write(f"  - \"{spec(free_port(), free_port())}\"\n")
            f.write("foo: 1\n")
            f.write("record: true\n")
        result = self.run_headless("--config", config, "--data-dir", self.data_dir, "-q")
        self.assert_one_line_failure(result, "sluice.yaml:3: unknown key 'foo'")
        # The same file found implicitly as <data-dir>/sluice.yaml.
        os.makedirs(self.data_dir)
        os.rename(config, os.path.join(self.data_dir, "sluice.yaml"))
        result = self.run_headless("--data-dir", self.data_dir, "-q")
        self.assert_one_line_failure(result, "sluice.yaml:3: unknown key 'foo'")

    def test_timeouts_beyond_what_a_timer_can_hold_are_refused_at_start(self):
        # 1e16 seconds overflowed the 64-bit nanosecond timers on the first connection or hold (a trap).
        listen = spec(free_port(), free_port())
        flags = {"--connect-timeout": "connect_timeout", "--hold-timeout": "hold_timeout",
                 "--request-head-timeout": "timeouts.request_head", "--keep-alive-timeout": "timeouts.keep_alive",
                 "--server-timeout": "timeouts.server", "--tunnel-idle-timeout": "timeouts.tunnel_idle"}
        for flag, key in flags.items():
            for value in ("1e16", "inf", "2592001") + (() if flag == "--tunnel-idle-timeout" else ("0",)):
                with self.subTest(flag=flag, value=value):
                    result = self.run_headless("--data-dir", self.data_dir, "-q", "--listen", listen, flag, value)
                    self.assert_one_line_failure(result, key)
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write(f"listen: \"{listen}\"\nhold_timeout: 1e16\n")
        result = self.run_headless("--config", config, "--data-dir", self.data_dir, "-q")
        self.assert_one_line_failure(result, "sluice.yaml:2: hold_timeout", "30 days")
        result = run_cli("replay", "--data-dir", self.data_dir, "--timeout", "1e16", "1")
        self.assert_one_line_failure(result, "--timeout", "30 days")
        result = run_cli("replay", "--data-dir", self.data_dir, "--delay", "9223372036854775807", "1")
        self.assert_one_line_failure(result, "--delay")


class HelpTest(SluiceTest):
    def test_help_shows_the_default_run_mode_and_each_mode_its_own_options(self):
        top = run_cli("--help").stdout.decode()
        self.assertIn("run (default)", top)
        self.assertIn("127.0.0.1:8080", top)
        run = run_cli("help", "run").stdout.decode()
        for option in ("--listen", "--headless", "--theme", "--request-head-timeout", "--max-connections", "--store-on-full"):
            self.assertIn(option, run)
        record = run_cli("help", "record").stdout.decode()
        self.assertNotIn("--theme", record, "a headless recorder has no theme")
        for scheme in ("http://", "reverse+http://", "tcp://"):
            self.assertIn(scheme, record)

    def test_help_lists_the_command_and_policy_subcommands_with_their_options(self):
        top = run_cli("--help").stdout.decode()
        for name in ("commands", "alerts", "policy"):
            self.assertIn(f"  {name} ", top)
        for mode in ("run", "record"):
            self.assertIn("--policy", run_cli("help", mode).stdout.decode(), mode)
        commands = run_cli("help", "commands").stdout.decode()
        for option in ("--json", "--flow", "--risk", "--limit", "--data-dir"):
            self.assertIn(option, commands)
        alerts = run_cli("help", "alerts").stdout.decode()
        for option in ("--json", "--limit"):
            self.assertIn(option, alerts)
        self.assertIn("check", run_cli("help", "policy").stdout.decode())
        self.assertIn("show", run_cli("help", "policy").stdout.decode())
        check = " ".join(run_cli("help", "policy", "check").stdout.decode().split())  # help text is wrapped
        for fragment in ("--sql", "--policy", "--json", "--config", "standard input", "wins over"):
            self.assertIn(fragment, check)

    def test_transparent_rules_print_without_privileges_and_refuse_what_cannot_work(self):
        """Printing the rules touches nothing (no root needed); what could never work is one line and exit 2."""
        printed = run_cli("transparent", "rules", "--redirect", "--port", "8023", "--dports", "80,443", "--data-dir", self.data_dir)
        self.assertEqual(printed.returncode, 0, printed.stderr)
        self.assertIn("add rule inet sluice redirect_prerouting tcp dport { 80, 443 } redirect to :8023", printed.stdout.decode())
        self.assertFalse(os.path.exists(self.data_dir), "printing the rules creates nothing")
        # The mode and the port come from the config's listeners when not given.
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write("listen: [tproxy://0.0.0.0:9022]\ntargets:\n  - {destination: 10.0.0.0/8, port: [22, 2222]}\n")
        configured = run_cli("transparent", "rules", "--config", config)
        self.assertEqual(configured.returncode, 0, configured.stderr)
        self.assertIn("tcp dport { 22, 2222 } tproxy to :9022", configured.stdout.decode())
        for args, fragment in (
            ([], "give --tproxy or --redirect"),
            (["--tproxy"], "give --port"),
            (["--tproxy", "--port", "8022", "--dports", "22", "--local"], "--redirect --local"),
            (["--redirect", "--port", "8023", "--dports", "0"], "--dports: '0' is not a port"),
            (["--redirect", "--port", "8023", "--dports", "80", "--interface", "eth0; flush ruleset"], "is not an interface name"),
            (["--tproxy", "--port", "8022", "--dports", "22", "--mark", "0x3"], "shares bits with the routing mark"),
        ):
            with self.subTest(args=args):
                result = run_cli("transparent", "rules", "--data-dir", self.data_dir, *args)
                stderr = result.stderr.decode(errors="replace")
                self.assertEqual(result.returncode, 2, stderr)
                self.assertEqual(len(stderr.splitlines()), 1, stderr)
                self.assertIn(fragment, stderr)
        self.assertIn("rules", run_cli("help", "transparent").stdout.decode())


if __name__ == "__main__":
    unittest.main()
