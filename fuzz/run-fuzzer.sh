#!/usr/bin/env bash
# Run one libFuzzer target: first over every input of its corpus (the seeds and each crash ever
# found, kept as regressions), then fuzzing for SECONDS from there. Fails on any crash, leak or
# sanitizer report; the input that caused it lands in BUILD/fuzz/artifacts-NAME/.
# Usage: run-fuzzer.sh FUZZER SRCDIR NAME SECONDS [libFuzzer options...]
set -euo pipefail
exe=$(realpath "$1") src=$2 name=$3 seconds=$4
shift 4

# FUZZ_TAG keeps the suite's short runs apart from long ones (tools/fuzz.sh) running meanwhile.
corpus=$src/corpus/$name
work=$PWD/work-$name${FUZZ_TAG:-}   # what the fuzzer found beyond the seeds; grows run after run
artifacts=$PWD/artifacts-$name${FUZZ_TAG:-}
mkdir -p "$work" "$artifacts"
opts=(-timeout=120 -rss_limit_mb=4096 -artifact_prefix="$artifacts/" -print_final_stats=1)
[ -f "$src/dict/$name.dict" ] && opts+=(-dict="$src/dict/$name.dict")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# 1. Every corpus input once: the regressions must stay fixed.
"$exe" "${opts[@]}" -runs=0 "$corpus" 2>"$work.replay.log" || {
	tail -n 60 "$work.replay.log" >&2
	echo "fuzz-$name: an input of $corpus fails" >&2
	exit 1
}
# 2. Fuzz for SECONDS (-max_total_time bounds it whatever the machine's speed).
"$exe" "${opts[@]}" -max_total_time="$seconds" "$@" "$work" "$corpus" 2>"$work.log" || {
	tail -n 80 "$work.log" >&2
	echo "fuzz-$name: crash; the input is in $artifacts/" >&2
	exit 1
}
# The numbers docs/testing.md reports: executions, coverage, speed.
grep -E '^#[0-9]+.*(DONE|pulse)' "$work.log" | tail -n 1
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work.log" || true
