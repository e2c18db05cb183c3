#!/usr/bin/env bash
# The engine on its own: installs what the build needs, builds the release library and
# the engine demo, and runs the example program over the example baskets.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchains/install-deps.sh host
cmake --preset release >/dev/null
cmake --build --preset release --target loyalty-engine-demo

demo=build/release/examples/loyalty-engine-demo
program=examples/programs/cafe-rewards.json
b=examples/baskets
echo
echo "Program: $program (cafe-rewards v7, EUR)"
echo

run() { "$demo" "$program" "$@" || echo "  (exit $?: declined or refused, as expected)"; echo; }

run $b/tuesday-coffee.json --title "Tuesday, a card never seen: lowest tier, tobacco and the bag earn nothing"
run $b/tuesday-coffee.json --spend 25000 --balance 400 --redeem 100 --refund CRS-02=1 \
	--title "Same basket, Silver member redeems 100 points, then returns one croissant"
run $b/saturday-big.json --spend 60000 --balance 900 --reward free-coffee --refund all \
	--title "Saturday, Gold member takes a free coffee, then returns everything"
run $b/discounted-only.json --balance 250 \
	--title "Fully discounted croissants earn nothing; the coffee does"
run $b/discounted-only.json --balance 50 --redeem 100 \
	--title "Redeeming more points than the member has is declined"
run $b/tuesday-coffee.json --spend 25000 --balance 5000 --redeem 701 \
	--title "Redeeming more than max_pct (50%) of EUR 14.00 eligible spend is declined"
