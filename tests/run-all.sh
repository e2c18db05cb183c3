#!/usr/bin/env bash
# Every test: installs what the builds need, then the whole suite on the host
# (Debug), under AddressSanitizer + UBSan, and cross-built for an aarch64
# terminal under qemu-user. Stops at the first failure. (armhf has its own
# preset: `toolchains/install-deps.sh armhf && cmake --workflow --preset armhf`.)
set -euo pipefail
cd "$(dirname "$0")/.."

toolchains/install-deps.sh host aarch64

for preset in dev asan aarch64; do
	echo "=== $preset"
	start=$SECONDS
	cmake --workflow --preset "$preset"
	echo "=== $preset: passed in $((SECONDS - start)) s"
done
