#!/usr/bin/env bash
# The per-sample adaptive precision report (docs/adaptive.md, docs/adaptive.png): the C engine
# (tools/bmx-adapt eval) on the 10,000 Fashion-MNIST test images for uniform configurations
# 2..8 bits, the bit allocator at several BitOps budgets, the bundled model's cascade at every
# calibrated target (and once without prefix reuse), and its learned policy at every calibrated
# threshold: top-1 accuracy, average BitOps per sample, and measured engine time per sample at
# batch 1 and batch 16 on one thread (AVX-512 fast path where the CPU has it; the best of two
# passes each). About two minutes on an idle core. Usage: tools/abn-report.sh [BUILD_DIR]     (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=/usr/share/datasets/fashion-mnist
model=models/fmnist-resnet.bmx
record=models/fmnist-resnet-adaptive.json

tools/setup-deps.sh
tools/apt-install.sh abn-report python3-matplotlib # the plot
[ -d "$build" ] || meson setup "$build" >/dev/null
ninja -C "$build" tools/bmx-adapt >/dev/null

# The settings: thresholds of every calibrated target come from the trainer's record.
mapfile -t settings < <(/usr/bin/python3 - "$record" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for b in (2, 3, 4, 5, 6, 7, 8):
    print(f"uniform:{b}")
for f in (0.10, 0.13, 0.16, 0.20, 0.25, 0.30, 0.40, 0.60):
    print(f"alloc:{f}")
for s in r["cascade"]["sweep"]:
    print("cascade:" + ",".join(float(t).hex() for t in s["thresholds"]))
print("cascade")
print("cascade+noreuse")
seen = set()
for s in r["policy"]["sweep"]:
    if s["threshold"] not in seen:
        print("policy:" + float(s["threshold"]).hex())
    seen.add(s["threshold"])
print("policy")
PY
)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/tools/bmx-adapt" eval "$model" "$data/t10k-images-idx3-ubyte.gz" \
	"$data/t10k-labels-idx1-ubyte.gz" "${settings[@]}" | tee "$out/results.tsv"
/usr/bin/python3 tools/abn_report.py "$out/results.tsv" "$record" docs/adaptive.md docs/adaptive.png
