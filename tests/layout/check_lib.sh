#!/bin/sh
# The terminal library holds the terminal's code only: no central server or
# back office (loy::central, the TLS server, the test PKI), no simulators
# (loy::hal::sim), no command-line plumbing (loy::cli), and no call of
# setenv/tzset/localtime. Lists any symbol that breaks it.
#
#   check_lib.sh NM LIBLOYALTY.a
set -eu
nm_tool=$1
lib=$2
bad=$("$nm_tool" -C --defined-only "$lib" 2>/dev/null |
	grep -E ' [TWDBR] ' |
	grep -E 'loy::central::|loy::net::TlsServer|make_test_pki|issue_certificate|loy::hal::sim::|loy::cli::' || true)
if [ -n "$bad" ]; then
	echo "$lib defines code that is not the terminal's:" >&2
	echo "$bad" | head -20 >&2
	exit 1
fi
# Nor any call that reads or changes the process's time zone or environment:
# a POS thread calling localtime() or getenv() would race it (zones are read
# from their files, storage/tzfile.hpp).
global=$("$nm_tool" --undefined-only "$lib" 2>/dev/null | awk '{ print $NF }' | sed 's/@.*//' |
	grep -xE 'setenv|unsetenv|putenv|clearenv|tzset|localtime|localtime_r|mktime|ctime|ctime_r|strftime' |
	sort -u || true)
if [ -n "$global" ]; then
	echo "$lib calls what touches the process's time zone or environment:" >&2
	echo "$global" >&2
	exit 1
fi
count=$("$nm_tool" -C --defined-only "$lib" 2>/dev/null | grep -cE ' T ' || true)
if [ "$count" -lt 100 ]; then
	echo "$lib: only $count functions: is it the library?" >&2
	exit 1
fi
echo "$lib: $count functions, none of the centre, the simulators or the programs"
