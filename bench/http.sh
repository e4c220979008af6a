#!/usr/bin/env bash
# bench/http.sh - Sluice's HTTP side next to nginx (direct), haproxy and
# mitmdump, in one run, with the shared reference harness
# (../shared/bench beside the repo: 04_http_reverse.sh and 05_https_mitm.sh)
# and the native HTTPS client (lib/https_native.sh, lib/tlsload.c), then a
# short Markdown table of Sluice's figures, its ratios to mitmdump, haproxy
# and direct, and every target with PASS or FAIL.
#
# Sluice always records (its default): every flow, headers and bodies go to a
# fresh data dir per start ($WORK/sluice-runs/RUN_ID/<kind>-N).
#
# Workloads and peers (see the harness scripts' headers for the details):
#   04 HTTP/1.1 reverse proxy, origin nginx (1 worker) http://127.0.0.1:18080,
#      /1k.bin and /100k.bin, wrk -t2 -c50 -d10s --latency (keep-alive):
#      req/s, p50/p99 ms, errors, proxy CPU. Peers:
#        direct   wrk -> nginx
#        haproxy  mode http, keep-alive, http-reuse safe
#        mitm     mitmdump -q --mode reverse:http://...     (no recording)
#        mitm-w   the same with -w flows (recording, like Sluice)
#        sluice   sluice --headless -q --data-dir DIR
#                        --listen 'reverse+http://127.0.0.1:PORT=>http://127.0.0.1:18080'
#   05 HTTPS interception through an explicit proxy (CONNECT, then TLS to the
#      proxy's forged leaf, the proxy's own TLS to nginx :18443, RSA-2048
#      self-signed), 500 requests per workload: py-seq / py-c10 (lib/tlsload.py:
#      a NEW connection + full handshake per request, 1 or 10 threads),
#      curl-seq / curl-c10 (a curl process per request), curl-reuse (one
#      connection). Peers: direct, mitm (--ssl-insecure), mitm-passthrough,
#        sluice   sluice --headless -q --data-dir DIR --listen http://127.0.0.1:PORT
#                        --insecure-upstream   (CA made beforehand by `sluice ca`,
#                        copied into each fresh DIR; clients trust it via PROXY_CA)
#   native  the same interception, same origin and same Sluice command, with
#      lib/tlsload.c (C, OpenSSL) instead of tlsload.py, whose CPU per
#      handshake caps 05's figures: native-seq (one thread) and native-c10 (10
#      threads), each a new TCP connection + CONNECT + full TLS handshake +
#      GET /1k.bin (Connection: close) per request, for NATIVE_SECONDS each.
#      Peers: direct, sluice, mitm (see lib/https_native.sh).
# Targets checked at the end, each printed with PASS or FAIL (medians over
# REPS, same run):
#   HTTP (issue 20): Sluice req/s >= 0.7x haproxy's and p99 <= 1.5x haproxy's,
#          for 1 KiB and 100 KiB.
#   HTTP:  Sluice req/s >= 5x mitmdump (with and without -w), p99 below
#          mitmdump's; for 1 KiB and 100 KiB.
#   HTTPS (issue 20): native new intercepted connections/s >= 0.9x direct
#          (native-seq and native-c10).
#   HTTPS: new intercepted connections/s (py-seq, py-c10) >= 5x mitmdump.
# After the run every Sluice data dir is checked: flows recorded by HTTP
# status, flow states, stored errors, store size, stderr lines, and
# `sluice flows --limit 5` of the last one of each kind (in the log); for 04
# the flows are set against the requests wrk's timed run served. The harness
# stops each proxy with TERM and KILLs it 5 s later, so flows still queued in
# Sluice's store writer then are lost: the req/s is a 10 s burst, not a rate
# at which recording keeps up.
#
# Output: the table on stdout (also $WORK/sluice-http-summary.md); raw rows
# in $RESULTS (rows of this run share RUN_ID); harness log in
# $WORK/logs/sluice-http-RUN_ID.log; Sluice's stderr per start in
# $WORK/sluice-runs/RUN_ID/logs/. Data dirs are deleted unless KEEP_DATA=1.
#
# Knobs (env):
#   SLUICE_BIN=path   use this binary; default .build-release/release/sluice
#                     (relative to the repo), built when missing
#   REBUILD=1         rebuild the default binary even when it exists
#   SHARED_BENCH=dir  the reference harness (default ../shared/bench beside the repo)
#   REPS=1            rounds of each harness script (medians reported)
#   SKIP="04 05 native"  skip a harness script or the native HTTPS client
#   PEERS_HTTP="direct haproxy mitm mitm-w sluice"
#   PEERS_HTTPS="direct mitm mitm-passthrough sluice"
#   PEERS_NATIVE="direct sluice mitm"
#   NATIVE_SECONDS=$DURATION (else 10)  NATIVE_CONC="1 10"  NATIVE_WARMUP=20
#   PROXY_PORT=15999  Sluice's listen port; BENCH_WORK=/tmp/bench (the
#                     harness's scratch dir, holds its mitmproxy venv)
#   RESULTS=$WORK/results/sluice-http.csv  KEEP_DATA=0
#   passed through to the harness: DURATION CONNS THREADS FILES N PAR
#                     QUIET_WAIT QUIET_MAX NGINX_WORKERS HAPROXY_NBTHREAD
# Time: ~2.5 min (04) + ~2 min (05) + ~1.3 min (native) per rep, plus up to
# QUIET_WAIT (45 s) per step while the machine is busy, plus ~8-12 min for a
# first release build.
set -u
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=$(cd "${SHARED_BENCH:-$REPO_DIR/../shared/bench}" 2>/dev/null && pwd) \
    || { echo "no reference harness at ${SHARED_BENCH:-$REPO_DIR/../shared/bench}" >&2; exit 1; }
