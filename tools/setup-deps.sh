#!/usr/bin/env bash
# Install what building, testing and demonstrating bitmix needs on Debian 12 (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
	build-essential clang meson ninja-build pkg-config
	liburing-dev libyaml-dev libcmocka-dev zlib1g-dev libsystemd-dev libbpf-dev bpftool
	dataset-fashion-mnist
	python3-torch python3-numpy
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup-deps: missing packages ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "setup-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
