#!/usr/bin/env bash
# The date-sensitive tests (label "date": the CLI and end-to-end scripts)
# again with both programs' clock set to other days, so that no expectation
# holds only on the day the suite runs. Each day is reached by one clock
# offset (LOYALTY_CLOCK_OFFSET_S, base/cli.hpp) shared by every program the
# tests start and by the scripts' own "now" (tests/support/program_clock.py);
# the system clock is not touched, so timers, sleeps and certificates behave
# as on any run.
#
#   tests/run-dates.sh [TEST_PRESET]     # default: dev (built already)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-dev}

# Local times in Europe/Budapest, the zone the tests' terminals use.
days=(
	"2026-12-29T12:00:00+01:00" # a Tuesday inside the example's double-tuesday window
	"2027-01-01T00:00:30+01:00" # New Year: a month and a year end, the example window just over
	"2028-02-29T00:30:00+01:00" # a leap day, still the 28th in UTC
	"2027-03-28T01:59:00+01:00" # the spring DST change: 02:00 CET becomes 03:00 CEST mid-run
)

for day in "${days[@]}"; do
	offset=$(($(date -d "$day" +%s) - $(date +%s)))
	echo "=== dates: the programs' clock at $day (offset $offset s)"
	LOYALTY_CLOCK_OFFSET_S=$offset ctest --preset "$preset" -L date
done