export BENCH_WORK=${BENCH_WORK:-/tmp/bench}
WORK=$BENCH_WORK
export RESULTS=${RESULTS:-$WORK/results/sluice-http.csv}
export RUN_ID=${RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-sluice-http-$$}
export PROXY_NAME=sluice PROXY_PORT=${PROXY_PORT:-15999}
export REPS=${REPS:-1}
SKIP=${SKIP:-}
PEERS_HTTP=${PEERS_HTTP:-"direct haproxy mitm mitm-w sluice"}
PEERS_HTTPS=${PEERS_HTTPS:-"direct mitm mitm-passthrough sluice"}
PEERS_NATIVE=${PEERS_NATIVE:-"direct sluice mitm"}
RUNS=$WORK/sluice-runs/$RUN_ID
HLOG=$WORK/logs/sluice-http-$RUN_ID.log
SUMMARY=$WORK/sluice-http-summary.md
mkdir -p "$RUNS/logs" "$WORK/logs" "$(dirname "$RESULTS")"
T_START=$SECONDS

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$HLOG" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- peers: the harness's setup.sh when a tool is missing ------------------------
for c in wrk haproxy nginx curl python3 ss "${VENV:-$WORK/venv}/bin/mitmdump"; do
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || {
        log "missing $c: running $SHARED_BENCH/setup.sh"
        bash "$SHARED_BENCH/setup.sh" || die "setup failed"
        break
    }
done

# ---- Sluice binary -------------------------------------------------------------------
DEFAULT_BIN=$REPO_DIR/.build-release/release/sluice
SLUICE_BIN=${SLUICE_BIN:-}
if [ -z "$SLUICE_BIN" ]; then
    SLUICE_BIN=$DEFAULT_BIN
    if [ ! -x "$SLUICE_BIN" ] || [ "${REBUILD:-0}" = 1 ]; then
        log "building Sluice (release) into $REPO_DIR/.build-release - takes several minutes on 2 cores"
        "$REPO_DIR/scripts/build-release" "$REPO_DIR/.build-release" \
            > "$WORK/logs/swift-build.log" 2>&1 || { tail -20 "$WORK/logs/swift-build.log" >&2; die "release build failed (see $WORK/logs/swift-build.log)"; }
    fi
fi
SLUICE_BIN=$(cd "$(dirname "$SLUICE_BIN")" && pwd)/$(basename "$SLUICE_BIN")
[ -x "$SLUICE_BIN" ] || die "no Sluice binary at $SLUICE_BIN"
"$SLUICE_BIN" --help >/dev/null 2>&1 || die "$SLUICE_BIN --help failed"

