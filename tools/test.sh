#!/usr/bin/env bash
# Build bitmix and run the whole test suite (the README's second command; .ci/run calls it).
# Tests run under ASan+UBSan; the tree must also build warning-free with clang, whose unit tests
# run too.
# Ends with one line "N passed, N failed[, N skipped]" taken from meson's own counts.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup-deps.sh

# Warning-free with clang as well as gcc (-Werror makes any warning a failure).
if [ ! -d build-clang ]; then
	CC=clang meson setup build-clang >/dev/null
fi
if ! ninja -C build-clang > build-clang/ninja.log 2>&1; then
	grep -v '^\[' build-clang/ninja.log >&2
	echo "0 passed, 1 failed (the clang build)"
	exit 1
fi

if [ ! -d build-test ]; then
	meson setup build-test -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-test

status=0
# The unit suite once more as clang compiled it: the engines must be bit-exact whatever the
# compiler (the reference once returned -0 where glibc's fmaxf gives +0, under clang only).
meson test -C build-clang --suite unit --print-errorlogs --num-processes 2 |
	tee build-clang/meson-test.out || status=$?

export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson test -C build-test --print-errorlogs --num-processes 2 | tee build-test/meson-test.out || status=$?

# The libFuzzer targets (fuzz/README.md), built by clang: each over its corpus (every crash ever
# found stays there as a regression), then fuzzed for 20 s. Only the targets are built here.
if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbench=disabled >/dev/null
fi
ninja -C build-fuzz $(ls fuzz/fuzz_*.c | sed 's|\.c$||') >/dev/null
meson test -C build-fuzz --no-rebuild --suite fuzz --print-errorlogs --num-processes 2 |
	tee build-fuzz/meson-test.out || status=$?

# meson's own counts, summed over the three runs.
count() {
	local n total=0 f

	for f in build-clang/meson-test.out build-test/meson-test.out build-fuzz/meson-test.out; do
		n=$(sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" "$f" | tail -n 1)
		[ -n "$n" ] || { echo ""; return; }
		total=$(( total + n ))
	done
	echo "$total"
}
ok=$(count Ok); fail=$(count Fail); skip=$(count Skipped); timeout=$(count Timeout)
xfail=$(count "Expected Fail"); xpass=$(count "Unexpected Pass")
failed=$(( ${fail:-0} + ${timeout:-0} + ${xpass:-0} ))
passed=$(( ${ok:-0} + ${xfail:-0} ))
if [ -z "$ok" ]; then
	echo "meson printed no summary" >&2
	status=1
	failed=$(( failed + 1 ))
fi
if [ "${skip:-0}" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skip skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && exit "$status"
exit 1
