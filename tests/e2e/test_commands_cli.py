"""`sluice commands` and `sluice alerts` on a real store (made by `sluice --headless`), with rows written the way the
store writer writes them, read while Sluice runs and after it stopped."""

import json
import os
import sqlite3
import unittest

from support import SluiceTest, free_port, run_cli

T0 = 1796080701.5  # 2026-11-30T23:18:21.500Z

# (flow, idx, at, kind, text, user, target, risk, action, rule, decision, decided_by, decided_at,
#  exit_status, exit_signal, result, error, finished_at)
COMMANDS = [
    (100, 0, T0 + 1, "shell", "ls -la", "alice", "10.0.0.7:22", "low", "allow", None, "allowed", "policy", T0 + 1,
     None, None, None, None, None),
    (100, 1, T0 + 2, "shell", "sudo -u root rm -rf /", "alice", "10.0.0.7:22", "critical", "block", "rm-root",
     "blocked", "policy", T0 + 2, None, None, None, None, None),
    (101, 0, T0 + 3, "exec", "reboot", "bob", "10.0.0.8:22", "high", "hold", "shutdown", "allowed", "operator",
     T0 + 9, 0, None, None, None, T0 + 10),
    (100, 2, T0 + 4, "shell", "sudo apt update", "alice", "10.0.0.7:22", "medium", "alert", "sudo", "allowed",
     "policy", T0 + 4, None, None, None, None, None),
    (102, 0, T0 + 5, "sql", "DROP TABLE t", "app", "db:5432", "high", "hold", "drop-table", "pending", None, None,
     None, None, None, None, None),
    (100, 3, T0 + 6, "shell", "echo \x1b[2J\nforged", "alice", "10.0.0.7:22", "low", "allow", None, "allowed",
     "policy", T0 + 6, None, "TERM", None, None, T0 + 7),
]

ALERTS = [
    (100, 1, T0 + 2, "critical", "rm-root", "blocked: rm -rf / (rule rm-root)"),
    (100, 2, T0 + 4, "medium", "sudo", "sudo apt update (rule sudo)"),
    (None, None, T0 + 8, "high", "store.on_full", "recording stopped for 3 s"),
]

COMMAND_COLUMNS = ("flow_id, idx, at, kind, text, user, target, risk, action, rule, decision, decided_by, decided_at, "
                   "exit_status, exit_signal, result, error, finished_at")