# ---- CA for interception, and a wrapper that gives every start a fresh data dir --------
mkdir -p -m 700 "$RUNS/ca-home"  # sluice ca does not create a missing data dir
"$SLUICE_BIN" ca --data-dir "$RUNS/ca-home" > /dev/null || die "sluice ca failed"
export PROXY_CA=$RUNS/ca-home/ca/sluice-ca.pem
[ -s "$PROXY_CA" ] || die "no CA certificate at $PROXY_CA"
WRAP=$RUNS/sluice-start.sh
cat > "$WRAP" <<EOF
#!/usr/bin/env bash
# sluice-start.sh KIND ARGS...: fresh data dir \$RUNS/KIND-N (with the run's CA for https*), then exec Sluice
kind=\$1; shift
n=1; while [ -e "$RUNS/\$kind-\$n" ]; do n=\$((n + 1)); done
d="$RUNS/\$kind-\$n"
mkdir -p -m 700 "\$d"
if [ "\${kind#https}" != "\$kind" ]; then
    mkdir -m 700 "\$d/ca" && cp -p "$RUNS/ca-home/ca/sluice-ca.pem" "$RUNS/ca-home/ca/sluice-ca-key.pem" "\$d/ca/"
fi
exec "$SLUICE_BIN" --headless -q --data-dir "\$d" "\$@" 2> "$RUNS/logs/\$kind-\$n.stderr"
EOF
chmod +x "$WRAP"

# the checkout the binary was built from (SLUICE_BIN may live in another worktree)
SRC_DIR=$(git -C "$(dirname "$SLUICE_BIN")" rev-parse --show-toplevel 2>/dev/null || echo "$REPO_DIR")
{
    echo "date_utc=$(date -u +%FT%TZ)"
    echo "cpu=$(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "sluice=$SLUICE_BIN (git $(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null) of $SRC_DIR$(git -C "$SRC_DIR" status --porcelain -- Sources Package.swift 2>/dev/null | grep -q . && echo ', working tree modified'), built $(date -u -r "$SLUICE_BIN" +%FT%TZ))"
    echo "peers=$(haproxy -v 2>/dev/null | head -1 | awk '{print "haproxy", $3}'), $(nginx -v 2>&1 | sed 's/.*version: //'), $("${VENV:-$WORK/venv}/bin/mitmdump" --version 2>/dev/null | head -1), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
    echo "settings=REPS=$REPS DURATION=${DURATION:-10} CONNS=${CONNS:-50} N=${N:-500} PAR=${PAR:-10} NATIVE_SECONDS=${NATIVE_SECONDS:-${DURATION:-10}} NATIVE_CONC='${NATIVE_CONC:-1 10}' QUIET_WAIT=${QUIET_WAIT:-45} QUIET_MAX=${QUIET_MAX:-0.15}"
} > "$RUNS/machine.txt"
sed 's/^/  /' "$RUNS/machine.txt" | tee -a "$HLOG" >&2

# ---- the harness -------------------------------------------------------------------------
run_harness() {  # run_harness KEY SCRIPT PEERS PROXY_CMD  (KEY as in SKIP; SCRIPT a path)
    case " $SKIP " in *" $1 "*) log "skipping $(basename "$2")"; return 0 ;; esac
    log "=== $(basename "$2") (peers: $3)"
    PEERS=$3 PROXY_CMD=$4 SHARED_BENCH=$SHARED_BENCH bash "$2" 2>&1 | tee -a "$HLOG" >&2
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || log "!! $(basename "$2") failed (rc=$rc)"
}
run_harness 04 "$SHARED_BENCH/04_http_reverse.sh" "$PEERS_HTTP" \
    "\"$WRAP\" http --listen \"reverse+http://127.0.0.1:\${PROXY_PORT}=>http://\${UPSTREAM_HOST}:\${UPSTREAM_PORT}\""
run_harness 05 "$SHARED_BENCH/05_https_mitm.sh" "$PEERS_HTTPS" \
    "\"$WRAP\" https --insecure-upstream --listen \"http://127.0.0.1:\${PROXY_PORT}\""
# the same Sluice command as 05, measured with the native client (lib/https_native.sh)
run_harness native "$REPO_DIR/bench/lib/https_native.sh" "$PEERS_NATIVE" \
    "\"$WRAP\" https-native --insecure-upstream --listen \"http://127.0.0.1:\${PROXY_PORT}\""

