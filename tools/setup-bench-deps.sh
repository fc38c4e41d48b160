#!/usr/bin/env bash
# Install what the benchmarks under bench/ compare against (Debian 12, run as root): oneDNN
# (int8 matmul), OpenBLAS (fp32 sgemm), PyTorch (quantized int8 models, run by /usr/bin/python3)
# and matplotlib (the plot). Kept apart from tools/setup-deps.sh so that building and testing
# never pull them; meson finds them when present (-Dbench=auto) and skips them when not.
set -euo pipefail

packages=(libdnnl-dev libopenblas-dev python3-torch python3-matplotlib)

"$(dirname "$0")/apt-install.sh" setup-bench-deps "${packages[@]}"
