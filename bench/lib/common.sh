# bench/lib/common.sh - shared helpers for bench/run.sh and bench/setup.sh.
# Adapted from the reference harness (/work/shared/bench/lib/common.sh).
#
# Conventions
#   * Everything runs on 127.0.0.1 only. Every load step is bounded in time.
#   * Servers are started with start_bg (own process group via setsid) and
#     stopped by PID (the whole group) in stop_pid / stop_all; an EXIT trap
#     runs stop_all.
#   * Results are CSV rows (run_id,utc,test,variant,peer,metric,value,unit)
#     in $RESULTS; lib/summarize.py turns them into the Markdown table.
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB=$BENCH_DIR/lib
WORK=${BENCH_WORK:-/tmp/sluice-bench}
BIN=$WORK/bin
LOGS=$WORK/logs
RESULTS=${RESULTS:-$WORK/results.csv}
RUN_ID=${RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-$$}
UPSTREAM_HOST=127.0.0.1
STARTED_PIDS=()
LAST_PID=
mkdir -p "$BIN" "$LOGS"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The hard fd limit on the reference box is 20000 and cannot be raised; a
# single-process relay needs 2 fds per connection, so 5,000 conns fit.
raise_nofile() {
    ulimit -Hn 65536 2>/dev/null || true
    ulimit -Sn 65536 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
}

# build_tools [NAME...]: builds lib/NAME.c into $BIN/NAME when missing or older
# than its source (default: all of them). tlsload needs OpenSSL (libssl-dev).
build_tools() {
    local p libs
    for p in ${@:-echo_server pingpong tlsload}; do
        libs=
        [ "$p" = tlsload ] && libs="-lssl -lcrypto -lpthread"
        if [ ! -x "$BIN/$p" ] || [ "$LIB/$p.c" -nt "$BIN/$p" ]; then
            gcc -O2 -Wall -o "$BIN/$p" "$LIB/$p.c" $libs || die "cannot build $p"
        fi
    done
}

need() { local c; for c in "$@"; do command -v "$c" >/dev/null || [ -x "$c" ] || die "missing $c (run bash bench/setup.sh)"; done; }

init_results() {
    if [ -s "$RESULTS" ]; then mv -f "$RESULTS" "${RESULTS%.csv}.prev.csv"; fi
    echo "run_id,utc,test,variant,peer,metric,value,unit" > "$RESULTS"
}

record() {  # record TEST VARIANT PEER METRIC VALUE UNIT
    echo "$RUN_ID,$(date -u +%FT%TZ),$1,$2,$3,$4,$5,$6" >> "$RESULTS"
    log "  $1 $2 $3 $4=$5 $6"
}

port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

wait_listen() {  # wait_listen PORT [TIMEOUT_S=20] [PID]
    local port=$1 t=${2:-20} pid=${3:-} i
    for ((i = 0; i < t * 10; i++)); do
        port_listening "$port" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# start_bg NAME CMD...  -> starts CMD in its own process group (setsid), logs
# to $LOGS/NAME.log, sets LAST_PID, remembers the PID for stop_all.
start_bg() {
    local name=$1; shift
    setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

stop_pid() {  # stop_pid PID: TERM the process group, then KILL after 5 s
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # stragglers left in the group (socat's fork-per-connection children)
    for ((i = 0; i < 20; i++)); do pgrep -g "$pid" >/dev/null 2>&1 || break; kill -KILL -- "-$pid" 2>/dev/null; sleep 0.1; done
}

stop_all() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
    STARTED_PIDS=()
}

ensure_port_free() { port_listening "$1" && die "port $1 already in use"; return 0; }

cpu_s() { [ -n "${1:-}" ] && python3 "$LIB/proctree.py" cpu "$1" || echo 0; }
mem_of() { python3 "$LIB/proctree.py" mem "$1"; }
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }  # kv KEY "k=v k=v"

