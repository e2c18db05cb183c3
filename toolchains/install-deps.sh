#!/usr/bin/env bash
# Installs every Debian package the build needs, for the host or for a cross
# target. Idempotent and non-interactive; run as root on Debian 12.
#
#   toolchains/install-deps.sh            # host (x86-64 or whatever this is)
#   toolchains/install-deps.sh aarch64    # + arm64 cross compiler, libraries, qemu-user
#   toolchains/install-deps.sh armhf      # + armhf cross compiler, libraries, qemu-user
#   toolchains/install-deps.sh fuzz       # + clang-14 and its libFuzzer/sanitizer runtimes
set -euo pipefail

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(host)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

export DEBIAN_FRONTEND=noninteractive

# Packages for the build machine itself, whatever the target.
host_pkgs=(build-essential cmake ninja-build pkg-config git
	libsqlite3-dev libmbedtls-dev libfmt-dev nlohmann-json3-dev catch2
	sqlite3 openssl python3
	libpq-dev postgresql
	libjs-chart.js)

want=("${host_pkgs[@]}")
arches=()
for t in "${targets[@]}"; do
	case "$t" in
	host) ;;
	aarch64 | arm64)
		arches+=(arm64)
		want+=(g++-aarch64-linux-gnu qemu-user
			libsqlite3-dev:arm64 libmbedtls-dev:arm64 libfmt-dev:arm64
			libc6:arm64 libstdc++6:arm64)
		;;
	armhf)
		arches+=(armhf)
		want+=(g++-arm-linux-gnueabihf qemu-user
			libsqlite3-dev:armhf libmbedtls-dev:armhf libfmt-dev:armhf
			libc6:armhf libstdc++6:armhf)
		;;
	fuzz)
		want+=(clang-14 libclang-rt-14-dev)
		;;
	*)
		echo "install-deps: unknown target '$t' (host, aarch64, armhf, fuzz)" >&2
		exit 2
		;;
	esac
done

need_update=0
for a in "${arches[@]}"; do
	if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
		as_root dpkg --add-architecture "$a"
		need_update=1
	fi
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all packages present (${targets[*]})"
	exit 0
fi

# A mirror in the middle of a sync can fail one index file; what is needed
# may still be there, so a failed update is a warning and the install decides.
update() {
	as_root apt-get update -qq || echo "install-deps: warning: apt-get update reported errors" >&2
}
install() {
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A fresh machine has no package lists; an old one may have stale ones.
if [ "$need_update" -eq 1 ] || [ ! -d /var/lib/apt/lists ] ||
	[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
	update
fi
echo "install-deps: installing ${missing[*]}"
if ! install; then
	echo "install-deps: retrying with fresh package lists" >&2
	update
	install
fi
echo "install-deps: done (${targets[*]})"
