#!/usr/bin/env bash
# bench/http_floor.sh - where Sluice's HTTP reverse proxy spends its time, against
# haproxy and two floors, in one run: the same wrk load as bench/http.sh's 1 KiB
# step (wrk -t2 -c50 -d10s --latency, keep-alive, nginx with 1 worker as the
# origin) through
#   haproxy          mode http, http-reuse safe (the harness's configuration)
#   nioproxy         bench/lib/nioproxy: a bare SwiftNIO HTTP/1 reverse proxy,
#                    parts relayed as NIOHTTP1 decodes them, nothing else
#   sluice           reverse+http, recording everything (the default)
#   sluice-meta      the same with --no-record: flows, exchanges and headers
#                    recorded, bodies only counted
#   sluice-tcp       Sluice's raw TCP relay (tcp://), recording every chunk
# It prints req/s, p99, the proxy's CPU per request (its process tree, from
# /proc) and each figure's ratio to haproxy's, as medians over ROUNDS rounds with
# the peers interleaved. The gap between nioproxy and sluice is Sluice's own
# work per exchange; the gap between sluice-meta and sluice is recording bodies.
#
# Knobs (env): ROUNDS=2 DURATION=10 FILE=1k PEERS="haproxy nioproxy sluice
#   sluice-meta sluice-tcp" SLUICE_BIN=path (default .build-release/release/
#   sluice, built when missing) BENCH_WORK=/tmp/sluice-floor QUIET_WAIT QUIET_MAX
# Ports: 18180 (nginx), 15990-15994 (peers). Time: ~1 min per peer and round,
# plus ~3 min the first time to build nioproxy (release).
set -u
export BENCH_WORK=${BENCH_WORK:-/tmp/sluice-floor}
source "$(dirname "$0")/lib/common.sh"
trap stop_all EXIT
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
FILE=${FILE:-1k}
PEERS=${PEERS:-"haproxy nioproxy sluice sluice-meta sluice-tcp"}
NGINX_PORT=18180
need wrk haproxy nginx python3 ss

# ---- binaries -------------------------------------------------------------------------
SLUICE_BIN=${SLUICE_BIN:-$REPO_DIR/.build-release/release/sluice}
if [ ! -x "$SLUICE_BIN" ]; then
    log "building Sluice (release) into $REPO_DIR/.build-release"
    "$REPO_DIR/scripts/build-release" "$REPO_DIR/.build-release" \
        > "$LOGS/sluice-build.log" 2>&1 || die "release build failed (see $LOGS/sluice-build.log)"
fi
NIOPROXY=$WORK/nioproxy-build/release/nioproxy
if [ ! -x "$NIOPROXY" ]; then
    log "building bench/lib/nioproxy (release)"
    swift build -c release --package-path "$LIB/nioproxy" --scratch-path "$WORK/nioproxy-build" \
        > "$LOGS/nioproxy-build.log" 2>&1 || die "nioproxy build failed (see $LOGS/nioproxy-build.log)"
fi

