#!/usr/bin/env bash
# bench/run.sh - Sluice side by side with socat and haproxy as raw TCP
# forwarders on 127.0.0.1, in one run, and a Markdown table of every figure
# with its ratio to haproxy.
#
# Peers (all forward 127.0.0.1:LISTEN -> 127.0.0.1:UPSTREAM):
#   sluice-rec-off  sluice --headless -q --no-record --data-dir $WORK/data/rec-off --listen tcp://...
#   sluice-rec-on   the same with recording on (default: every chunk stored,
#                   up to 64 MiB per flow, then only counted), own data dir
#   socat           socat TCP-LISTEN:P,bind=127.0.0.1,fork,reuseaddr,backlog=4096 TCP:127.0.0.1:U
#   haproxy         haproxy 2.x mode tcp (default nbthread = 2 here), maxconn 9000
#   direct          (throughput and latency only) no forwarder: the ceiling
# Measurements, each round (peers interleaved within a round):
#   1. iperf3 throughput, 1 stream and 8 streams (-P 8), BENCH_SECONDS each,
#      plus the forwarder's CPU (process tree, from /proc)
#   2. 64-byte ping-pong round trip p50/p99/p99.9 (lib/pingpong.c against
#      lib/echo_server.c), ITER round trips, LAT_REPS runs per round
#   3. RSS/PSS of the forwarder idle, then holding CONNS idle connections,
#      each verified by a 1-byte echo (lib/holdconns.py), pinged again after
#      HOLD s
# Before each step it waits (<= QUIET_WAIT s) for the machine to be quiet
# (< QUIET_MAX cores busy) and records that background load, and the CPU
# other processes used during the step.
#
# Output: the table on stdout (also $WORK/summary.md), raw rows in
# $WORK/results.csv (previous run kept as results.prev.csv), logs in $WORK/logs.
#
# Knobs (env):
#   ROUNDS=2          repetitions of every measurement (medians reported)
#   BENCH_SECONDS=10  iperf3 duration per run
#   PEERS="sluice-rec-off sluice-rec-on socat haproxy"
#   DIRECT=1          also measure direct (no forwarder) throughput/latency
#   STREAMS="1 8"  ITER=10000  SIZE=64  LAT_REPS=3  CONNS=5000  HOLD=5
#   IPERF_TRIES=3     attempts per iperf3 run when it fails (failures counted)
#   SLUICE_BIN=path   use this binary; default .build-release/release/sluice,
#                     built (scripts/build-release) when missing
#   REBUILD=1         rebuild the default binary even when it exists
#   QUIET_WAIT=30 QUIET_MAX=0.15  noise guard; BENCH_WORK=/tmp/sluice-bench
#   SKIP="throughput latency idle"  skip some measurements
# Time: about 3.5 min per round with the defaults (+ up to QUIET_WAIT per step
# on a busy machine, + ~5-8 min for the first release build).
set -u
cd "$(dirname "$0")"
source lib/common.sh
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

ROUNDS=${ROUNDS:-2}
BENCH_SECONDS=${BENCH_SECONDS:-10}
PEERS=${PEERS:-"sluice-rec-off sluice-rec-on socat haproxy"}
DIRECT=${DIRECT:-1}
STREAMS=${STREAMS:-"1 8"}
ITER=${ITER:-10000}
SIZE=${SIZE:-64}
LAT_REPS=${LAT_REPS:-3}
CONNS=${CONNS:-5000}
HOLD=${HOLD:-5}
SKIP=${SKIP:-}
IPERF_TRIES=${IPERF_TRIES:-3}
IPERF_PORT=${IPERF_PORT:-15300}
ECHO_PORT=${ECHO_PORT:-15400}
DEFAULT_BIN=$REPO_DIR/.build-release/release/sluice
SLUICE_BIN=${SLUICE_BIN:-}
T_START=$SECONDS

# ---- prerequisites -------------------------------------------------------------
for c in socat haproxy iperf3 gcc ss python3 pgrep; do
    command -v "$c" >/dev/null || { log "missing $c: running setup.sh"; bash "$BENCH_DIR/setup.sh" || die "setup failed"; break; }
done
need socat haproxy iperf3 gcc ss python3
build_tools echo_server pingpong  # tlsload is http.sh's

