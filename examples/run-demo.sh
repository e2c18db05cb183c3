#!/usr/bin/env bash
# The main job: installs what the build needs, builds the two programs
# (release), and runs the store-day demo: a central server on loopback with a
# test PKI, two terminals in two stores running the cashier loop on simulated
# devices, a link cut for part of the day, syncs on reconnect and at night,
# then the central report and each terminal's status. Its data lives in a
# temporary dir, removed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

toolchains/install-deps.sh host
cmake --preset release >/dev/null
cmake --build --preset release --target loyalty-terminal loyalty-central
exec python3 examples/store-day/store_day.py build/release
