#!/bin/sh
# The layering of the README's table, checked on a folder's objects: every
# project symbol they use is defined by their own objects or by those of the
# folders they may stand on. base/ stands on nothing of the project; hal/ on
# base/ alone (so hal and storage do not depend on each other).
#
#   check_objects.sh NM OBJECT[,OBJECT...] [BELOW_OBJECT[,BELOW_OBJECT...]]
#
# Names in namespace loy (C++) or starting loy_ (C) are the project's.
set -eu
nm_tool=$1
objects=$(echo "$2" | tr ',' ' ')
below=$(echo "${3:-}" | tr ',' ' ')
[ -n "$objects" ] || { echo "no object given" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # one argument per object
"$nm_tool" -C --undefined-only $objects | awk '$1 == "U" { $1 = ""; sub(/^ /, ""); print }' |
	grep -E '^(loy::|loy_)' | sort -u >"$tmp/used" || true
# shellcheck disable=SC2086
"$nm_tool" -C --defined-only $objects $below | awk 'NF >= 3 { $1 = ""; $2 = ""; sub(/^  /, ""); print }' |
	sort -u >"$tmp/defined"
bad=$(comm -23 "$tmp/used" "$tmp/defined")
if [ -n "$bad" ]; then
	echo "these objects use project symbols that neither they nor the folders below define:" >&2
	echo "$bad" | head -20 >&2
	exit 1
fi
echo "$(echo "$objects" | wc -w) objects use $(wc -l <"$tmp/used") project symbols, each defined below them"
