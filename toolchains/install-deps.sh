#!/usr/bin/env bash
# Installs every Debian package the build needs, for the host or for a cross
# target. Idempotent and non-interactive; run as root on Debian 12.
#
#   toolchains/install-deps.sh            # host (x86-64 or whatever this is)
#   toolchains/install-deps.sh aarch64    # + arm64 cross compiler, libraries, qemu-user
#   toolchains/install-deps.sh armhf      # + armhf cross compiler, libraries, qemu-user
#   toolchains/install-deps.sh fuzz       # + clang-14 and its libFuzzer/sanitizer runtimes
#   toolchains/install-deps.sh browser    # + Chromium, and playwright-core (npm, with the
#                                         #   machine's Node.js 20+) in build/node for the
#                                         #   dashboard's browser test
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
browser=0
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
	browser)
		want+=(chromium)
		browser=1
		;;
	*)
		echo "install-deps: unknown target '$t' (host, aarch64, armhf, fuzz, browser)" >&2
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

# The browser test's driver, from the npm registry at the version the lock
# file pins, into build/node (never into the sources).
playwright() {
	local root dir
	root="$(cd "$(dirname "$0")/.." && pwd)"
	dir="$root/build/node"
	if ! command -v node >/dev/null || ! command -v npm >/dev/null ||
		! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
		echo "install-deps: the browser test needs Node.js 20 or newer and npm (not Debian 12's nodejs 18)" >&2
		exit 1
	fi
	mkdir -p "$dir"
	if cmp -s "$root/tests/dashboard/package-lock.json" "$dir/package-lock.json" &&
		[ -f "$dir/node_modules/playwright-core/package.json" ]; then
		echo "install-deps: playwright-core present in build/node"
		return
	fi
	cp "$root/tests/dashboard/package.json" "$root/tests/dashboard/package-lock.json" "$dir/"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	echo "install-deps: playwright-core installed in build/node"
}

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all packages present (${targets[*]})"
	[ "$browser" -eq 0 ] || playwright
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
[ "$browser" -eq 0 ] || playwright
echo "install-deps: done (${targets[*]})"
