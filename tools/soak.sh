#!/usr/bin/env bash
# The soak (tests/soak/soak.c) for as long as asked: clients infer, get killed and reconnect,
# governors switch, the configuration reloads (good and bad), models load and unload, and every
# output is checked against the reference engine; the daemon's descriptors and RSS must stay
# flat. Runs the sanitizer build (build-test, as tools/test.sh makes it) unless --build DIR.
# Usage: tools/soak.sh [--minutes N] [--clients N] [--build DIR] [--nice]
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10 clients=3 build=build-test nice=()
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) minutes=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--nice) nice=(nice -n 19); shift ;;
	*) sed -n 's/^# Usage: //p' "$0" >&2; exit 2 ;;
	esac
done
if [ ! -d "$build" ]; then
	meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$build" tests/soak/soak daemon/bitmixd >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
exec "${nice[@]}" "$build/tests/soak/soak" "$build/daemon/bitmixd" models/fmnist-resnet.bmx \
	models/baselines/fmnist-resnet-w2.bmx --seconds $((minutes * 60)) --clients "$clients"
