#!/usr/bin/env python3
"""summarize.py - the side-by-side Markdown table of one bench/run.sh run.

Usage: summarize.py RESULTS_CSV [RUN_ID]

One row per figure, one column per peer (direct, sluice-rec-off, sluice-rec-on,
socat, haproxy), each cell the median over the rounds (with min-max when n>1),
then one column per peer with its median divided by haproxy's. Below it, every
target (issue 20's latency and idle-memory bars, DESIGN.md's throughput bars)
with PASS, FAIL or NOT MEASURED, against haproxy from the same run, and the
background CPU seen during the run.
"""
import csv
import statistics
import sys
from collections import OrderedDict

path = sys.argv[1]
run_id = sys.argv[2] if len(sys.argv) > 2 else None
REF = "haproxy"
PEER_ORDER = ["direct", "sluice-rec-off", "sluice-rec-on", "socat", "haproxy"]

vals = OrderedDict()
peers_seen = OrderedDict()
with open(path) as f:
    for row in csv.DictReader(f):
        if run_id and row["run_id"] != run_id:
            continue
        key = (row["test"], row["variant"], row["metric"], row["peer"])
        vals.setdefault(key, []).append(float(row["value"]))
        peers_seen[row["peer"]] = 1
peers = [p for p in PEER_ORDER if p in peers_seen] + [p for p in peers_seen if p not in PEER_ORDER]
ratio_peers = [p for p in peers if p not in (REF, "direct")]

# (label, test, variant, metric, unit, higher_is_better)
ROWS = [
    ("Throughput, 1 stream", "tcp_throughput", "P1", "gbps", "Gbit/s"),
    ("Throughput, 8 streams", "tcp_throughput", "P8", "gbps", "Gbit/s"),
    ("iperf3 runs failed (retried), 1 stream", "tcp_throughput", "P1", "failed_attempts", "runs, total"),
    ("iperf3 runs failed (retried), 8 streams", "tcp_throughput", "P8", "failed_attempts", "runs, total"),
    ("Proxy CPU, 1 stream", "tcp_throughput", "P1", "peer_cpu_cores", "cores"),
    ("Proxy CPU, 8 streams", "tcp_throughput", "P8", "peer_cpu_cores", "cores"),
    ("Throughput per proxy core, 1 stream", "tcp_throughput", "P1", "gbps_per_core", "Gbit/s/core"),
    ("Throughput per proxy core, 8 streams", "tcp_throughput", "P8", "gbps_per_core", "Gbit/s/core"),
    ("Peak RSS after throughput runs", "tcp_throughput", "all", "peak_rss_MiB", "MiB"),
    ("Store size after all throughput runs", "tcp_throughput", "all", "store_MiB", "MiB"),
    ("Round trip 64 B, p50", "tcp_latency", "64B", "rtt_p50_us", "µs"),
    ("Round trip 64 B, p99", "tcp_latency", "64B", "rtt_p99_us", "µs"),
    ("Round trip 64 B, p99.9", "tcp_latency", "64B", "rtt_p999_us", "µs"),
    ("Idle, 0 conns: RSS", "tcp_idle_conns", "N", "idle_rss_MiB", "MiB"),
    ("Idle, 0 conns: PSS", "tcp_idle_conns", "N", "idle_pss_MiB", "MiB"),
    ("{n} idle conns: RSS (sum over processes)", "tcp_idle_conns", "N", "rss_MiB", "MiB"),
    ("{n} idle conns: PSS", "tcp_idle_conns", "N", "pss_MiB", "MiB"),
    ("{n} idle conns: ΔPSS per conn", "tcp_idle_conns", "N", "pss_per_conn_KiB", "KiB"),
    ("{n} idle conns: ΔRSS per conn", "tcp_idle_conns", "N", "rss_per_conn_KiB", "KiB"),
    ("{n} idle conns: established (echo verified)", "tcp_idle_conns", "N", "established", "conns"),
    ("{n} idle conns: alive after hold", "tcp_idle_conns", "N", "alive_after_hold", "conns"),
    ("{n} idle conns: time to open all", "tcp_idle_conns", "N", "open_s", "s"),
    ("{n} idle conns: processes / threads", "tcp_idle_conns", "N", "procs_threads", ""),
]

idle_variants = sorted({k[1] for k in vals if k[0] == "tcp_idle_conns"}, key=lambda v: int(v[1:]) if v[1:].isdigit() else 0)


def fmt(x):
    if float(x).is_integer():
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"


SUM_METRICS = {"failed_attempts"}


def med(test, variant, metric, peer):
    v = vals.get((test, variant, metric, peer))
    if v and metric in SUM_METRICS:
        return sum(v)
    return statistics.median(v) if v else None


def cell(test, variant, metric, peer):
    if metric == "procs_threads":
        a, b = med(test, variant, "procs", peer), med(test, variant, "threads", peer)
        return "" if a is None else f"{fmt(a)} / {fmt(b)}"
    v = vals.get((test, variant, metric, peer))
    if not v:
        return "–"
    if metric in SUM_METRICS:
        return f"**{fmt(sum(v))}** in {len(v)} round(s)"
    m = statistics.median(v)
    if len(v) > 1 and min(v) != max(v):
        return f"**{fmt(m)}** ({fmt(min(v))}–{fmt(max(v))})"
    return f"**{fmt(m)}**"


def nrounds():
    ns = [len(v) for k, v in vals.items() if k[2] == "gbps"]
    return max(ns) if ns else 0


out = []
out.append(f"Cells: median over the rounds (min–max), n = {nrounds()} per throughput cell. "
           f"Ratio columns: peer median ÷ {REF} median from this run.\n")