if [ -z "$SLUICE_BIN" ]; then
    SLUICE_BIN=$DEFAULT_BIN
    if [ ! -x "$SLUICE_BIN" ] || [ "${REBUILD:-0}" = 1 ]; then
        log "building Sluice (release) into $REPO_DIR/.build-release - takes several minutes on 2 cores"
        "$REPO_DIR/scripts/build-release" "$REPO_DIR/.build-release" \
            > "$LOGS/swift-build.log" 2>&1 || { tail -20 "$LOGS/swift-build.log" >&2; die "release build failed (see $LOGS/swift-build.log)"; }
    fi
fi
[ -x "$SLUICE_BIN" ] || die "no Sluice binary at $SLUICE_BIN"
"$SLUICE_BIN" --help >/dev/null 2>&1 || die "$SLUICE_BIN --help failed"
raise_nofile
[ "$(ulimit -Sn)" -ge $((2 * CONNS + 200)) ] || log "WARN: ulimit -n $(ulimit -Sn) is too low for $CONNS proxied connections"

init_results
SNAP=$WORK/othercpu.snap
snap() { python3 "$LIB/othercpu.py" snap "$SNAP"; }
# other_cpu TEST VARIANT PEER: record the CPU of foreign processes since snap
other_cpu() {
    local r; r=$(python3 "$LIB/othercpu.py" diff "$SNAP" "$$")
    record "$1" "$2" "$3" other_cpu_cores "${r%% *}" cores
    echo "$(date -u +%FT%TZ) $1 $2 $3 other=${r}" >> "$WORK/background.log"
}

# ---- machine facts ---------------------------------------------------------------
{
    echo "date_utc=$(date -u +%FT%TZ)"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) (family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1), model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1), $(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo | head -1) MHz)"
    echo "kernel=$(uname -r)"
    echo "mem=$(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
    echo "tcp=cc $(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null), lo mtu $(cat /sys/class/net/lo/mtu 2>/dev/null), ulimit -n $(ulimit -Sn)"
    echo "sluice=$SLUICE_BIN (git $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO_DIR" status --porcelain -- Sources Package.swift 2>/dev/null | grep -q . && echo ', working tree modified'), built $(date -u -r "$SLUICE_BIN" +%FT%TZ))"
    echo "peers=$(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/socat \1/p' | head -1), $(haproxy -v 2>/dev/null | head -1 | awk '{print "haproxy", $3}'), $(iperf3 --version 2>/dev/null | head -1 | awk '{print $1, $2}')"
    echo "settings=ROUNDS=$ROUNDS BENCH_SECONDS=$BENCH_SECONDS STREAMS='$STREAMS' ITER=$ITER SIZE=$SIZE LAT_REPS=$LAT_REPS CONNS=$CONNS HOLD=$HOLD QUIET_MAX=$QUIET_MAX QUIET_WAIT=$QUIET_WAIT"
} > "$WORK/machine.txt"
sed 's/^/  /' "$WORK/machine.txt" >&2
: > "$WORK/background.log"

with_direct() { if [ "$DIRECT" = 1 ]; then echo "direct $PEERS"; else echo "$PEERS"; fi; }

# ---- 1. throughput ---------------------------------------------------------------
run_throughput() {
    local round=$1 peer n json c0 c1 t0 t1 gbps cli srv cores try
    for n in $STREAMS; do
        for peer in $(with_direct); do
            # A run that fails (e.g. the forwarder drops one of the -P 8
            # connections) is retried up to IPERF_TRIES times and counted.
            for ((try = 1; try <= IPERF_TRIES; try++)); do
                wait_quiet
                snap
                c0=$(cpu_s "${PID_OF[$peer]}"); t0=$(date +%s.%N)
                json=$(timeout $((BENCH_SECONDS + 60)) iperf3 -c 127.0.0.1 -p "${PORT_OF[$peer]}" -t "$BENCH_SECONDS" -P "$n" -J 2>&1)
                c1=$(cpu_s "${PID_OF[$peer]}"); t1=$(date +%s.%N)
                read -r gbps cli srv < <(echo "$json" | python3 "$LIB/parse_iperf.py")
                awk -v g="$gbps" 'BEGIN{exit !(g > 0)}' && break
                log "iperf3 failed via $peer (attempt $try/$IPERF_TRIES): $(echo "$json" | grep -m1 -i error | tr -s ' \t')"
                sleep 1
            done
            other_cpu tcp_throughput "P$n" "$peer"
            record tcp_throughput "P$n" "$peer" failed_attempts "$((try > IPERF_TRIES ? IPERF_TRIES : try - 1))" runs
            if ! awk -v g="$gbps" 'BEGIN{exit !(g > 0)}'; then sleep 1; continue; fi  # no figure for this round
            record tcp_throughput "P$n" "$peer" gbps "$gbps" Gbit/s
            record tcp_throughput "P$n" "$peer" bg_cpu_cores "$BG_BUSY" cores
            record tcp_throughput "P$n" "$peer" iperf_client_cpu_pct "$cli" "%"
            record tcp_throughput "P$n" "$peer" iperf_server_cpu_pct "$srv" "%"
            if [ -n "${PID_OF[$peer]}" ]; then
                cores=$(echo "$c0 $c1 $t0 $t1" | awk '{printf "%.2f", ($2-$1)/($4-$3)}')
                record tcp_throughput "P$n" "$peer" peer_cpu_cores "$cores" cores
                record tcp_throughput "P$n" "$peer" gbps_per_core "$(awk -v g="$gbps" -v c="$cores" 'BEGIN{printf "%.2f", (c>0)?g/c:0}')" Gbit/s/core
            fi
            sleep 1
        done
    done
}

