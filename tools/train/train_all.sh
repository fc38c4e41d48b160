#!/usr/bin/env bash
# The full training behind models/fmnist-resnet.bmx: the float32 model, then the meta-quantized
# model (stages 1-3) and the dedicated 4- and 2-bit baselines in parallel, all from the same
# float32 start and with the same epochs. One thread per process: on a shared 2-core machine,
# two OpenMP threads per process stall at every barrier whenever another process holds a core.
# Usage: tools/train/train_all.sh OUTDIR
set -euo pipefail
out=${1:?usage: train_all.sh OUTDIR}
here=$(dirname "$0")
py=/usr/bin/python3
stages=1,2,8
mkdir -p "$out"
$py "$here/train.py" fp32 --out "$out/fp32.pt" --epochs 10 --threads 1 > "$out/fp32.log" 2>&1
$py "$here/train.py" meta --init "$out/fp32.pt" --out "$out/meta.pt" --epochs $stages --threads 1 > "$out/meta.log" 2>&1 &
for b in 4 2; do
	$py "$here/train.py" fixed --bits $b --init "$out/fp32.pt" --out "$out/w$b.pt" --epochs $stages --threads 1 > "$out/w$b.log" 2>&1 &
done
wait