class CommandsCLITest(SluiceTest):
    def populate(self):
        """Rows into the store a running Sluice made: the schema is the real one, the values what the writer writes."""
        path = os.path.join(self.data_dir, "sluice.sqlite")
        db = sqlite3.connect(path, timeout=10)
        with db:
            for flow, target in ((100, "10.0.0.7:22"), (101, "10.0.0.8:22"), (102, "db:5432")):
                db.execute(
                    "INSERT INTO flows (id, kind, listener, client, server, started_at, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (flow, "postgres" if flow == 102 else "ssh", "ssh://127.0.0.1:2222=>10.0.0.7:22",
                     "127.0.0.1:50000", target, T0, "closed"))
            db.executemany(f"INSERT INTO commands ({COMMAND_COLUMNS}) VALUES ({', '.join('?' * 18)})", COMMANDS)
            db.executemany("INSERT INTO alerts (flow_id, command_idx, at, level, rule, message) VALUES (?, ?, ?, ?, ?, ?)",
                           ALERTS)
        db.close()

    def commands(self, *args):
        result = run_cli("commands", "--data-dir", self.data_dir, *args)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return result.stdout.decode()

    def commands_json(self, *args):
        return [json.loads(line) for line in self.commands("--json", *args).splitlines()]

    def alerts(self, *args):
        result = run_cli("alerts", "--data-dir", self.data_dir, *args)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return result.stdout.decode()

    def test_commands_and_alerts_with_and_without_a_running_sluice(self):
        proc = self.start_sluice([(free_port(), free_port())])
        self.assertEqual(self.commands(), "TIME (UTC)  FLOW  USER@TARGET  RISK  ACTION  RULE  TEXT\n", "no commands yet")
        self.populate()
        running = self.commands_json()
        self.assertEqual(len(running), 6, "read while Sluice runs")
        self.assertEqual(proc.stop()[0], 0)
        self.assertEqual(self.commands_json(), running, "and after it stopped")
        self.check_json(running)
        self.check_table()
        self.check_filters()
        self.check_alerts()

    def check_json(self, listed):
        self.assertEqual([(c["flow"], c["index"]) for c in listed], [(100, 0), (100, 1), (101, 0), (100, 2), (102, 0), (100, 3)])
        blocked = listed[1]
        for key, value in {"kind": "shell", "text": "sudo -u root rm -rf /", "user": "alice", "target": "10.0.0.7:22",
                           "risk": "critical", "action": "block", "rule": "rm-root", "decision": "blocked",
                           "decided_by": "policy", "time": "2026-11-30T23:18:23.500Z", "exit_status": None,
                           "exit_signal": None, "result": None, "error": None, "finished_at": None}.items():
            self.assertEqual(blocked[key], value, key)
        held = listed[2]
        self.assertEqual((held["kind"], held["action"], held["decision"], held["decided_by"]), ("exec", "hold", "allowed", "operator"))
        self.assertEqual((held["exit_status"], held["decided_at"], held["finished_at"]),
                         (0, "2026-11-30T23:18:30.500Z", "2026-11-30T23:18:31.500Z"))
        pending = listed[4]
        self.assertEqual((pending["kind"], pending["decision"], pending["decided_by"], pending["decided_at"]),
                         ("sql", "pending", None, None))
        self.assertEqual(listed[5]["text"], "echo \x1b[2J\nforged", "JSON carries the text exactly")
        self.assertEqual(listed[5]["exit_signal"], "TERM")
        self.assertEqual(listed[0]["rule"], None)
        self.assertTrue(all(isinstance(c["id"], int) for c in listed))

    def check_table(self):
        lines = self.commands().splitlines()
        self.assertEqual(len(lines), 7, lines)
        self.assertEqual(lines[0].split(), ["TIME", "(UTC)", "FLOW", "USER@TARGET", "RISK", "ACTION", "RULE", "TEXT"])
        self.assertEqual(lines[2].split(), ["2026-11-30", "23:18:23", "100", "alice@10.0.0.7:22", "critical",
                                            "block/blocked", "rm-root", "sudo", "-u", "root", "rm", "-rf", "/"])
        self.assertEqual(lines[3].split()[2:7], ["101", "bob@10.0.0.8:22", "high", "hold/allowed(operator)", "shutdown"])
        self.assertEqual(lines[5].split()[2:7], ["102", "app@db:5432", "high", "hold/pending", "drop-table"])
        self.assertEqual(lines[6].split()[-3:], ["-", "echo", "\\e[2J\\nforged"])
        self.assertNotIn("\x1b", "".join(lines), "control characters are written out")
        text_column = {line.index(text) for line, text in zip(lines, ["TEXT", "ls -la", "sudo -u root", "reboot"])}
        self.assertEqual(len(text_column), 1, "aligned")

    def check_filters(self):
        self.assertEqual([c["index"] for c in self.commands_json("--flow", "100")], [0, 1, 2, 3])
        self.assertEqual(self.commands_json("--flow", "999"), [])
        self.assertEqual([c["risk"] for c in self.commands_json("--risk", "high")], ["critical", "high", "high"])
        self.assertEqual([c["risk"] for c in self.commands_json("--risk", "MEDIUM")], ["critical", "high", "medium", "high"])
        self.assertEqual([c["text"] for c in self.commands_json("--risk", "critical")], ["sudo -u root rm -rf /"])
        self.assertEqual(len(self.commands_json("--risk", "low")), 6)
        self.assertEqual([c["index"] for c in self.commands_json("--flow", "100", "--risk", "medium")], [1, 2])
        self.assertEqual([(c["flow"], c["index"]) for c in self.commands_json("--limit", "2")], [(102, 0), (100, 3)],
                         "the newest, oldest first")
        self.assertEqual(len(self.commands("--limit", "3").splitlines()), 4)

    def check_alerts(self):
        listed = [json.loads(line) for line in self.alerts("--json").splitlines()]
        self.assertEqual(len(listed), 3)
        self.assertEqual({k: listed[0][k] for k in ("flow", "command", "level", "rule", "message", "time")},
                         {"flow": 100, "command": 1, "level": "critical", "rule": "rm-root",
                          "message": "blocked: rm -rf / (rule rm-root)", "time": "2026-11-30T23:18:23.500Z"})
        self.assertEqual((listed[2]["flow"], listed[2]["command"], listed[2]["rule"]), (None, None, "store.on_full"))
        lines = self.alerts().splitlines()
        self.assertEqual(lines[0].split(), ["TIME", "(UTC)", "FLOW", "CMD", "LEVEL", "RULE", "ACK", "MESSAGE"])
        self.assertEqual(lines[1].split()[2:7], ["100", "1", "critical", "rm-root", "-"])
        self.assertEqual(lines[3].split()[2:6], ["-", "-", "high", "store.on_full"])
        self.assertEqual([json.loads(l)["rule"] for l in self.alerts("--json", "--limit", "1").splitlines()], ["store.on_full"])

    def assert_one_line_failure(self, result, *fragments):
        self.assertEqual(result.returncode, 1, result.stderr.decode())
        lines = result.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("sluice: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_clear_errors(self):
        for command in ("commands", "alerts"):
            self.assert_one_line_failure(run_cli(command, "--data-dir", self.data_dir), "no store at", self.data_dir)
            self.assert_one_line_failure(run_cli(command, "--data-dir", self.data_dir, "--limit", "0"), "--limit")
        self.assert_one_line_failure(run_cli("commands", "--data-dir", self.data_dir, "--risk", "severe"),
                                     "unknown level 'severe'", "low, medium, high, critical")


if __name__ == "__main__":
    unittest.main()
