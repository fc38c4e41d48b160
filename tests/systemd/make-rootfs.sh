#!/usr/bin/env bash
# Print the path of a Debian 12 (bookworm) minbase root file system with systemd, dbus and the
# libraries bitmixd links, debootstrap'ing it first if the cache does not hold one yet.
#
# The cache lives outside the checkout (CI starts from a clean tree): BITMIX_ROOTFS_CACHE, by
# default /var/cache/bitmix. A rootfs is named after a hash of what went into it, built in a
# temporary directory and renamed into place, so a half-built tree is never used and two runs
# racing each other are serialised by a lock. Callers must not write into it: they mount an
# overlay over it (run-systemd-test.sh). The mirror is the host's own (its apt sources).
set -euo pipefail

suite=bookworm
# What bitmixd and bitmixctl link (the sanitizer runtimes for tools/test.sh's ASan build).
packages=(systemd systemd-sysv dbus libsystemd0 liburing2 libyaml-0-2 libbpf1 libelf1 zlib1g
	  libasan8 libubsan1 procps)
cache=${BITMIX_ROOTFS_CACHE:-/var/cache/bitmix}

# The first deb URI of the host's apt sources that serves $suite (deb822 or one-line format).
host_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk -v s="$suite" '
			/^[[:space:]]*$/ { if (ok && u) exit; ok = 0; u = ""; next }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (ok && u) print u }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(awk -v s="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2; exit }
					 $1 == "deb" && $2 ~ /^\[/ && $4 == s { print $3; exit }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	echo http://deb.debian.org/debian
}

hash=$(printf '%s\n' "$suite" minbase "${packages[@]}" | sha256sum | cut -c1-16)
rootfs=$cache/rootfs-$hash
if [ -x "$rootfs/lib/systemd/systemd" ]; then
	echo "$rootfs"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing (tools/setup-deps.sh)" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -x "$rootfs/lib/systemd/systemd" ]; then
	tmp=$(mktemp -d "$cache/.rootfs-$hash.XXXXXX")
	trap 'rm -rf --one-file-system "$tmp"' EXIT
	mirror=$(host_mirror)
	echo "debootstrap $suite from $mirror into $tmp (once; cached as $rootfs)" >&2
	debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
		"$suite" "$tmp" "$mirror" >&2
	# Only what the test needs: no apt caches, a machine-id systemd fills in at boot.
	rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
	: >"$tmp/etc/machine-id"
	chmod 0755 "$tmp"
	mv -T "$tmp" "$rootfs"
	trap - EXIT
fi
echo "$rootfs"