# ---- origin ---------------------------------------------------------------------------
mkdir -p "$WORK/www" "$WORK/nginx/logs"
[ -s "$WORK/www/1k.bin" ] || head -c 1024 /dev/urandom > "$WORK/www/1k.bin"
[ -s "$WORK/www/100k.bin" ] || head -c 102400 /dev/urandom > "$WORK/www/100k.bin"
chmod 755 "$WORK" "$WORK/www"; chmod 644 "$WORK"/www/*
cat > "$WORK/nginx/nginx.conf" <<CFG
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 60s;
    default_type application/octet-stream;
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CFG
ensure_port_free "$NGINX_PORT"
start_bg nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g "daemon off;"
wait_listen "$NGINX_PORT" 10 "$LAST_PID" || die "nginx did not start"

# ---- peers ----------------------------------------------------------------------------
start_peer() {  # start_peer NAME -> PEER_PID, PEER_PORT
    local name=$1 data=$WORK/data-$1
    rm -rf "$data"
    case "$name" in
    haproxy)
        PEER_PORT=15990
        cat > "$WORK/haproxy.cfg" <<CFG
global
    maxconn 9000
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:$PEER_PORT
    default_backend origin
backend origin
    http-reuse safe
    server s1 127.0.0.1:$NGINX_PORT
CFG
        start_bg haproxy haproxy -db -f "$WORK/haproxy.cfg" ;;
    nioproxy) PEER_PORT=15991; start_bg nioproxy "$NIOPROXY" "$PEER_PORT" 127.0.0.1 "$NGINX_PORT" ;;
    sluice) PEER_PORT=15992
        start_bg sluice "$SLUICE_BIN" --headless -q --data-dir "$data" \
            --listen "reverse+http://127.0.0.1:$PEER_PORT=>http://127.0.0.1:$NGINX_PORT" ;;
    sluice-meta) PEER_PORT=15993
        start_bg sluice-meta "$SLUICE_BIN" --headless -q --no-record --data-dir "$data" \
            --listen "reverse+http://127.0.0.1:$PEER_PORT=>http://127.0.0.1:$NGINX_PORT" ;;
    sluice-tcp) PEER_PORT=15994
        start_bg sluice-tcp "$SLUICE_BIN" --headless -q --data-dir "$data" \
            --listen "tcp://127.0.0.1:$PEER_PORT=>127.0.0.1:$NGINX_PORT" ;;
    *) die "unknown peer $name" ;;
    esac
    PEER_PID=$LAST_PID
    wait_listen "$PEER_PORT" 20 "$PEER_PID" || die "$name did not start (see $LOGS/$name.log)"
}

ROWS=$WORK/floor-rows.txt
: > "$ROWS"
for round in $(seq "$ROUNDS"); do
    for peer in $PEERS; do
        start_peer "$peer"
        url=http://127.0.0.1:$PEER_PORT/$FILE.bin
        timeout 20 wrk -t2 -c10 -d2s "$url" > /dev/null 2>&1
        wait_quiet
        c0=$(cpu_s "$PEER_PID")
        out=$(timeout $((DURATION + 30)) wrk -t2 -c50 -d"${DURATION}s" --latency "$url" 2>&1)
        c1=$(cpu_s "$PEER_PID")
        stop_pid "$PEER_PID"
        rm -rf "$WORK/data-$peer"
        requests=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
        p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
        errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
        cpu_us=$(echo "$c0 $c1 ${requests:-0}" | awk '{printf "%.1f", ($3 > 0) ? ($2 - $1) * 1e6 / $3 : 0}')
        echo "$peer $rps $p99 $cpu_us $BG_BUSY" >> "$ROWS"
        log "round $round $peer: ${rps:-?} req/s, p99 ${p99:-?}, ${cpu_us} µs CPU/request, background ${BG_BUSY} cores ${errors}"
    done
done

# ---- table: medians, ratios to haproxy ------------------------------------------------
python3 - "$ROWS" "$PEERS" "$FILE" <<'PY'
import statistics, sys
rows, peers, file = sys.argv[1], sys.argv[2].split(), sys.argv[3]
def milliseconds(text):  # wrk's latency: 850.00us, 4.87ms, 1.21s
    for suffix, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)
data = {}
for line in open(rows):
    peer, rps, p99, cpu, bg = line.split()
    data.setdefault(peer, []).append((float(rps), milliseconds(p99), float(cpu)))
def median(peer, i):
    return statistics.median(r[i] for r in data[peer])
base = median("haproxy", 0) if "haproxy" in data else None
print(f"\n## HTTP reverse proxy floor, {file}, wrk -t2 -c50 (medians of {len(data[peers[0]])} rounds)\n")
print("| peer | req/s | ÷ haproxy | p99 ms | proxy CPU µs/request |")
print("|---|---|---|---|---|")
for peer in peers:
    if peer not in data:
        continue
    rps = median(peer, 0)
    ratio = f"{rps / base:.2f}" if base else "–"
    print(f"| {peer} | {rps:,.0f} | {ratio} | {median(peer, 1):.2f} | {median(peer, 2):.1f} |")
PY
