#!/usr/bin/env bash
# Install the Debian packages given that are not installed yet (run as root); the shared step of
# tools/setup-deps.sh and tools/setup-bench-deps.sh. Usage: apt-install.sh LABEL PACKAGE...
set -euo pipefail
label=$1
shift

missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "$label: missing packages ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "$label: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
