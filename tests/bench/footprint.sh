#!/usr/bin/env bash
# The terminal's footprint, measured: the size of libloyalty.so stripped
# (code + data, without SQLite and mbedTLS, which it links dynamically) on
# x86-64 and on aarch64, against the goal of 1.5 MB on a terminal; and the
# largest resident memory of any loyalty-terminal process through the
# store-day demo (the till's `run` loop included), against 16 MB.
#   tests/bench/footprint.sh        (run by tests/bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
goal_kb=1536
out=build/bench-data/footprint
mkdir -p "$out"

lib_size() { # NAME SIZE_TOOL STRIP_TOOL LIB
	cp "$4" "$out/$1.so"
	"$3" --strip-unneeded "$out/$1.so"
	read -r text data _ < <("$2" "$out/$1.so" | awk 'NR == 2 { print $1, $2, $3 }')
	local kb=$(((text + data + 1023) / 1024))
	printf '  libloyalty.so %-8s text %8d  data %6d  = %5d KiB  (goal <= %d KiB: %s of it)\n' "$1" "$text" "$data" \
		"$kb" "$goal_kb" "$(awk -v a="$kb" -v b="$goal_kb" 'BEGIN { printf "%.2f", a / b }')"
}

cmake --preset release >/dev/null
cmake --build --preset release --target loyalty_shared loyalty-terminal loyalty-central >/dev/null
echo "footprint:"
lib_size x86-64 size strip build/release/api/libloyalty.so
if command -v aarch64-linux-gnu-g++ >/dev/null; then
	cmake --preset aarch64 >/dev/null
	cmake --build --preset aarch64 --target loyalty_shared >/dev/null
	lib_size aarch64 aarch64-linux-gnu-size aarch64-linux-gnu-strip build/aarch64/api/libloyalty.so
else
	echo "  aarch64: no cross compiler (toolchains/install-deps.sh aarch64)"
fi

# Every loyalty-terminal the demo starts runs under a wrapper that notes its
# peak resident set (getrusage of the child), the till's long `run` too.
wrapper="$out/peak-rss.py"
cat >"$wrapper" <<'PY'
import os, resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
for sig in (signal.SIGTERM, signal.SIGINT):  # the demo stops a till so: pass it on
    signal.signal(sig, lambda n, f: child.send_signal(n))
rc = child.wait()
if os.path.basename(sys.argv[1]) == "loyalty-terminal":
    with open(os.environ["LOYALTY_PEAK_RSS_FILE"], "a") as f:
        f.write("%d %s\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, " ".join(sys.argv[3:5])))
sys.exit(rc)
PY
rm -f "$out/peak-rss.txt"
LOYALTY_EMULATOR="python3,$wrapper" LOYALTY_PEAK_RSS_FILE="$out/peak-rss.txt" \
	python3 examples/store-day/store_day.py build/release >"$out/store-day.log" 2>&1
read -r peak what < <(sort -n "$out/peak-rss.txt" | tail -1)
runs=$(wc -l <"$out/peak-rss.txt")
printf '  loyalty-terminal peak RSS through the store-day demo: %d KiB over %d processes, the largest %s\n' \
	"$peak" "$runs" "($what)"
printf '  (goal <= 16384 KiB: %s of it)\n' "$(awk -v a="$peak" 'BEGIN { printf "%.2f", a / 16384 }')"
