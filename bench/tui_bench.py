#!/usr/bin/env python3
"""TUI responsiveness with a large store: time to the first screen, and keypress-to-screen latency; and full-text
search over the whole store.

Builds a store with N flows (default 100,000; each with one message each way), opens it with
`sluice view` in tmux, and measures with capture-pane polling (adds ~2-4 ms per sample; reported
figures include it):
  first_screen_s   start of `sluice view` until the newest flow is on screen
  key_ms           a keypress (PgUp, PgDn, Home, End, a filter applied with Enter) until the screen changed
  index_build_s    `sluice search` building the full-text index of every flow (once, before the TUI opens)
  search_s         `sluice search WORD` answered (median of 5 words), against the target of 2 s at 1,000,000 flows
  rss_mib          the TUI's resident memory (VmRSS of the sluice process in tmux) after the first screen, after the
                   keys, after scrolling through a few thousand rows and after the filters; and its peak (VmHWM)

and prints PASS/FAIL for: first screen < 1 s, every key < 50 ms (max), peak RSS <= --rss-bound MiB (default 100:
flat, whatever the number of flows), search < 2 s (median).

Usage: python3 bench/tui_bench.py [--flows N] [--bin PATH] [--store DIR] [--skip-search]
  --store DIR    build the store in DIR once and reuse it on later runs (kept afterwards; delete it yourself)
  --skip-search  no full-text index and no `sluice search` timing (building the index of 10 M flows takes long)
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_store(binary, directory, flows):
    # Let sluice create the schema (migrations), then bulk-insert rows shaped as it writes them.
    proc = subprocess.Popen([binary, "record", "-q", "--data-dir", directory, "--listen", "tcp://127.0.0.1:1=>127.0.0.1:2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = os.path.join(directory, "sluice.sqlite")
    for _ in range(100):
        if os.path.exists(path):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.terminate()
    proc.wait(timeout=5)
    db = sqlite3.connect(path)
    # A bulk load: no journal while it runs (a failed build is simply made again), WAL again afterwards as Sluice
    # keeps it.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    start = 1_796_000_000.0
    with db:
        db.executemany(
            "INSERT INTO flows (id, kind, listener, client, server, started_at, ended_at, bytes_up, bytes_down, state) "
            "VALUES (?, 'tcp', 'tcp://127.0.0.1:9000=>10.0.0.5:7000', ?, '10.0.0.5:7000', ?, ?, 40, 120, 'closed')",
            ((i, f"127.0.0.1:{20000 + i % 40000}", start + i * 0.01, start + i * 0.01 + 0.2) for i in range(1, flows + 1)))
        db.executemany(
            "INSERT INTO messages (flow_id, seq, direction, at, size, payload) VALUES (?, ?, ?, ?, ?, ?)",
            ((i, seq, d, start + i * 0.01, len(p), p) for i in range(1, flows + 1)
             for seq, d, p in ((0, "up", b"GET /item/%d HTTP/1.1\r\n" % i), (1, "down", b"HTTP/1.1 200 OK\r\n"))))
    db.execute("PRAGMA journal_mode = WAL")
    db.close()


class Pane:
    def __init__(self, socket_name, command, width=120, height=40):
        self.socket = socket_name
        subprocess.run(["tmux", "-L", socket_name, "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "bench",
                        command], check=True)

    def screen(self):
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-e", "-t", "bench"],
                              capture_output=True, text=True).stdout

    def keys(self, *keys, literal=False):
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "bench"] + (["-l"] if literal else []) + list(keys),
                       check=True)

    def wait_change(self, before, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.screen()
            if now != before:
                return now
        raise TimeoutError("screen did not change")

    def pid(self):
        out = subprocess.run(["tmux", "-L", self.socket, "list-panes", "-t", "bench", "-F", "#{pane_pid}"],
                             capture_output=True, text=True).stdout.split()
        return int(out[0])

    def memory_mib(self, field="VmRSS"):
        # `env` execs sluice, so the pane's process is sluice itself.
        with open(f"/proc/{self.pid()}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} for the TUI")

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--bin", default=os.environ.get("SLUICE_BIN", os.path.join(ROOT, ".build-release/release/sluice")))
    parser.add_argument("--store", help="build the store here once, reuse it later, keep it")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--rss-bound", type=float, default=100.0)
    args = parser.parse_args()
    keep = args.store is not None
    directory = args.store or tempfile.mkdtemp(prefix="sluice-tui-bench-")
    pane = None
    try:
        marker = os.path.join(directory, "bench-flows")
        reuse = keep and os.path.exists(marker) and open(marker).read().strip() == str(args.flows)
        if not reuse:
            if keep:
                shutil.rmtree(directory, ignore_errors=True)
                os.makedirs(directory)
            t = time.monotonic()
            make_store(args.bin, directory, args.flows)
            print(f"store with {args.flows} flows built in {time.monotonic() - t:.1f}s", file=sys.stderr)
            if keep:
                with open(marker, "w") as out:
                    out.write(str(args.flows))
        index_build = None
        searches = []
        if not args.skip_search:
            # The full-text index first, so the view's own indexer has nothing left to do while keys are timed.
            t = time.monotonic()
            subprocess.run([args.bin, "search", "--data-dir", directory, "item"], check=True, stdout=subprocess.DEVNULL)
            index_build = time.monotonic() - t
            print(f"full-text index of {args.flows} flows built (or brought up to date) in {index_build:.1f}s", file=sys.stderr)
            for word in ["item", "item/77", "nothing-like-this", "HTTP", f"item/{args.flows // 2}"]:
                t = time.monotonic()
                subprocess.run([args.bin, "search", "--data-dir", directory, word], check=True, stdout=subprocess.DEVNULL)
                searches.append(time.monotonic() - t)
        command = f"env LC_ALL=C.UTF-8 TERM=screen-256color {args.bin} view {directory}"
        start = time.monotonic()
        pane = Pane(f"sluice-tui-bench-{os.getpid()}", command)
        newest = f"{args.flows} "
        while newest not in pane.screen():
            time.sleep(0.002)
            if time.monotonic() - start > 30:
                raise TimeoutError("first screen did not show the newest flow")
        first_screen = time.monotonic() - start
        rss = {"first screen": pane.memory_mib()}
        print(f"first screen after {first_screen:.2f}s", file=sys.stderr)
        while "loading history" in pane.screen():
            if time.monotonic() - start > 60:
                raise TimeoutError("history did not finish loading")
        history_loaded = time.monotonic() - start
        rss["history loaded"] = pane.memory_mib()
        latencies = {}
        for name, keys in [("PgUp", ["PPage"]), ("PgDn", ["NPage"]), ("Home", ["Home"]), ("End", ["End"]),
                           ("Up", ["Up"]), ("Down", ["Down"])]:
            samples = []
            for _ in range(10):
                before = pane.screen()
                t = time.monotonic()
                pane.keys(*keys)
                try:
                    pane.wait_change(before)
                except TimeoutError:
                    raise TimeoutError(f"key {name}: screen did not change:\n{before}")
                samples.append((time.monotonic() - t) * 1000)
                if name in ("Home", "End"):
                    pane.keys("PPage" if name == "End" else "NPage")
                    time.sleep(0.05)
            latencies[name] = samples
        rss["after the keys"] = pane.memory_mib()
        # Scrolling through: 100 pages up (about 3,800 rows), then back to the end.
        for _ in range(100):
            pane.keys("PPage")
            time.sleep(0.01)
        time.sleep(0.5)
        pane.keys("End")
        time.sleep(0.5)
        rss["after scrolling 100 pages"] = pane.memory_mib()
        samples = []
        complete = []
        for expression in ["~k tcp & ~src :20001", "!~b item/5", "~dst :7000 & ~b 'item/99'", ""]:
            pane.keys("f")
            time.sleep(0.05)
            pane.keys("C-u")
            if expression:
                pane.keys(expression, literal=True)
            time.sleep(0.05)
            before = pane.screen()
            t = time.monotonic()
            pane.keys("Enter")
            pane.wait_change(before, timeout=30)
            samples.append((time.monotonic() - t) * 1000)
            while "filtering" in pane.screen():
                if time.monotonic() - t > 60:
                    raise TimeoutError(f"filter {expression!r} did not finish:\n{pane.screen()}")
            complete.append((time.monotonic() - t) * 1000)
        latencies["filter (answered)"] = samples
        latencies["filter (list complete)"] = complete
        rss["after the filters"] = pane.memory_mib()
        peak = pane.memory_mib("VmHWM")
        print(f"| figure | value |\n|---|---|")
        print(f"| flows in store | {args.flows:,} |")
        print(f"| first screen (s) | {first_screen:.2f} |")
        if index_build is not None:
            print(f"| full-text index built (s) | {index_build:.1f} |")
            print(f"| `sluice search` answered: median / max (s) | {statistics.median(searches):.2f} / {max(searches):.2f} |")
        print(f"| whole history loaded (s) | {history_loaded:.2f} |")
        for name, values in latencies.items():
            print(f"| key {name}: median / max (ms) | {statistics.median(values):.1f} / {max(values):.1f} |")
        for name, value in rss.items():
            print(f"| RSS {name} (MiB) | {value:.1f} |")
        print(f"| RSS peak, VmHWM (MiB) | {peak:.1f} |")
        keys = [v for name, values in latencies.items() if name != "filter (list complete)" for v in values]
        checks = [("first screen < 1 s", first_screen < 1, f"{first_screen:.2f} s"),
                  ("every key < 50 ms (max)", max(keys) < 50, f"{max(keys):.1f} ms"),
                  (f"peak RSS <= {args.rss_bound:.0f} MiB", peak <= args.rss_bound, f"{peak:.1f} MiB")]
        if searches:
            checks.append(("search < 2 s (median)", statistics.median(searches) < 2, f"{statistics.median(searches):.2f} s"))
        for name, passed, figure in checks:
            print(f"{'PASS' if passed else 'FAIL'}: {name} ({figure}, {args.flows:,} flows)")
    finally:
        if pane:
            pane.close()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