# ---- 2. latency ------------------------------------------------------------------
run_latency() {
    local round=$1 rep peer r p50 p90 p99 p999 mean mn mx
    for ((rep = 1; rep <= LAT_REPS; rep++)); do
        wait_quiet
        for peer in $(with_direct); do
            snap
            r=$(timeout 60 "$BIN/pingpong" 127.0.0.1 "${LPORT_OF[$peer]}" "$ITER" "$SIZE") || { log "pingpong via $peer failed"; continue; }
            other_cpu tcp_latency "${SIZE}B" "$peer"
            read -r p50 p90 p99 p999 mean mn mx <<< "$r"
            record tcp_latency "${SIZE}B" "$peer" rtt_p50_us "$p50" us
            record tcp_latency "${SIZE}B" "$peer" rtt_p99_us "$p99" us
            record tcp_latency "${SIZE}B" "$peer" rtt_p999_us "$p999" us
            record tcp_latency "${SIZE}B" "$peer" rtt_mean_us "$mean" us
            record tcp_latency "${SIZE}B" "$peer" bg_cpu_cores "$BG_BUSY" cores
        done
    done
}

# ---- 3. idle connections ---------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
run_idle() {
    local round=$1 peer idle loaded res ready hc i v ok
    v="N$CONNS"
    for peer in $PEERS; do
        start_tcp_peer "$peer" 15450 "$ECHO_PORT"
        sleep 1
        wait_quiet
        idle=$(mem_of "$PEER_PID")
        snap
        ready=$WORK/holdconns.ready; rm -f "$ready"
        timeout $((HOLD + 150)) python3 "$LIB/holdconns.py" 127.0.0.1 "$PEER_PORT" "$CONNS" "$HOLD" "$ready" 200 90 \
            > "$WORK/holdconns.out" 2> "$LOGS/holdconns-$peer.log" &
        hc=$!
        for ((i = 0; i < 1200; i++)); do [ -s "$ready" ] && break; kill -0 "$hc" 2>/dev/null || break; sleep 0.1; done
        sleep 0.5
        loaded=$(mem_of "$PEER_PID")
        wait "$hc"
        other_cpu tcp_idle_conns "$v" "$peer"
        res=$(cat "$WORK/holdconns.out")
        log "$peer N=$CONNS idle[$idle] loaded[$loaded] client[$res]"
        ok=$(kv ok "$res"); ok=${ok:-0}
        record tcp_idle_conns "$v" "$peer" established "$ok" conns
        record tcp_idle_conns "$v" "$peer" alive_after_hold "$(kv alive_after_hold "$res")" conns
        record tcp_idle_conns "$v" "$peer" open_s "$(kv open_s "$res")" s
        record tcp_idle_conns "$v" "$peer" procs "$(kv procs "$loaded")" procs
        record tcp_idle_conns "$v" "$peer" threads "$(kv threads "$loaded")" threads
        record tcp_idle_conns "$v" "$peer" fds "$(kv fds "$loaded")" fds
        record tcp_idle_conns "$v" "$peer" idle_rss_MiB "$(mib "$(kv rss_kib "$idle")")" MiB
        record tcp_idle_conns "$v" "$peer" idle_pss_MiB "$(mib "$(kv pss_kib "$idle")")" MiB
        record tcp_idle_conns "$v" "$peer" rss_MiB "$(mib "$(kv rss_kib "$loaded")")" MiB
        record tcp_idle_conns "$v" "$peer" pss_MiB "$(mib "$(kv pss_kib "$loaded")")" MiB
        record tcp_idle_conns "$v" "$peer" pss_per_conn_KiB "$(awk -v a="$(kv pss_kib "$loaded")" -v b="$(kv pss_kib "$idle")" -v n="$ok" 'BEGIN{printf "%.2f", (n>0)?(a-b)/n:0}')" KiB
        record tcp_idle_conns "$v" "$peer" rss_per_conn_KiB "$(awk -v a="$(kv rss_kib "$loaded")" -v b="$(kv rss_kib "$idle")" -v n="$ok" 'BEGIN{printf "%.2f", (n>0)?(a-b)/n:0}')" KiB
        record tcp_idle_conns "$v" "$peer" bg_cpu_cores "$BG_BUSY" cores
        stop_pid "$PEER_PID"
        sleep 1
    done
}