# ---- what Sluice recorded ------------------------------------------------------------------
# 04 starts Sluice once per (rep, file), in this order, so http-N maps to the Nth sluice
# rps row; wrk's timed run alone served about rps x DURATION requests (plus a 2 s warm-up).
declare -A SERVED
if [[ " $PEERS_HTTP " == *" sluice "* ]]; then
    n=0
    while IFS= read -r rps; do
        n=$((n + 1)); SERVED[http-$n]=$(awk -v r="$rps" -v d="${DURATION:-10}" 'BEGIN{printf "%.0f", r * d}')
    done < <(awk -F, -v id="$RUN_ID" '$1 == id && $3 == "http_reverse" && $5 == "sluice" && $6 == "rps" {print $7}' "$RESULTS")
fi
CHECKS=$RUNS/checks.txt; : > "$CHECKS"
for d in "$RUNS"/http-* "$RUNS"/https-*; do
    [ -d "$d" ] || continue
    name=$(basename "$d")
    errlines=$(wc -l < "$RUNS/logs/$name.stderr" 2>/dev/null || echo "?")
    size=$(du -sm "$d" | cut -f1)
    if command -v sqlite3 >/dev/null && [ -s "$d/sluice.sqlite" ]; then
        q() { sqlite3 -readonly "$d/sluice.sqlite" "$1" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
        line="flows=$(q 'select count(*) from flows') status[$(q "select coalesce(status,'none')||':'||count(*) from flows left join http on http.flow_id = flows.id group by coalesce(status,'none')")] state[$(q "select state||':'||count(*) from flows group by state")] stored_errors=$(q 'select count(*) from errors') synthetic=$(q 'select count(*) from http where synthetic = 1')"
        errors=$(q "select group_concat(e, '; ') from (select phase||': '||message||' ×'||count(*) as e from errors group by phase, message order by count(*) desc limit 3)")
        [ -n "$errors" ] && line="$line errors[$errors]"
    else
        line="flows=$("$SLUICE_BIN" flows --data-dir "$d" --json --limit 100000000 2>/dev/null | wc -l)"
    fi
    [ -n "${SERVED[$name]:-}" ] && line="$line (wrk's timed run alone served ≈${SERVED[$name]})"
    echo "$name: $line store=${size}MiB stderr_lines=$errlines" >> "$CHECKS"
    { echo "--- sluice flows --data-dir $d --limit 5"; "$SLUICE_BIN" flows --data-dir "$d" --limit 5 2>&1
      [ "$errlines" != 0 ] && { echo "--- stderr (last 5 lines)"; tail -5 "$RUNS/logs/$name.stderr"; }; } >> "$HLOG" 2>&1
    [ "${KEEP_DATA:-0}" = 1 ] || rm -rf "$d"
done
[ "${KEEP_DATA:-0}" = 1 ] || rm -rf "$RUNS/ca-home"
log "sluice data dirs checked:"; sed 's/^/  /' "$CHECKS" | tee -a "$HLOG" >&2

# ---- summary -------------------------------------------------------------------------------
elapsed=$((SECONDS - T_START))
{
    echo "## Sluice HTTP side vs mitmdump and haproxy (recording on)"
    echo
    echo "Run $RUN_ID, took $((elapsed / 60)) min $((elapsed % 60)) s."
    echo
    sed 's/^\([a-z_]*\)=/- \1: /' "$RUNS/machine.txt"
    echo
    python3 - "$RESULTS" "$RUN_ID" <<'PY'
import csv, os, statistics, sys
path, run = sys.argv[1], sys.argv[2]
vals = {}
for r in csv.DictReader(open(path)):
    if r["run_id"] == run:
        vals.setdefault((r["test"], r["variant"], r["peer"], r["metric"]), []).append(float(r["value"]))
def m(t, v, p, k):
    x = vals.get((t, v, p, k))
    return statistics.median(x) if x else None
def f(x):
    if x is None: return "–"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
def rt(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "–"
checks = []
def check(name, ok):
    # None: a figure is missing (a peer failed or was left out); said so rather than passed over
    checks.append(f"- {'NOT MEASURED' if ok is None else 'PASS' if ok else 'FAIL'}: {name}")
def ratio_check(name, s, ref, bar, higher):
    """Issue-20 target: Sluice's median s against bar x the reference's median ref."""
    if s is None or not ref:
        check(f"{name} (no figure: sluice {f(s)}, reference {f(ref)})", None)
    else:
        check(f"{name}: {f(s)} vs {f(ref)} = {s / ref:.2f}×", s >= bar * ref if higher else s <= bar * ref)
peers = ["direct", "haproxy", "mitm", "mitm-w", "sluice"]
variants = sorted({v for (t, v, p, k) in vals if t == "http_reverse"}, key=lambda v: int(v.split("k")[0]) if v.split("k")[0].isdigit() else 0)
if variants:
    print("### HTTP reverse proxy (wrk, keep-alive; median of", max(len(vals.get(("http_reverse", v, "sluice", "rps"), [])) for v in variants), "run(s))\n")
    print("| file | metric | " + " | ".join(peers) + " | sluice / mitm | sluice / mitm-w | sluice / haproxy |")
    print("|---|---|" + "---|" * (len(peers) + 3))
    for v in variants:
        for k, label in (("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors"), ("peer_cpu_cores", "proxy CPU cores"), ("bg_cpu_cores", "background cores before")):
            row = [m("http_reverse", v, p, k) for p in peers]
            s = row[4]
            ratios = [rt(s, row[2]), rt(s, row[3]), rt(s, row[1])] if k in ("rps", "p50_ms", "p99_ms") else ["", "", ""]
            print(f"| {v} | {label} | " + " | ".join(f(x) for x in row) + " | " + " | ".join(ratios) + " |")
        s, h, mi, mw = (m("http_reverse", v, p, "rps") for p in ("sluice", "haproxy", "mitm", "mitm-w"))
        sp, hp99, mip, mwp = (m("http_reverse", v, p, "p99_ms") for p in ("sluice", "haproxy", "mitm", "mitm-w"))
        ratio_check(f"issue 20, HTTP {v}: Sluice req/s ≥ 0.7× haproxy's", s, h, 0.7, True)
        ratio_check(f"issue 20, HTTP {v}: Sluice p99 ≤ 1.5× haproxy's (ms)", sp, hp99, 1.5, False)
        if s is not None:
            if mi: check(f"HTTP {v}: req/s ≥ 5× mitmdump ({f(s)} vs 5 × {f(mi)} = {f(5 * mi)})", s >= 5 * mi)
            if mw: check(f"HTTP {v}: req/s ≥ 5× mitmdump -w ({f(s)} vs 5 × {f(mw)} = {f(5 * mw)})", s >= 5 * mw)
            if mip and sp is not None: check(f"HTTP {v}: p99 below mitmdump's ({f(sp)} ms vs {f(mip)} ms; -w {f(mwp)} ms)", sp < mip and (mwp is None or sp < mwp))
    print()
if not variants:
    check("issue 20, HTTP reverse proxy: Sluice req/s ≥ 0.7× haproxy's and p99 ≤ 1.5× (1 KiB, 100 KiB): step 04 did not run", None)
hp = ["direct", "mitm", "mitm-passthrough", "sluice"]
if any(t == "https_intercept" for (t, v, p, k) in vals):
    print(f"### HTTPS interception, explicit proxy ({os.environ.get('N', '500')} requests per workload)\n")
    print("| workload | metric | " + " | ".join(hp) + " | sluice / mitm |")
    print("|---|---|" + "---|" * (len(hp) + 1))
    rows = [("py-seq", "rps", "new conns/s"), ("py-seq", "p50_ms", "per request p50 ms"), ("py-seq", "p99_ms", "per request p99 ms"),
            ("py-seq", "connect_p50_ms", "CONNECT answered p50 ms"), ("py-seq", "tls_p50_ms", "TLS handshake p50 ms"),
            ("py-seq", "newconn_cost_ms", "new-connection cost ms"), ("py-seq", "peer_cpu_cores", "proxy CPU cores"),
            ("py-c10", "rps", "new conns/s"), ("py-c10", "p50_ms", "per request p50 ms"), ("py-c10", "p99_ms", "per request p99 ms"),
            ("py-c10", "peer_cpu_cores", "proxy CPU cores"), ("curl-seq", "rps", "req/s"), ("curl-c10", "rps", "req/s"),
            ("curl-reuse", "rps", "req/s (one connection)"), ("all", "bg_cpu_cores", "background cores before")]
    for v, k, label in rows:
        row = [m("https_intercept", v, p, k) for p in hp]
        print(f"| {v} | {label} | " + " | ".join(f(x) for x in row) + " | " + (rt(row[3], row[1]) if k in ("rps", "p50_ms", "p99_ms", "tls_p50_ms", "newconn_cost_ms") else "") + " |")
    print()
    for v in ("py-seq", "py-c10", "curl-seq", "curl-c10", "curl-reuse"):
        okv, want = m("https_intercept", v, "sluice", "ok"), float(os.environ.get("N", "500"))
        if okv is not None and okv < want: print(f"- sluice {v}: only {okv:.0f} of {want:.0f} requests succeeded")
    for v in ("py-seq", "py-c10"):
        s, mi = m("https_intercept", v, "sluice", "rps"), m("https_intercept", v, "mitm", "rps")
        if s is not None and mi: check(f"HTTPS {v}: new intercepted connections/s ≥ 5× mitmdump ({f(s)} vs 5 × {f(mi)} = {f(5 * mi)})", s >= 5 * mi)
    print()
native = sorted({v for (t, v, p, k) in vals if t == "https_native" and v != "all"}, key=lambda v: 1 if v == "native-seq" else int(v[len("native-c"):]))
if native:
    np_ = ["direct", "sluice", "mitm"]
    secs = os.environ.get("NATIVE_SECONDS", os.environ.get("DURATION", "10"))
    print(f"### HTTPS interception, native client (lib/tlsload.c; new connection + CONNECT + full TLS handshake per request, {secs} s per workload)\n")
    print("| workload | metric | " + " | ".join(np_) + " | sluice / direct | sluice / mitm |")
    print("|---|---|" + "---|" * (len(np_) + 2))
    for v in native:
        for k, label in (("rps", "new conns/s"), ("p50_ms", "per request p50 ms"), ("p99_ms", "per request p99 ms"),
                         ("tls_p50_ms", "TLS handshake p50 ms"), ("connect_p50_ms", "CONNECT answered p50 ms"),
                         ("fail", "failed requests"), ("peer_cpu_cores", "proxy CPU cores"), ("nginx_cpu_cores", "nginx CPU cores"),
                         ("client_cpu_cores", "client CPU cores")):
            row = [m("https_native", v, p, k) for p in np_]
            ratios = [rt(row[1], row[0]), rt(row[1], row[2])] if k in ("rps", "p50_ms", "p99_ms", "tls_p50_ms") else ["", ""]
            print(f"| {v} | {label} | " + " | ".join(f(x) for x in row) + " | " + " | ".join(ratios) + " |")
    print(f"| all | background cores before | " + " | ".join(f(m("https_native", "all", p, "bg_cpu_cores")) for p in np_) + " | | |")
    print()
    for v in native:
        fails = m("https_native", v, "sluice", "fail")
        if fails: print(f"- sluice {v}: {fails:.0f} failed requests (median per run; see the log for the first error of each kind)")
# The issue-20 HTTPS targets are listed even when the native step did not run, so a skipped step shows.
for conc in os.environ.get("NATIVE_CONC", "1 10").split():
    v = "native-seq" if conc == "1" else f"native-c{conc}"
    ratio_check(f"issue 20, HTTPS {v}: new intercepted connections/s ≥ 0.9× direct",
                m("https_native", v, "sluice", "rps"), m("https_native", v, "direct", "rps"), 0.9, True)
if native: print()
if checks:
    print("### Targets\n")
    print("\n".join(checks))
PY
    echo
    echo "Sluice data dirs (flows recorded by HTTP status, flow states):"
    echo
    sed 's/^/- /' "$CHECKS"
    echo "- fewer flows than requests served means Sluice was still writing its backlog when the harness"
    echo "  stopped it (TERM, then KILL after 5 s); 'open' flows were cut off by the stop."
    warns=$(grep -E 'WARN|ERROR|!!' "$HLOG" | grep -v 'machine not quiet' | sort | uniq -c | sed 's/^ */  /')
    nq=$(grep -c 'machine not quiet' "$HLOG")
    [ "$nq" -gt 0 ] && echo "- $nq step(s) started although the machine was not quiet after ${QUIET_WAIT:-45} s (see background cores)"
    [ -n "$warns" ] && { echo "- harness warnings:"; echo "$warns"; }
    echo
    echo "Raw rows: $RESULTS (run_id $RUN_ID); log: $HLOG; Sluice stderr: $RUNS/logs/"
} | tee "$SUMMARY"
