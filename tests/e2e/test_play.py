"""`sluice play`: a recorded terminal session played back, at full speed when stdout is not a terminal, with
pauses, pause/step/quit keys when it is (driven through a pty)."""

import os
import pty
import select
import shutil
import subprocess
import time
import unittest

from support import REPO, SLUICE_BIN, SluiceTest, run_cli

FIXTURE = os.path.join(REPO, "tests", "fixtures", "cast", "session.cast")
# The fixture's "o" events, concatenated: what a player shows.
FIXTURE_OUTPUT = (
    "\x1b[32muser@host\x1b[0m:~$ echo héllo\r\nhéllo\r\n\x1b[32muser@host\x1b[0m:~$ exit\r\n"
).encode()


class PlayTest(SluiceTest):
    def assert_one_line_failure(self, result, *fragments):
        stderr = result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 1, stderr)
        lines = stderr.splitlines()
        self.assertEqual(len(lines), 1, stderr)
        self.assertTrue(lines[0].startswith("sluice: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_file_plays_at_full_speed_when_stdout_is_not_a_terminal(self):
        started = time.monotonic()
        result = run_cli("play", FIXTURE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, FIXTURE_OUTPUT)
        self.assertEqual(result.stderr, b"")
        self.assertLess(time.monotonic() - started, 5, "no pauses without a terminal")

    def test_a_flow_id_plays_its_recording_from_the_data_directory(self):
        os.makedirs(os.path.join(self.data_dir, "recordings"))
        shutil.copy(FIXTURE, os.path.join(self.data_dir, "recordings", "7.cast"))
        result = run_cli("play", "--data-dir", self.data_dir, "7")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, FIXTURE_OUTPUT)

    def test_missing_and_bad_recordings_fail_in_one_line(self):
        self.assert_one_line_failure(run_cli("play", "--data-dir", self.data_dir, "8"), "no recording for flow 8")
        self.assert_one_line_failure(run_cli("play", os.path.join(self.tmp, "nope.cast")), "nope.cast", "no such file")
        bad = self.write("bad.cast", '{"version":2,"width":80,"height":24}\n[0.1,"o","a"]\nnot json\n[0.2,"o","b"]\n')
        self.assert_one_line_failure(run_cli("play", bad), "bad.cast: line 3:")
        self.assert_one_line_failure(run_cli("play", self.write("empty.cast", "")), "no asciicast header")
        self.assert_one_line_failure(run_cli("play", "--speed", "0", FIXTURE), "--speed")

    def test_a_torn_last_line_plays_the_rest_with_a_note(self):
        torn = self.write("torn.cast", '{"version":2,"width":80,"height":24}\n[0.1,"o","whole"]\n[0.2,"o","cut sh')
        result = run_cli("play", torn)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"whole")
        self.assertIn(b"torn line", result.stderr)

    def test_help_names_the_keys_and_options(self):
        text = run_cli("help", "play").stdout.decode()
        for fragment in ("--speed", "--idle-limit", "space pauses", "q quits", "ID|FILE"):
            self.assertIn(fragment, text)
        self.assertIn("play", run_cli("--help").stdout.decode())

    def test_keys_pause_step_and_quit_in_a_terminal(self):
        cast = self.write(
            "slow.cast",
            '{"version":2,"width":80,"height":24}\n[0.0,"o","first "]\n[30.0,"o","second "]\n[60.0,"o","third "]\n',
        )
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(SLUICE_BIN, [SLUICE_BIN, "play", "--idle-limit", "30", cast])
        try:
            output = self.read_until(fd, b"first ", 10)
            os.write(fd, b" ")  # pause
            time.sleep(0.3)
            os.write(fd, b".")  # step: the next output at once, still paused
            output += self.read_until(fd, b"second ", 10)
            self.assertNotIn(b"third", output)
            os.write(fd, b"q")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.assertEqual(os.waitstatus_to_exitcode(status), 0)
                    break
                time.sleep(0.05)
            else:
                self.fail("sluice play did not quit on q")
            pid = None
        finally:
            if pid:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            os.close(fd)

    @staticmethod
    def read_until(fd, wanted, timeout):
        data = b""
        deadline = time.monotonic() + timeout
        while wanted not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{wanted!r} not shown; got {data!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                data += os.read(fd, 4096)
        return data


@unittest.skipIf(shutil.which("asciinema") is None, "asciinema (PyPI) is not installed; scripts/setup --test installs it")
class AsciinemaFixtureTest(unittest.TestCase):
    def test_asciinema_plays_the_fixture_as_sluice_does(self):
        result = subprocess.run(
            ["asciinema", "play", "-s", "100", "-i", "0.1", FIXTURE], stdin=subprocess.DEVNULL, capture_output=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, FIXTURE_OUTPUT)


if __name__ == "__main__":
    unittest.main()
