#!/usr/bin/env bash
# Builds the fuzz preset (clang-14, ASan + UBSan, libFuzzer) and runs every
# target of tests/fuzz: first over its seeds in corpus/, then for a bounded
# time or number of runs. Inputs found along the way go to
# build/fuzz/corpus/<target> (kept between runs, never into the sources);
# a crash, a leak or a timeout stops the script with the input saved in
# build/fuzz/crashes/.
#
#   tests/fuzz/run.sh                 # 10 s each (CI)
#   tests/fuzz/run.sh --seconds 60    # longer
#   tests/fuzz/run.sh --runs 10000000 # the README's long run (hours)
set -euo pipefail
cd "$(dirname "$0")/../.."

limit=(-max_total_time=10)
case "${1:-}" in
--seconds) limit=(-max_total_time="$2") ;;
--runs) limit=(-runs="$2") ;;
"") ;;
*)
	echo "usage: tests/fuzz/run.sh [--seconds N | --runs N]" >&2
	exit 2
	;;
esac

# The targets that keep a store or a ledger write it to a tmpfs when there
# is one: fsync costs nothing there, so more inputs run in the time.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_all
out=build/fuzz
mkdir -p "$out/crashes"
for seeds in tests/fuzz/corpus/*/; do
	t=$(basename "$seeds")
	mkdir -p "$out/corpus/$t"
	start=$SECONDS
	log="$out/fuzz_$t.log"
	# One process, no fork: a crash ends the run at once with its input.
	if ! "$out/tests/fuzz/fuzz_$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$out/crashes/$t-" \
		"$out/corpus/$t" "$seeds" >"$log" 2>&1; then
		tail -40 "$log"
		echo "fuzz: $t FAILED (log $log, input in $out/crashes/)"
		exit 1
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	echo "fuzz: $t ok: ${runs:-?} runs in $((SECONDS - start)) s, peak RSS ${peak:-?} MB, corpus $(ls "$out/corpus/$t" | wc -l) inputs"
done
