#!/usr/bin/env bash
# Install what building, testing and demonstrating bitmix needs on Debian 12 (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
	build-essential clang meson ninja-build pkg-config
	libclang-rt-14-dev   # libFuzzer (fuzz/): clang-14 only recommends it
	clang-format-14      # tools/format.sh: the house style, checked by the suite
	liburing-dev libyaml-dev libcmocka-dev zlib1g-dev libsystemd-dev libbpf-dev bpftool
	debootstrap   # tests/systemd: a Debian rootfs to boot systemd in
	dbus-daemon systemd
	dataset-fashion-mnist
	python3-torch python3-numpy
)

"$(dirname "$0")/apt-install.sh" setup-deps "${packages[@]}"
