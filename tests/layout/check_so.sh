#!/bin/sh
# libloyalty.so exports the C API alone: every dynamic symbol it defines is
# a loy_* function (and the version node of api/loyalty.map).
#
#   check_so.sh NM LIBLOYALTY.so
set -eu
nm_tool=$1
lib=$2
names=$("$nm_tool" -D --defined-only "$lib" | awk '{ print $NF }')
bad=$(echo "$names" | grep -v -e '^loy_' -e '^LOYALTY_0$' || true)
if [ -n "$bad" ]; then
	echo "$lib exports more than the C API:" >&2
	echo "$bad" | head -20 >&2
	exit 1
fi
count=$(echo "$names" | grep -c '^loy_')
if [ "$count" -lt 40 ]; then
	echo "$lib: only $count loy_* functions exported" >&2
	exit 1
fi
echo "$lib: exports $count loy_* functions and nothing else"