hdr = "| figure | unit | " + " | ".join(peers) + " | " + " | ".join(f"{p} ÷ {REF}" for p in ratio_peers) + " |"
out.append(hdr)
out.append("|---|---|" + "---|" * len(peers) + "---|" * len(ratio_peers))
for label, test, variant, metric, unit in ROWS:
    variants = idle_variants if variant == "N" else [variant]
    for var in variants:
        if not any(vals.get((test, var, metric, p)) for p in peers) and metric != "procs_threads":
            continue
        if metric == "procs_threads" and med(test, var, "procs", peers[-1]) is None and not any(
                med(test, var, "procs", p) is not None for p in peers):
            continue
        lab = label.format(n=f"{int(var[1:]):,}" if var[1:].isdigit() else var)
        cells = [cell(test, var, metric, p) for p in peers]
        ratios = []
        r = med(test, var, metric, REF) if metric != "procs_threads" else None
        for p in ratio_peers:
            m = med(test, var, metric, p) if metric != "procs_threads" else None
            ratios.append(f"{m / r:.2f}" if (m is not None and r) else "–")
        out.append(f"| {lab} | {unit} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")

# ---- targets ------------------------------------------------------------------
# Every target is listed, PASS, FAIL or NOT MEASURED (a step skipped, a peer left out, CONNS not 5,000), so one
# run's output shows the whole list. "issue 20" are the current bars (recording on is what counts; the same bars
# are checked without recording too), "DESIGN" the throughput bars kept from DESIGN.md.
out.append("\n**Targets** (against haproxy's median in the same run)\n")
IDLE_TARGET_CONNS = 5000


def target(name, ok, measured):
    result = "NOT MEASURED" if ok is None else "PASS" if ok else "FAIL"
    out.append(f"- {result}: {name}: {measured}")


def against_haproxy(name, test, variant, metric, peer, bar, unit, higher):
    s, h = med(test, variant, metric, peer), med(test, variant, metric, REF)
    if s is None or not h:
        target(name, None, f"no figure ({peer} {'–' if s is None else fmt(s)}, haproxy {'–' if h is None else fmt(h)})")
    else:
        target(name, s >= bar * h if higher else s <= bar * h, f"{fmt(s)} vs {fmt(h)} {unit} = {s / h:.2f}×")


for peer in ("sluice-rec-on", "sluice-rec-off"):
    tag = "issue 20" if peer == "sluice-rec-on" else "issue 20 bar, recording off"
    against_haproxy(f"{tag}: {peer} 64 B round trip p99 ≤ 1.0× haproxy's", "tcp_latency", "64B", "rtt_p99_us", peer, 1.0, "µs", False)
    against_haproxy(f"{tag}: {peer} 64 B round trip p99.9 ≤ 2× haproxy's", "tcp_latency", "64B", "rtt_p999_us", peer, 2.0, "µs", False)
for peer in ("sluice-rec-on", "sluice-rec-off"):
    tag = "issue 20" if peer == "sluice-rec-on" else "issue 20 bar, recording off"
    name = f"{tag}: {peer} holding {IDLE_TARGET_CONNS:,} idle connections ≤ 40 MiB RSS (all established)"
    var = f"N{IDLE_TARGET_CONNS}"
    s = med("tcp_idle_conns", var, "rss_MiB", peer)
    if s is None:
        ran = ", ".join(f"{int(v[1:]):,}" for v in idle_variants if v[1:].isdigit())
        target(name, None, f"no figure (connections held in this run: {ran or 'none'})")
        continue
    e = med("tcp_idle_conns", var, "established", peer) or 0
    i = med("tcp_idle_conns", var, "idle_rss_MiB", peer) or 0
    text = f"{fmt(s)} MiB RSS with {fmt(e)} of {IDLE_TARGET_CONNS:,} established"
    if 0 < e < IDLE_TARGET_CONNS:
        x = i + (s - i) / e * IDLE_TARGET_CONNS
        text += f"; ≈ {fmt(x)} MiB extrapolated to {IDLE_TARGET_CONNS:,}; {fmt(IDLE_TARGET_CONNS - e)} connections were dropped by the proxy"
    target(name, s <= 40 and e >= IDLE_TARGET_CONNS, text)
for var, nm in (("P1", "1 stream"), ("P8", "8 streams")):
    for peer, need in (("sluice-rec-off", 0.90), ("sluice-rec-on", 0.50)):
        against_haproxy(f"DESIGN: {peer} throughput, {nm}, ≥ {need:.0%} of haproxy's", "tcp_throughput", var, "gbps", peer, need,
                        "Gbit/s", True)

# ---- background load ------------------------------------------------------------
bg = [v for k, vs in vals.items() if k[2] == "bg_cpu_cores" for v in vs]
oth = [(k, v) for k, vs in vals.items() if k[2] == "other_cpu_cores" for v in vs]
if bg or oth:
    out.append("\n**Background load** (processes not started by this run)\n")
    if bg:
        out.append(f"- machine busy just before each step (wait_quiet): median {statistics.median(bg):.2f}, max {max(bg):.2f} cores over {len(bg)} steps")
    if oth:
        ov = [v for _, v in oth]
        worst = sorted(oth, key=lambda kv: -kv[1])[:3]
        out.append(f"- CPU of other processes during the measured steps: median {statistics.median(ov):.2f}, max {max(ov):.2f} cores over {len(ov)} steps"
                   + ("; worst: " + ", ".join(f"{k[0]} {k[1]} {k[3]} {v:.2f}" for k, v in worst) if worst else ""))

print("\n".join(out))
