#!/usr/bin/env python3
"""Databases through Sluice beside haproxy (TCP mode) and pgbouncer (session pooling, the protocol-aware peer), in
one run (bench/sql.sh runs this).

- MariaDB: point selects by primary key with `mysqlslap` (CLIENTS connections, MYSQL_QUERIES queries in all),
  through Sluice and haproxy and direct, interleaved; medians of queries per second, ratio Sluice / haproxy
  (bar: >= 0.8).
- PostgreSQL: `pgbench -S -n -c CLIENTS -j 2 -T SECONDS` (select-only, prepared by pgbench's own -M default, simple)
  against a pgbench database of scale SCALE, through each peer and direct, interleaved over ROUNDS rounds; medians of
  transactions per second, and the ratio Sluice / haproxy (bar: >= 0.8). Sluice records everything: every statement
  is a command in its store. Also `-M prepared` (the extended protocol, one Parse per client) the same way.

The PostgreSQL server is the end-to-end tests' (tests/e2e/pg_support.py): a fresh cluster in a temp dir on a loopback
port, fsync off. Run as root (the server runs as the postgres user).
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import mysql_support  # noqa: E402
import pg_support  # noqa: E402
from support import HOST, free_port  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "15"))
CLIENTS = int(os.environ.get("CLIENTS", "8"))
SCALE = int(os.environ.get("SCALE", "10"))
MODES = os.environ.get("MODES", "simple prepared").split()
MYSQL_QUERIES = int(os.environ.get("MYSQL_QUERIES", "200000"))
SLUICE = os.environ.get("SLUICE_BIN") or os.path.join(HERE, "..", "..", ".build-release", "release", "sluice")
# More arguments for Sluice, e.g. "--max-flow-bytes 0" to see what recording the bytes costs.
SLUICE_ARGS = os.environ.get("SLUICE_ARGS", "").split()


def wait_for_port(port, process, name, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} not listening on {port} after {timeout}s")


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Peers:
    """Sluice, haproxy and pgbouncer in front of one PostgreSQL server; `ports` by name ("direct" is the server)."""

    def __init__(self, pg, work):
        self.processes = []
        self.ports = {"direct": pg.port}
        self.sluice_data = os.path.join(work, "sluice-data")
        port = free_port()
        log = open(os.path.join(work, "sluice.log"), "wb")
        sluice = subprocess.Popen(
            [SLUICE, "--headless", "-q", "--data-dir", self.sluice_data, "--listen", f"postgres://{HOST}:{port}=>{HOST}:{pg.port}"] + SLUICE_ARGS,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.start("sluice", sluice, port)

        port = free_port()
        config = os.path.join(work, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(f"""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen postgres
    bind {HOST}:{port}
    server pg {HOST}:{pg.port}