# ---- TCP forwarders -----------------------------------------------------------
# start_tcp_peer PEER LISTEN_PORT UPSTREAM_PORT -> sets PEER_PORT (where the
# client connects) and PEER_PID (process to account CPU/memory to; empty for
# direct). Sluice peers get a fresh data dir $WORK/data/rec-{on,off}-LPORT
# (SLUICE_DIR is set to it).
start_tcp_peer() {
    local peer=$1 lport=$2 uport=$3
    PEER_PID=
    PEER_PORT=$lport
    case "$peer" in
    direct) PEER_PORT=$uport; return 0 ;;
    socat)
        ensure_port_free "$lport"
        start_bg socat socat "TCP-LISTEN:$lport,bind=127.0.0.1,fork,reuseaddr,backlog=4096" "TCP:127.0.0.1:$uport" ;;
    haproxy)
        ensure_port_free "$lport"
        cat > "$WORK/haproxy-tcp.cfg" <<CFG
global
    maxconn 9000
${HAPROXY_NBTHREAD:+    nbthread $HAPROXY_NBTHREAD}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend fwd
    bind 127.0.0.1:$lport
    maxconn 9000
    default_backend up
backend up
    server s1 127.0.0.1:$uport maxconn 9000
CFG
        start_bg haproxy haproxy -db -f "$WORK/haproxy-tcp.cfg" ;;
    sluice-rec-off|sluice-rec-on)
        ensure_port_free "$lport"
        # one fresh data dir per started process (never shared between two)
        local dir=$WORK/data/${peer#sluice-}-$lport norec=
        [ "$peer" = sluice-rec-off ] && norec=--no-record
        rm -rf "$dir"; mkdir -p "$dir"; SLUICE_DIR=$dir
        # exec'd directly: the PID we measure is Sluice itself
        start_bg "$peer" "$SLUICE_BIN" --headless -q $norec --data-dir "$dir" \
            --listen "tcp://127.0.0.1:${lport}=>127.0.0.1:${uport}" ;;
    *) die "unknown peer $peer" ;;
    esac
    PEER_PID=$LAST_PID
    wait_listen "$PEER_PORT" 30 "$PEER_PID" || die "$peer did not listen on $PEER_PORT (see $LOGS/$peer.log)"
}

# ---- noise guard --------------------------------------------------------------
# wait_quiet: the machine may be shared. Before a measurement wait (at most
# QUIET_WAIT s) until the whole machine's CPU busy over 1 s, with our own
# servers idle, is below QUIET_MAX cores. Sets BG_BUSY (cores) to the last
# sample; logs a warning when it never got quiet.
QUIET_WAIT=${QUIET_WAIT:-30}
QUIET_MAX=${QUIET_MAX:-0.15}
cpu_busy_cores() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat); sleep 1
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    echo "$a $b $(nproc)" | awk '{busy=$3-$1; idle=$4-$2; printf "%.2f", (busy+idle>0)?busy/(busy+idle)*$5:0}'
}
wait_quiet() {
    local t0=$SECONDS
    while :; do
        BG_BUSY=$(cpu_busy_cores)
        awk -v b="$BG_BUSY" -v m="$QUIET_MAX" 'BEGIN{exit !(b < m)}' && return 0
        if ((SECONDS - t0 >= QUIET_WAIT)); then
            log "WARN: machine not quiet (${BG_BUSY} cores busy before the run); measuring anyway"
            NOT_QUIET=$((${NOT_QUIET:-0} + 1))
            return 0
        fi
        sleep 2
    done
}

# busy_during START_STAT -> cores busy machine-wide since the /proc/stat
# snapshot START_STAT (from stat_snap); used to log total load of a step.
stat_snap() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; }
busy_since() {
    local b; b=$(stat_snap)
    echo "$1 $b $(nproc)" | awk '{busy=$3-$1; idle=$4-$2; printf "%.2f", (busy+idle>0)?busy/(busy+idle)*$5:0}'
}
