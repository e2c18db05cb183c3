#!/usr/bin/env bash
# Builds the release preset and runs the benchmarks, printing figures and
# ratios. Data goes to build/bench-data (the same file system as the build).
#   tests/bench/run.sh [--large N]     (checkout: default 1,000,000 entries)
set -euo pipefail
cd "$(dirname "$0")/../.."
toolchains/install-deps.sh host
cmake --preset release >/dev/null
cmake --build --preset release --target bench_checkout bench_sync bench_till loyalty-central
build/release/tests/bench/bench_checkout --program examples/programs/cafe-rewards.json \
	--dir build/bench-data "$@"
echo
# The sync benchmark on SQLite and on a PostgreSQL 15 of its own, fsync on.
tests/support/postgresql.py --durable -- sh -c 'exec build/release/tests/bench/bench_sync \
	--program examples/programs/cafe-rewards.json --central build/release/central/loyalty-central \
	--dir build/bench-data --database "$LOYALTY_TEST_POSTGRESQL"' 
echo
build/release/tests/bench/bench_till --program examples/programs/cafe-rewards.json \
	--dir build/bench-data
echo
tests/bench/footprint.sh
