#!/usr/bin/env python3
"""SSH through Sluice beside going direct to the same sshd, in one run (bench/ssh.sh runs this).

- Transfers: a SIZE_MIB file up and down with scp and with sftp, direct and through Sluice (recording on),
  interleaved over ROUNDS rounds; MiB/s medians and the ratio Sluice / direct (bar: >= 0.5).
- Round trip: `ssh host true` (connect, key exchange, password login, exec, exit) RTT_RUNS times each, interleaved;
  median and p90 milliseconds and the ratio (bar: <= 2).
- Idle sessions: IDLE_SESSIONS interactive `ssh -tt` sessions held open through Sluice; Sluice's RSS before and with
  them, and its CPU over IDLE_SECONDS while they idle (bar: < 1 % of a core).

The sshd, its test user and stand-in login shell are the end-to-end tests' (tests/e2e/ssh_support.py); run as root.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import ssh_support  # noqa: E402
from support import HOST, free_port  # noqa: E402

SIZE_MIB = int(os.environ.get("SIZE_MIB", "256"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
RTT_RUNS = int(os.environ.get("RTT_RUNS", "20"))
IDLE_SESSIONS = int(os.environ.get("IDLE_SESSIONS", "100"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "30"))
SAME_ALGORITHMS = ["-o", "Ciphers=aes128-gcm@openssh.com", "-o", "KexAlgorithms=curve25519-sha256"]
SLUICE = os.environ.get("SLUICE_BIN") or os.path.join(HERE, "..", "..", ".build-release", "release", "sluice")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(args, env, input=None, timeout=600):
    start = time.monotonic()
    result = subprocess.run(args, env=env, input=input, capture_output=True, timeout=timeout,
                            stdin=None if input is not None else subprocess.DEVNULL)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def main():
    if os.geteuid() != 0:
        sys.exit("bench/ssh.sh: run as root (it starts sshd and uses the tests' user)")
    if not os.path.exists(SLUICE):
        sys.exit(f"bench/ssh.sh: no Sluice binary at {SLUICE}")
    ssh_support.ensure_user()
    work = tempfile.mkdtemp(prefix="sluice-ssh-bench-")
    os.chmod(work, 0o755)
    sshd = ssh_support.SSHServer(os.path.join(work, "sshd"))
    env = ssh_support.askpass(work)
    data = os.path.join(work, "data")
    os.makedirs(data, mode=0o700)
    with open(os.path.join(data, "known_hosts"), "w") as f:
        f.write(sshd.known_hosts_line())
    port = free_port()
    sluice = subprocess.Popen(
        [SLUICE, "--headless", "-q", "--data-dir", data, "--listen", f"ssh://{HOST}:{port}=>{HOST}:{sshd.port}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sluice.err"), "wb"),
    )
    # OpenSSH to OpenSSH picks sntrup761x25519 and chacha20-poly1305; swift-nio-ssh offers curve25519 and AES-GCM
    # only, so a client through Sluice uses those on both legs. `direct-gcm` is direct with Sluice's algorithms,
    # the like-for-like peer; the bars hold against the better of the two directs.
    targets = {"direct": (sshd.port, []), "direct-gcm": (sshd.port, SAME_ALGORITHMS), "sluice": (port, [])}
    results = {}

    def add(key, value):
        results.setdefault(key, []).append(value)

    try:
        time.sleep(1.0)
        # Idle interactive sessions through Sluice, first, on a Sluice that has done nothing else yet.
        rss_before = rss_mib(sluice.pid)
        sessions = []
        for _ in range(IDLE_SESSIONS):
            sessions.append(subprocess.Popen(
                ["ssh", "-tt"] + ssh_support.ssh_options(port) + [f"{ssh_support.USER}@{HOST}"],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            time.sleep(0.05)
        time.sleep(5)
        alive = sum(1 for s in sessions if s.poll() is None)
        rss_with = rss_mib(sluice.pid)
        cpu_start, wall_start = cpu_seconds(sluice.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_cpu = (cpu_seconds(sluice.pid) - cpu_start) / (time.monotonic() - wall_start)
        for s in sessions:
            s.kill()
        for s in sessions:
            s.wait(timeout=30)
        source = os.path.join(work, "payload.bin")
        with open(source, "wb") as f:
            for _ in range(SIZE_MIB):
                f.write(os.urandom(1 << 20))
        for round_number in range(ROUNDS):
            for peer, (target, algorithms) in targets.items():
                opts = ssh_support.ssh_options(target) + algorithms
                scp_opts = ["-P"] + opts[1:]
                remote = f"{ssh_support.USER}@{HOST}"
                add(("scp up", peer), SIZE_MIB / run(["scp"] + scp_opts + [source, f"{remote}:bench.bin"], env))
                add(("scp down", peer), SIZE_MIB / run(["scp"] + scp_opts + [f"{remote}:bench.bin", os.path.join(work, "down.bin")], env))
                put = f"put {source} bench2.bin\n".encode()
                add(("sftp up", peer), SIZE_MIB / run(["sftp"] + scp_opts + [remote], env, input=put))
                get = f"get bench2.bin {os.path.join(work, 'down2.bin')}\nrm bench.bin\nrm bench2.bin\n".encode()
                add(("sftp down", peer), SIZE_MIB / run(["sftp"] + scp_opts + [remote], env, input=get))
            print(f"round {round_number + 1}/{ROUNDS} of transfers done", file=sys.stderr)
        for _ in range(RTT_RUNS):
            for peer, (target, algorithms) in targets.items():
                args = ["ssh"] + ssh_support.ssh_options(target) + algorithms + [f"{ssh_support.USER}@{HOST}", "true"]
                add(("ssh true", peer), 1000 * run(args, env))

    finally:
        sluice.terminate()
        try:
            sluice.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sluice.kill()
        sshd.stop()

    print(f"\nSSH, {time.strftime('%Y-%m-%d')}: {SIZE_MIB} MiB files, {ROUNDS} rounds, {RTT_RUNS} logins each, "
          f"Sluice recording on ({SLUICE})\n")
    print("| measure | direct | direct-gcm | Sluice | Sluice / direct | Sluice / direct-gcm | bar |")
    print("|---|---|---|---|---|---|---|")
    verdicts = []
    for what in ("scp up", "scp down", "sftp up", "sftp down"):
        direct = statistics.median(results[(what, "direct")])
        gcm = statistics.median(results[(what, "direct-gcm")])
        through = statistics.median(results[(what, "sluice")])
        ratio = through / max(direct, gcm)
        verdicts.append(ratio >= 0.5)
        print(f"| {what} MiB/s | {direct:.0f} | {gcm:.0f} | {through:.0f} | {through / direct:.2f}× | {through / gcm:.2f}× | "
              f"≥ 0.5× {'PASS' if ratio >= 0.5 else 'FAIL'} |")
    p90 = lambda xs: sorted(xs)[max(0, int(len(xs) * 0.9) - 1)]
    direct = results[("ssh true", "direct")]
    gcm = results[("ssh true", "direct-gcm")]
    through = results[("ssh true", "sluice")]
    ratio = statistics.median(through) / min(statistics.median(direct), statistics.median(gcm))
    verdicts.append(ratio <= 2)
    print(f"| `ssh host true` ms, median (p90) | {statistics.median(direct):.0f} ({p90(direct):.0f}) | "
          f"{statistics.median(gcm):.0f} ({p90(gcm):.0f}) | {statistics.median(through):.0f} ({p90(through):.0f}) | "
          f"{statistics.median(through) / statistics.median(direct):.2f}× | {statistics.median(through) / statistics.median(gcm):.2f}× | "
          f"≤ 2× {'PASS' if ratio <= 2 else 'FAIL'} |")
    verdicts.append(idle_cpu < 0.01)
    print(f"| {IDLE_SESSIONS} idle sessions ({alive} alive): Sluice CPU | | | {idle_cpu * 100:.2f} % of a core | | | < 1 % "
          f"{'PASS' if idle_cpu < 0.01 else 'FAIL'} |")
    print(f"| Sluice RSS fresh → with {IDLE_SESSIONS} sessions | | | {rss_before:.1f} → {rss_with:.1f} MiB "
          f"({(rss_with - rss_before) * 1024 / max(1, alive):.0f} KiB each) | | | |")
    shutil.rmtree(work, True)
    sys.exit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
