#!/usr/bin/env bash
# After train_all.sh: sensitivities, export and packing of the meta-model and the two baselines
# into models/, and the trainer's record (models/fmnist-resnet.json).
# Usage: tools/train/make_model.sh OUTDIR [BUILD_DIR]   (BUILD_DIR holds tools/bmx-pack; default build)
# SENS_MEASURE=loss exports the measured validation loss increase as the sensitivity (sensitivity.py).
set -euo pipefail
out=${1:?usage: make_model.sh OUTDIR [BUILD_DIR]}
cd "$(dirname "$0")/../.."
build=${2:-build}
py=/usr/bin/python3
ninja -C "$build" tools/bmx-pack >/dev/null
$py tools/train/sensitivity.py "$out/meta.pt" --measure "${SENS_MEASURE:-fisher}" --out "$out/sensitivity.json" | tee "$out/sensitivity.log"
$py tools/train/export.py "$out/meta.pt" --name fmnist --sensitivity "$out/sensitivity.json" \
	--out "$out/export-meta" --pack "$build/tools/bmx-pack"
cp "$out/export-meta/fmnist.bmx" models/fmnist-resnet.bmx
tools/train/make_adaptive.sh "$out" "$build"
mkdir -p models/baselines
for b in 4 2; do
	$py tools/train/export.py "$out/w$b.pt" --name "fmnist-w$b" --out "$out/export-w$b" --pack "$build/tools/bmx-pack"
	cp "$out/export-w$b/fmnist-w$b.bmx" "models/baselines/fmnist-resnet-w$b.bmx"
done
$py tools/train/report.py "$out" --out models/fmnist-resnet.json
