#!/usr/bin/env bash
# Databases through Sluice (recording on) beside haproxy in TCP mode and pgbouncer, in one run: pgbench -S and MariaDB point selects (mysqlslap)
# transactions per second, medians and ratios (bar: Sluice >= 0.8x haproxy). See bench/lib/sql_bench.py.
# Knobs: ROUNDS (3), SECONDS_PER_RUN (15), CLIENTS (8), SCALE (10), MODES ("simple prepared"), MYSQL_QUERIES (200000),
# SLUICE_BIN, SLUICE_ARGS.
# Builds the release binary (.build-release) when missing. Run as root. About 8 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup --test >/dev/null
if [ -z "${SLUICE_BIN:-}" ] && [ ! -x .build-release/release/sluice ]; then
    scripts/build-release .build-release >/dev/null
fi
exec python3 bench/lib/sql_bench.py
