#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/, clang, -Dfuzz=true in build-fuzz) and run each of them for
# SECONDS (default 3600) at the lowest priority, one after the other or all at once (--parallel).
# Each run starts from the seeds and regressions of fuzz/corpus/NAME plus what earlier runs found
# (build-fuzz/fuzz/work-NAME); a crash stops that target with its input in
# build-fuzz/fuzz/artifacts-NAME/ (fix it, then keep the input as fuzz/corpus/NAME/regress-WHAT).
# Usage: tools/fuzz.sh [--parallel] [SECONDS [TARGET...]]   (targets: bmx config proto dbus)
set -euo pipefail
cd "$(dirname "$0")/.."

parallel=0
if [ "${1:-}" = "--parallel" ]; then
	parallel=1
	shift
fi
seconds=${1:-3600}
shift || true
targets=("$@")

if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbench=disabled >/dev/null
fi
if [ ${#targets[@]} -eq 0 ]; then
	mapfile -t targets < <(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_\(.*\)\.c|\1|')
fi
ninja -C build-fuzz $(printf 'fuzz/fuzz_%s ' "${targets[@]}") >/dev/null

status=0
pids=()
for t in "${targets[@]}"; do
	echo "fuzz-$t: $seconds s (log: build-fuzz/fuzz/work-$t.log)"
	if [ "$parallel" = 1 ]; then
		(cd build-fuzz/fuzz && nice -n 19 ../../fuzz/run-fuzzer.sh "./fuzz_$t" ../../fuzz "$t" "$seconds") &
		pids+=($!)
	else
		(cd build-fuzz/fuzz && nice -n 19 ../../fuzz/run-fuzzer.sh "./fuzz_$t" ../../fuzz "$t" "$seconds") ||
			status=1
	fi
done
for p in "${pids[@]}"; do
	wait "$p" || status=1
done
exit $status
