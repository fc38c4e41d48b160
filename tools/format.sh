#!/bin/sh
# SPDX-License-Identifier: MIT
# The house style (.clang-format, kernel-like) on every C file of the project.
#   tools/format.sh            rewrite the files in place
#   tools/format.sh --check    change nothing; list the files that differ and fail if any do
# clang-format-14 (Debian 12's) is the pinned formatter: other versions format differently.
set -eu
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || true)
if [ -z "$fmt" ]; then
	echo "format: clang-format-14 is not installed (tools/setup-deps.sh installs it)" >&2
	exit 77 # meson's "skipped"
fi
if command -v git >/dev/null && { [ -d .git ] || [ -f .git ]; }; then
	files=$(git ls-files '*.c' '*.h' | grep -v '^fuzz/corpus/')
else
	files=$(find . -path ./fuzz/corpus -prune -o -path './build*' -prune -o \
		\( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||')
fi
if [ "${1:-}" != "--check" ]; then
	# shellcheck disable=SC2086
	exec "$fmt" -i $files
fi
bad=0
for f in $files; do
	if ! "$fmt" "$f" | cmp -s - "$f"; then
		echo "format: $f differs from .clang-format (tools/format.sh fixes it):" >&2
		"$fmt" "$f" | diff -u "$f" - | head -20 >&2
		bad=1
	fi
done
[ $bad = 0 ] && echo "format: $(echo "$files" | wc -l) files follow .clang-format"
exit $bad
