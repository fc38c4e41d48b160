#!/usr/bin/env bash
# Install what the benchmarks under bench/ compare against (Debian 12, run as root): oneDNN
# (int8 matmul), OpenBLAS (fp32 sgemm), PyTorch (quantized int8 models, run by /usr/bin/python3)
# and matplotlib (the plot). Kept apart from tools/setup-deps.sh so that building and testing
# never pull them; meson finds them when present (-Dbench=auto) and skips them when not.
set -euo pipefail

packages=(libdnnl-dev libopenblas-dev python3-torch python3-matplotlib)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup-bench-deps: missing packages ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "setup-bench-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
