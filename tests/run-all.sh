#!/usr/bin/env bash
# Every test: installs what the builds need, then the whole suite on the host
# (Debug), the date-sensitive tests again on other days (tests/run-dates.sh),
# every fuzz target over its seeds and for 10 s (tests/fuzz/run.sh), the
# suite under AddressSanitizer + UBSan, and cross-built for aarch64 and
# armhf terminals under qemu-user; the dashboard in Chromium runs with the
# host's suites. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchains/install-deps.sh host aarch64 armhf fuzz browser

stage() {
	echo "=== $1"
	local start=$SECONDS
	"${@:2}"
	echo "=== $1: passed in $((SECONDS - start)) s"
}

stage dev cmake --workflow --preset dev
stage dates tests/run-dates.sh dev
stage fuzz tests/fuzz/run.sh
for preset in asan aarch64 armhf; do
	stage "$preset" cmake --workflow --preset "$preset"
done
