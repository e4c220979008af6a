"""Helpers for the terminal UI's end-to-end tests.

The UI runs for real inside a private tmux server (one per test, `tmux -L <unique name>`), the tests type into
it with `send-keys` and read what a person would see with `capture-pane`. Targets are small servers on
127.0.0.1 in threads. Every wait polls with a deadline; nothing sleeps a fixed long time, and everything a test
starts (tmux server, sluice, sockets, threads, temp dirs) is torn down in its cleanup.

Readiness: the UI's status line reads "listening: tcp://…" once the engine has bound its listeners (the engine
starts before the UI draws), so no probe connection is needed and the store holds only the tests' flows.
"""

import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from support import HOST, SLUICE_BIN, flows_json, free_port, wait_for_binary  # noqa: F401 (flows_json re-exported)

#: Upper bound for one socket operation.
IO_TIMEOUT = 10.0
#: Upper bound for the UI to show something after a key or an event.
SCREEN_TIMEOUT = 10.0
#: Upper bound for the UI to come up (binary start, store open, listeners bound, first frame).
START_TIMEOUT = 20.0

_counter = itertools.count(1)


def poll(predicate, timeout, interval=0.05):
    """Calls `predicate` until it returns something truthy (returned) or the deadline passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def stored_messages(data_dir, flow_id):
    """(seq, direction, payload, edited_from_seq, disposition) rows of one flow, by seq."""
    path = os.path.join(data_dir, "sluice.sqlite")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute(
            "SELECT seq, direction, payload, edited_from_seq, disposition FROM messages WHERE flow_id = ? ORDER BY seq",
            (flow_id,),
        ).fetchall()
    finally:
        db.close()
    return [(seq, direction, bytes(payload) if payload is not None else None, edited, disposition)
            for seq, direction, payload, edited, disposition in rows]


# MARK: Target servers


class RecordingServer:
    """A TCP server on 127.0.0.1 that records every byte each connection sends it, optionally echoing it back.

    `connections` is a list of `Conn` in accept order; each has `.data` (bytes so far) and `.closed`."""

    class Conn:
        def __init__(self, sock):
            self.sock = sock
            self.data = b""
            self.closed = False

    def __init__(self, echo=False):
        self.echo = echo
        self.lock = threading.Lock()
        self.connections = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self.threads[0].start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(0.2)
            conn = RecordingServer.Conn(sock)
            with self.lock:
                self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn):
        try:
            while not self.stopping.is_set():
                try:
                    data = conn.sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                with self.lock:
                    conn.data += data
                if self.echo:
                    conn.sock.sendall(data)
        except OSError:
            pass
        finally:
            conn.closed = True
            try:
                conn.sock.close()
            except OSError:
                pass

    def received(self):
        """Everything received so far, over all connections, in accept order."""
        with self.lock:
            return b"".join(conn.data for conn in self.connections)

    def wait_received(self, expected, timeout=IO_TIMEOUT):
        """Waits until exactly `expected` has arrived; fails if more or different bytes arrive."""
        got = poll(lambda: self.received() if len(self.received()) >= len(expected) else None, timeout)
        # Let a few more bytes show up if they are coming, so "exactly" means exactly.
        time.sleep(0.2)
        got = self.received()
        if got != expected:
            raise AssertionError(f"target server received {got!r}, expected exactly {expected!r}")

    def assert_nothing_more(self, already, duration):
        """Asserts the server's bytes stay `already` for `duration` seconds."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            got = self.received()
            if got != already:
                raise AssertionError(f"target server received {got[len(already):]!r} but should have received nothing more")
            time.sleep(0.05)

    def close(self):
        self.stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        for thread in self.threads:
            thread.join(timeout=2)


# MARK: The UI in tmux


