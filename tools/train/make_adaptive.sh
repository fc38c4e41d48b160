#!/usr/bin/env bash
# Per-sample adaptive precision for the exported meta-model, on the frozen weights: the C engine
# runs the validation split (tools/bmx-adapt dump), tools/train/adaptive.py calibrates the
# cascade and fits the policy, bmx-pack lays the model out again with the CASCADE and POLICY
# sections into models/fmnist-resnet.bmx, and bmx-eval proves the outputs are bit-identical to
# the export without them. A few seconds; make_model.sh runs it after the export.
# Usage: tools/train/make_adaptive.sh OUTDIR [BUILD_DIR]   (OUTDIR holds export-meta/)
set -euo pipefail
out=${1:?usage: make_adaptive.sh OUTDIR [BUILD_DIR]}
cd "$(dirname "$0")/../.."
build=${2:-build}
py=/usr/bin/python3
exp=$out/export-meta
data=/usr/share/datasets/fashion-mnist
ninja -C "$build" tools/bmx-pack tools/bmx-adapt tools/bmx-eval >/dev/null
$py tools/train/adaptive.py "$exp/fmnist.bmx" --bmx-adapt "$build/tools/bmx-adapt" --out "$out/adaptive"
"$build/tools/bmx-pack" "$exp/model.txt" "$exp/model.bin" -o "$out/adaptive/fmnist.bmx" \
	--adaptive "$out/adaptive/adaptive.spec"
for m in "$exp/fmnist.bmx" "$out/adaptive/fmnist.bmx"; do
	"$build/tools/bmx-eval" "$m" "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" \
		--bits 8 --bits 4 --bits 2 --logits "$m.logits" >/dev/null
done
if ! cmp "$exp/fmnist.bmx.logits" "$out/adaptive/fmnist.bmx.logits"; then
	echo "make_adaptive.sh: the outputs changed with the adaptive sections" >&2
	exit 1
fi
echo "outputs at 8, 4 and 2 bits bit-identical with and without the adaptive sections"
cp "$out/adaptive/fmnist.bmx" models/fmnist-resnet.bmx
cp "$out/adaptive/adaptive.json" models/fmnist-resnet-adaptive.json