skipped() { [[ " $SKIP " == *" $1 "* ]]; }

# ---- servers -----------------------------------------------------------------------
declare -A PORT_OF PID_OF LPORT_OF
if ! skipped throughput; then
    ensure_port_free "$IPERF_PORT"
    start_bg iperf3-server iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
    wait_listen "$IPERF_PORT" 10 "$LAST_PID" || die "iperf3 server did not start"
    lport=15301
    for peer in $(with_direct); do
        start_tcp_peer "$peer" "$lport" "$IPERF_PORT"
        PORT_OF[$peer]=$PEER_PORT; PID_OF[$peer]=$PEER_PID
        [ "$peer" = sluice-rec-on ] && REC_ON_DIR=$SLUICE_DIR
        lport=$((lport + 1))
    done
fi
ensure_port_free "$ECHO_PORT"
start_bg echo-server "$BIN/echo_server" "$ECHO_PORT"
wait_listen "$ECHO_PORT" 10 "$LAST_PID" || die "echo server did not start"
if ! skipped latency; then
    lport=15401
    for peer in $(with_direct); do
        start_tcp_peer "$peer" "$lport" "$ECHO_PORT"
        LPORT_OF[$peer]=$PEER_PORT
        lport=$((lport + 1))
    done
fi
log "peers up; $ROUNDS round(s)"

for ((round = 1; round <= ROUNDS; round++)); do
    log "=== round $round/$ROUNDS"
    skipped throughput || run_throughput "$round"
    skipped latency || run_latency "$round"
    skipped idle || run_idle "$round"
done

if ! skipped throughput; then
    for peer in $PEERS; do
        [ "$peer" = socat ] && continue  # socat's relays are per-connection children, gone by now
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID_OF[$peer]}/status" 2>/dev/null)
        [ -n "$hwm" ] && record tcp_throughput all "$peer" peak_rss_MiB "$(mib "$hwm")" MiB
    done
    if [[ " $PEERS " == *" sluice-rec-on "* ]]; then
        record tcp_throughput all sluice-rec-on store_MiB "$(du -sk "$REC_ON_DIR" | awk '{printf "%.0f", $1/1024}')" MiB
    fi
fi
stop_all
rm -rf "$WORK/data"

elapsed=$((SECONDS - T_START))
{
    echo "## Sluice vs socat vs haproxy - raw TCP forwarding on 127.0.0.1"
    echo
    echo "Run $RUN_ID, $(sed -n 's/^date_utc=//p' "$WORK/machine.txt"), took $((elapsed / 60)) min $((elapsed % 60)) s."
    echo
    sed 's/^\([a-z_]*\)=/- \1: /' "$WORK/machine.txt"
    echo
    python3 "$LIB/summarize.py" "$RESULTS" "$RUN_ID"
    [ "${NOT_QUIET:-0}" -gt 0 ] && echo "- $NOT_QUIET step(s) started although the machine was not quiet after ${QUIET_WAIT} s (see bg figures above)"
    echo
    echo "Raw rows: $RESULTS; logs: $LOGS; per-step background: $WORK/background.log"
} | tee "$WORK/summary.md"