""")
        haproxy = subprocess.Popen(["haproxy", "-f", config], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "haproxy.log"), "wb"))
        self.start("haproxy", haproxy, port)

        if shutil.which("pgbouncer"):
            port = free_port()
            directory = os.path.join(work, "pgbouncer")
            os.makedirs(directory, exist_ok=True)
            shutil.chown(directory, pg_support.OS_USER, pg_support.OS_USER)
            ini = os.path.join(directory, "pgbouncer.ini")
            with open(ini, "w") as f:
                f.write(f"""[databases]
{pg_support.DATABASE} = host={HOST} port={pg.port} dbname={pg_support.DATABASE}
[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = {CLIENTS + 4}
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
""")
            with open(os.path.join(directory, "users.txt"), "w") as f:
                f.write(f'"{pg_support.TRUST_USER}" ""\n')
            pgbouncer = subprocess.Popen(["pgbouncer", ini], user=pg_support.OS_USER, group=pg_support.OS_USER, cwd=directory,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(work, "pgbouncer.stderr"), "wb"))
            self.start("pgbouncer", pgbouncer, port)

    def start(self, name, process, port):
        self.processes.append(process)
        wait_for_port(port, process, name)
        self.ports[name] = port

    def stop(self):
        for process in self.processes:
            stop(process)


def pgbench(pg, port, mode):
    result = pg.pgbench(["-S", "-n", "-M", mode, "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS)], port=port,
                        timeout=SECONDS + 120)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench through port {port} failed: {result.stderr[-500:]}")
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if not match or (failed and failed.group(1) != "0"):
        raise RuntimeError(f"pgbench output without tps or with failures:\n{result.stdout[-800:]}")
    return float(match.group(1))


def stored_commands(data_dir):
    try:
        out = subprocess.run([SLUICE, "commands", "--data-dir", data_dir, "--json", "--limit", "1"],
                             capture_output=True, text=True, timeout=60).stdout
        return out.strip().splitlines()[-1] if out.strip() else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def haproxy(work, name, target_port):
    """haproxy in TCP mode in front of `target_port`; returns (process, port)."""
    port = free_port()
    config = os.path.join(work, f"haproxy-{name}.cfg")
    with open(config, "w") as f:
        f.write(f"""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen {name}
    bind {HOST}:{port}
    server db {HOST}:{target_port}
""")
    process = subprocess.Popen(["haproxy", "-f", config], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(work, f"haproxy-{name}.log"), "wb"))
    wait_for_port(port, process, "haproxy")
    return process, port


def mysqlslap(server, port):
    """Point selects through `port`: queries per second."""
    result = subprocess.run(
        ["mysqlslap", "--no-defaults", "-h", HOST, "-P", str(port), "-u", mysql_support.NATIVE_USER,
         f"--password={mysql_support.NATIVE_PASSWORD}", "--skip-ssl", "--create-schema", mysql_support.DATABASE, "--no-drop",
         f"--concurrency={CLIENTS}", f"--number-of-queries={MYSQL_QUERIES}", "--iterations=1",
         "--query=SELECT v FROM points WHERE id = 4242"],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"mysqlslap through port {port} failed: {result.stderr[-500:]}")
    match = re.search(r"Average number of seconds to run all queries: ([0-9.]+)", result.stdout)
    if not match:
        raise RuntimeError(f"mysqlslap output without a time:\n{result.stdout[-500:]}")
    return MYSQL_QUERIES / float(match.group(1))


def mariadb_bench(work):
    """MariaDB point selects through Sluice and haproxy and direct; prints the table and the verdict."""
    reason = mysql_support.unavailable()
    if reason or not shutil.which("mysqlslap"):
        # listed anyway, so one run's output shows every target
        print(f"\nNOT MEASURED: MariaDB point selects through Sluice ≥ 0.8× haproxy ({reason or 'mysqlslap is not installed'})")
        return
    server = mysql_support.MariaDBServer()
    processes = []
    try:
        server.admin("CREATE TABLE points (id INT PRIMARY KEY, v INT); "
                     "INSERT INTO points SELECT seq, seq * 2 FROM seq_1_to_10000;", database=mysql_support.DATABASE)
        ports = {"direct": server.port}
        port = free_port()
        log = open(os.path.join(work, "sluice-mysql.log"), "wb")
        sluice = subprocess.Popen(
            [SLUICE, "--headless", "-q", "--data-dir", os.path.join(work, "sluice-mysql-data"),
             "--listen", f"mysql://{HOST}:{port}=>{HOST}:{server.port}"] + SLUICE_ARGS,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        processes.append(sluice)
        wait_for_port(port, sluice, "sluice")
        ports["sluice"] = port
        process, ports["haproxy"] = haproxy(work, "mariadb", server.port)
        processes.append(process)
        names = ["direct", "sluice", "haproxy"]
        results = {name: [] for name in names}
        for round_number in range(ROUNDS):
            for name in names if round_number % 2 == 0 else list(reversed(names)):
                qps = mysqlslap(server, ports[name])
                results[name].append(qps)
                print(f"round {round_number + 1} mariadb {name}: {qps:,.0f} queries/s", file=sys.stderr, flush=True)
        medians = {name: statistics.median(results[name]) for name in names}
        ratio = medians["sluice"] / medians["haproxy"]
        print(f"\n**MariaDB** point selects (`mysqlslap`, {CLIENTS} connections, {MYSQL_QUERIES:,} queries), median of "
              f"{ROUNDS} interleaved rounds; Sluice records every statement.\n")
        print("| " + " | ".join(names) + " | Sluice ÷ haproxy |")
        print("|---" * (len(names) + 1) + "|")
        print("| " + " | ".join(f"{medians[name]:,.0f}" for name in names) + f" | {ratio:.2f} |")
        print(f"\n{'PASS' if ratio >= 0.8 else 'FAIL'}: MariaDB point selects through Sluice are {ratio:.2f}× haproxy (bar 0.8)")
    finally:
        for process in processes:
            stop(process)
        server.stop()


def main():
    reason = pg_support.unavailable()
    if reason:
        sys.exit(f"sql_bench: {reason}")
    work = tempfile.mkdtemp(prefix="sluice-sql-bench-")
    os.chmod(work, 0o755)  # pgbouncer runs as the postgres user and keeps its files in a directory below
    pg = pg_support.PostgresServer()
    peers = None
    try:
        pg.admin("ALTER SYSTEM SET max_connections = 200;")
        init = pg.pgbench(["-i", "-q", "-s", str(SCALE)], timeout=600)
        if init.returncode != 0:
            raise RuntimeError(init.stderr)
        peers = Peers(pg, work)
        names = [name for name in ("direct", "sluice", "haproxy", "pgbouncer") if name in peers.ports]
        results = {(mode, name): [] for mode in MODES for name in names}
        for round_number in range(ROUNDS):
            for mode in MODES:
                order = names if round_number % 2 == 0 else list(reversed(names))
                for name in order:
                    tps = pgbench(pg, peers.ports[name], mode)
                    results[(mode, name)].append(tps)
                    print(f"round {round_number + 1} {mode} {name}: {tps:,.0f} tps", file=sys.stderr, flush=True)
        print(f"\n**PostgreSQL** `pgbench -S -n -c {CLIENTS} -j 2 -T {SECONDS}`, scale {SCALE}, median of {ROUNDS} "
              f"interleaved rounds; Sluice records every statement.\n")
        print("| mode | " + " | ".join(names) + " | Sluice ÷ haproxy | Sluice ÷ pgbouncer |")
        print("|---" * (len(names) + 3) + "|")
        verdicts = []
        for mode in MODES:
            medians = {name: statistics.median(results[(mode, name)]) for name in names}
            ratio = medians["sluice"] / medians["haproxy"]
            bouncer = f"{medians['sluice'] / medians['pgbouncer']:.2f}" if "pgbouncer" in medians else "-"
            cells = " | ".join(f"{medians[name]:,.0f}" for name in names)
            print(f"| -M {mode} | {cells} | {ratio:.2f} | {bouncer} |")
            verdicts.append((mode, ratio))
        print()
        for mode, ratio in verdicts:
            print(f"{'PASS' if ratio >= 0.8 else 'FAIL'}: -M {mode} through Sluice is {ratio:.2f}× haproxy (bar 0.8)")
        for mode in ("simple", "prepared"):
            if mode not in MODES:
                print(f"NOT MEASURED: -M {mode} through Sluice ≥ 0.8× haproxy (not in MODES)")
        print(f"\nlast stored command: {stored_commands(peers.sluice_data)[:300]}")
        peers.stop()
        peers = None
        mariadb_bench(work)
    finally:
        if peers:
            peers.stop()
        pg.stop()
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
