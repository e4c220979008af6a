#!/usr/bin/env bash
# bench/setup.sh - install the benchmark peers and tools from Debian when they
# are missing (needs root for apt-get), then build the small C helpers.
# Idempotent; ~30 s the first time, instant afterwards.
#   Debian: socat haproxy iperf3 gcc libssl-dev procps iproute2 python3
#   (libssl-dev: lib/tlsload.c, the HTTPS client of bench/http.sh)
set -eu
cd "$(dirname "$0")"
source lib/common.sh
trap - EXIT
pkgs="socat haproxy iperf3 gcc libc6-dev libssl-dev procps iproute2 python3"
missing=
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    log "installing:$missing"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install$missing"
    apt-get update -q
    # iperf3's postinst asks whether to start a daemon; answer no.
    echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
build_tools
log "setup done: $(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/socat \1/p' | head -1), $(haproxy -v 2>/dev/null | head -1 | awk '{print "haproxy", $3}'), $(iperf3 --version 2>/dev/null | head -1 | awk '{print $1, $2}')"
