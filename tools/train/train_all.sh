#!/usr/bin/env bash
# The full training behind models/fmnist-resnet.bmx (about 40 minutes on 2 cores): the float32
# model, the meta-quantized model (stages 1-3) and the dedicated 4- and 2-bit baselines, all from
# the same float32 start and with the same epochs. Usage: tools/train/train_all.sh OUTDIR
set -euo pipefail
out=${1:?usage: train_all.sh OUTDIR}
here=$(dirname "$0")
py=/usr/bin/python3
mkdir -p "$out"
$py "$here/train.py" fp32 --out "$out/fp32.pt" --epochs 12 2>&1 | tee "$out/fp32.log"
$py "$here/train.py" meta --init "$out/fp32.pt" --out "$out/meta.pt" --epochs 3,4,10 2>&1 | tee "$out/meta.log"
for b in 4 2; do
	$py "$here/train.py" fixed --bits $b --init "$out/fp32.pt" --out "$out/w$b.pt" --epochs 3,4,10 2>&1 | tee "$out/w$b.log"
done