class TUI:
    """Sluice's terminal UI running in a private tmux server.

    The pane runs `sh -c 'echo BEFORE; sluice …; echo $? > rcfile; echo AFTER rc=…'` with remain-on-exit on, so
    after a quit the pane stays and shows what the shell printed once the UI gave the screen back."""

    BEFORE = "tui-test: before sluice"
    AFTER = "tui-test: sluice exited rc="

    def __init__(
        self, data_dir, listen_port, target_port, width=100, height=30, term="xterm-256color", extra_env=None, listen=None,
        args=None,
    ):
        """`args` replaces `--data-dir DIR --listen SPEC` (e.g. `["view", "--data-dir", DIR]`)."""
        wait_for_binary()
        number = next(_counter)
        self.socket_name = f"sluice-tui-{os.getpid()}-{number}"
        self.session = "tui"
        self.data_dir = data_dir
        # One per UI, so a test that runs two (record, then `sluice view`) reads each one's own exit status.
        self.rc_path = os.path.join(os.path.dirname(os.path.abspath(data_dir)), f"sluice-{number}.rc")
        self.listen_port = listen_port
        self.term = term
        listen = listen or f"tcp://{HOST}:{listen_port}=>{HOST}:{target_port}"
        self.listen = listen
        env = {"LC_ALL": "C.UTF-8", "TERM": term}
        env.update(extra_env or {})
        env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        args = args if args is not None else ["--data-dir", data_dir, "--listen", listen]
        sluice = f"env {env_words} {shlex.quote(SLUICE_BIN)} " + " ".join(shlex.quote(a) for a in args)
        script = (
            f"echo {shlex.quote(self.BEFORE)}; {sluice}; rc=$?; echo $rc > {shlex.quote(self.rc_path)}; "
            f"echo {shlex.quote(self.AFTER)}$rc"
        )
        self.command = f"sh -c {shlex.quote(script)}"
        # Everything the pane's programs write to the terminal is also copied to a file (pipe-pane), so a test can
        # check the escape sequences sluice leaves the terminal with.
        self.output_path = os.path.join(os.path.dirname(self.rc_path), f"pane-output-{number}.bin")
        self._tmux(
            "new-session", "-d", "-x", str(width), "-y", str(height), "-s", self.session, self.command,
            ";", "set-option", "-w", "-t", self.session, "remain-on-exit", "on",
            ";", "pipe-pane", "-t", self.session, f"cat > {shlex.quote(self.output_path)}",
            check=True,
        )
        self.last_screen = ""

    # tmux plumbing

    def _tmux(self, *args, check=False, timeout=10):
        return subprocess.run(
            ["tmux", "-L", self.socket_name, "-f", "/dev/null", *args],
            capture_output=True, text=True, timeout=timeout, check=check,
        )

    def pane_format(self, fmt):
        result = self._tmux("display-message", "-p", "-t", self.session, fmt)
        return result.stdout.strip() if result.returncode == 0 else None

    def screen(self):
        """The visible screen, one string, lines joined by newlines, trailing spaces trimmed."""
        result = self._tmux("capture-pane", "-p", "-t", self.session)
        if result.returncode == 0:
            self.last_screen = "\n".join(line.rstrip() for line in result.stdout.split("\n"))
        return self.last_screen

    def styled_screen(self):
        """The visible screen with its attributes as escape sequences (`capture-pane -e`)."""
        return self._tmux("capture-pane", "-p", "-e", "-t", self.session).stdout

    def output(self):
        """The bytes written to the pane so far (see pipe-pane above)."""
        try:
            with open(self.output_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def history(self):
        """The scrollback and the visible screen, oldest line first, trailing spaces trimmed."""
        out = self._tmux("capture-pane", "-p", "-S", "-", "-t", self.session).stdout
        return "\n".join(line.rstrip() for line in out.split("\n"))

    def lines(self):
        return self.screen().split("\n")

    def send(self, *keys):
        """Named keys (Enter, Escape, End, Up…) or single characters."""
        self._tmux("send-keys", "-t", self.session, *keys, check=True)

    def type(self, text):
        """Literal text, character by character as a person types it."""
        self._tmux("send-keys", "-t", self.session, "-l", text, check=True)

    # Waiting on what is on screen

    def wait_for(self, predicate, what, timeout=SCREEN_TIMEOUT):
        """Polls the screen until `predicate(screen)` is true; returns that screen, or fails showing the last one."""
        found = poll(lambda: (lambda s: s if predicate(s) else None)(self.screen()), timeout)
        if found is None:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; screen was:\n{self.dump()}")
        return found

    def wait_text(self, *texts, timeout=SCREEN_TIMEOUT):
        return self.wait_for(lambda s: all(t in s for t in texts), "screen to show " + " and ".join(map(repr, texts)), timeout)

    def wait_line(self, *texts, timeout=SCREEN_TIMEOUT):
        """Waits for one screen line that contains all `texts`; returns that line."""
        def check(screen):
            for line in screen.split("\n"):
                if all(t in line for t in texts):
                    return True
            return False
        screen = self.wait_for(check, "a line showing " + " and ".join(map(repr, texts)), timeout)
        return next(line for line in screen.split("\n") if all(t in line for t in texts))

    def wait_row(self, pattern, timeout=SCREEN_TIMEOUT):
        """Waits for one screen line that matches the regex `pattern` (searched); returns that line.

        Use it after switching tabs: a plain text can still be on the old screen (its status line) for a frame."""
        regex = re.compile(pattern)
        screen = self.wait_for(lambda s: any(regex.search(line) for line in s.split("\n")), f"a line matching {pattern!r}", timeout)
        return next(line for line in screen.split("\n") if regex.search(line))

    def wait_gone(self, text, timeout=SCREEN_TIMEOUT):
        return self.wait_for(lambda s: text not in s, f"{text!r} to leave the screen", timeout)

    def dump(self):
        lines = self.last_screen.split("\n")
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(f"  |{line}" for line in lines)

    def wait_ready(self):
        """The UI is up and its listener bound."""
        return self.wait_text("1 Flows", f"listening: {self.listen}", timeout=START_TIMEOUT)

    # The process

    def pane_dead(self):
        return self.pane_format("#{pane_dead}") == "1"

    def wait_exit(self, timeout=SCREEN_TIMEOUT):
        """Waits for the pane's process (the sh wrapper, so sluice too) to exit; returns sluice's exit status."""
        if poll(self.pane_dead, timeout) is None:
            raise AssertionError(f"sluice did not exit within {timeout}s; screen was:\n{self.dump()}")
        rc = poll(lambda: _read(self.rc_path).strip(), 2)
        if rc is None:
            raise AssertionError(f"no exit status written to {self.rc_path}; screen was:\n{self.dump()}")
        return int(rc)

    def _child_pids(self):
        """Processes whose parent is the pane's shell (sluice or its `env`)."""
        pane_pid = self.pane_format("#{pane_pid}")
        if not pane_pid:
            return []
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                ppid = stat[stat.rindex(")") + 2:].split()[1]
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pane_pid:
                children.append(int(entry))
        return children

    def close(self):
        """Kills this test's tmux server (SIGHUP to sluice, which quits cleanly); SIGKILLs sluice if it lingers."""
        pids = self._child_pids()
        self._tmux("kill-server")
        def gone():
            return all(not os.path.exists(f"/proc/{pid}") or _is_zombie(pid) for pid in pids)
        if poll(gone, 5) is None:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2:].split()[0] == "Z"
    except (OSError, ValueError):
        return True


