#!/usr/bin/env bash
# SSH through Sluice vs direct to the same sshd, in one run: scp and sftp transfers, login round trips, idle sessions.
# Knobs: SIZE_MIB (256), ROUNDS (2), RTT_RUNS (20), IDLE_SESSIONS (100), IDLE_SECONDS (30), SLUICE_BIN.
# Builds the release binary (.build-release) when missing. Run as root. About 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup --test >/dev/null
if [ -z "${SLUICE_BIN:-}" ] && [ ! -x .build-release/release/sluice ]; then
    scripts/build-release .build-release >/dev/null
fi
exec python3 bench/lib/ssh_bench.py
