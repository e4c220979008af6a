#!/usr/bin/env bash
# bench/lib/https_native.sh - new HTTPS connections per second with the native
# client lib/tlsload.c, direct to nginx and through each proxy, in one run.
# bench/http.sh runs it after the reference harness's 05_https_mitm.sh and
# reads its rows (test "https_native"); it follows the harness's conventions
# and reuses its lib/common.sh (nginx origin, explicit-proxy peers, noise
# guard, CSV rows), so it takes the same environment: PEERS, PROXY_CMD,
# PROXY_CA, PROXY_NAME, PROXY_PORT, RESULTS, RUN_ID, BENCH_WORK, plus
# SHARED_BENCH (the harness's directory).
#
# Why: tlsload.py (05's py-seq/py-c10) spends more CPU per handshake than the
# proxies do, so on 2 cores it, not the proxy, sets those figures. The C
# client does the same work per request (TCP connect, CONNECT through a proxy,
# full TLS handshake with SNI verified against the CA, GET with Connection:
# close, whole response checked, close) for a fraction of the CPU.
#
# Origin: the harness's nginx on https://localhost:18443 (RSA-2048
# self-signed, 1 worker). Peers (PEERS, e.g. "direct sluice mitm"):
#   direct   tlsload -> nginx, trusting the origin's certificate
#   mitm     tlsload -x mitmdump --mode regular --ssl-insecure, trusting its CA
#   sluice   tlsload -x $PROXY_CMD on $PROXY_PORT, trusting $PROXY_CA
#            (the name is $PROXY_NAME; see the harness's common.sh)
# Workloads, per peer, one after the other on the same started peer:
#   native-seq   one thread: a new connection per request, one at a time
#   native-cN    N threads (NATIVE_CONC, default "1 10": seq and c10)
# each NATIVE_SECONDS long (default $DURATION, else 10) after NATIVE_WARMUP
# (20) uncounted connections (a proxy forges its leaf certificate there).
# Records per workload: rps (successful new connections/s), ok, fail,
# p50_ms/p99_ms per request, tls_p50_ms, connect_p50_ms, and the CPU cores of
# the proxy, of nginx and of the client (all share the machine's cores). Peers alternate their order between reps.
# Time: about (2 x NATIVE_SECONDS + 5 s) per peer per rep, plus wait_quiet.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${SHARED_BENCH:-}" ] || { echo "https_native.sh: set SHARED_BENCH to the reference harness" >&2; exit 1; }
source "$SHARED_BENCH/lib/common.sh"
need nginx gcc
PEERS=$(default_peers direct mitm)
REPS=${REPS:-1}
NATIVE_SECONDS=${NATIVE_SECONDS:-${DURATION:-10}}
NATIVE_CONC=${NATIVE_CONC:-"1 10"}
NATIVE_WARMUP=${NATIVE_WARMUP:-20}
NATIVE_PATH=${NATIVE_PATH:-/1k.bin}
URL="https://localhost:$NGINX_TLS_PORT$NATIVE_PATH"

# The client is built by bench/lib/common.sh's build_tools, the rule bench/setup.sh uses, into this run's $BIN.
# A subshell, because that file defines the same helper names as the harness's.
( export BENCH_WORK=$WORK; source "$HERE/common.sh"; build_tools tlsload ) \
    || die "cannot build tlsload (libssl-dev missing? bash bench/setup.sh installs it)"
TLSLOAD=$BIN/tlsload
raise_nofile
start_nginx

variant_of() { if [ "$1" = 1 ]; then echo native-seq; else echo "native-c$1"; fi; }
reversed() { echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; }
cores() { echo "$1 $2 $3 $4" | awk '{printf "%.2f", ($4 > $3) ? ($2 - $1) / ($4 - $3) : 0}'; }

for ((rep = 1; rep <= REPS; rep++)); do
    # the second rep runs the peers backwards, so no peer always runs on the warmest (or busiest) machine
    order=$PEERS; [ $((rep % 2)) = 0 ] && order=$(reversed $PEERS)
    for peer in $order; do
        label=$(peer_label "$peer")
        wait_quiet
        record https_native all "$label" bg_cpu_cores "$BG_BUSY" cores
        start_explicit_peer "$peer" 15401
        trust=(-C "$PEER_CA")
        if [ -z "$PEER_CA" ]; then trust=(-k); log "WARN: no CA for $label: tlsload runs with -k (no verification)"; fi
        for conc in $NATIVE_CONC; do
            v=$(variant_of "$conc")
            err=$LOGS/tlsload-$label-$v.err
            c0=$(cpu_s "$PEER_PID"); n0=$(cpu_s "$NGINX_PID"); t0=$(date +%s.%N)
            # -t bounds the timed run, timeout(1) the whole process (warm-up included)
            r=$(timeout $((NATIVE_SECONDS + 90)) "$TLSLOAD" ${PEER_PORT:+-x "127.0.0.1:$PEER_PORT"} -c "$conc" \
                -d "$NATIVE_SECONDS" -t $((NATIVE_SECONDS + 30)) -w "$NATIVE_WARMUP" "${trust[@]}" "$URL" 2> "$err")
            c1=$(cpu_s "$PEER_PID"); n1=$(cpu_s "$NGINX_PID"); t1=$(date +%s.%N)
            log "$label $v: ${r:-no output}"
            [ -s "$err" ] && sed 's/^/    /' "$err" >&2
            if [ -z "$(kv rps "$r")" ]; then log "WARN: tlsload gave no figures through $label ($v)"; continue; fi
            record https_native "$v" "$label" rps "$(kv rps "$r")" conn/s
            record https_native "$v" "$label" ok "$(kv ok "$r")" req
            record https_native "$v" "$label" fail "$(kv fail "$r")" req
            record https_native "$v" "$label" p50_ms "$(kv p50_ms "$r")" ms
            record https_native "$v" "$label" p99_ms "$(kv p99_ms "$r")" ms
            record https_native "$v" "$label" tls_p50_ms "$(kv tls_p50_ms "$r")" ms
            record https_native "$v" "$label" connect_p50_ms "$(kv connect_p50_ms "$r")" ms
            [ -n "$PEER_PID" ] && record https_native "$v" "$label" peer_cpu_cores "$(cores "$c0" "$c1" "$t0" "$t1")" cores
            record https_native "$v" "$label" nginx_cpu_cores "$(cores "$n0" "$n1" "$t0" "$t1")" cores
            record https_native "$v" "$label" client_cpu_cores "$(kv cpu_cores "$r")" cores
        done
        [ -n "$PEER_PID" ] && stop_pid "$PEER_PID"
        sleep 1
    done
done
log "done"