class TUITestCase(unittest.TestCase):
    """Per test: a temp dir, and helpers that register their own cleanup."""

    def setUp(self):
        if shutil.which("tmux") is None:
            self.fail("tmux is not installed")
        self.tmp = tempfile.mkdtemp(prefix="sluice-tui-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.data_dir = os.path.join(self.tmp, "data")

    def target(self, echo=False):
        server = RecordingServer(echo=echo)
        self.addCleanup(server.close)
        return server

    def start_tui(self, target_port, listen_port=None, **kwargs):
        listen_port = listen_port or free_port()
        tui = TUI(self.data_dir, listen_port, target_port, **kwargs)
        self.addCleanup(tui.close)
        tui.wait_ready()
        return tui

    def start_view(self, *paths, **kwargs):
        """`sluice view --data-dir DATA [PATH]`: the store read-only, no listeners; returns once the list is up."""
        tui = TUI(self.data_dir, 0, 0, args=["view", "--data-dir", self.data_dir, *paths], **kwargs)
        self.addCleanup(tui.close)
        tui.wait_text("1 Flows", "(read-only)", timeout=START_TIMEOUT)
        return tui

    def client(self, port):
        sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        sock.settimeout(IO_TIMEOUT)
        self.addCleanup(sock.close)
        return sock
