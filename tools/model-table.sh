#!/usr/bin/env bash
# Regenerate the accuracy table of models/README.md: the float32 model as shipped
# (models/fmnist-resnet-fp32.pt, evaluated in PyTorch by tools/train/float_model.py), then the C
# engine (bmx-eval, on the fastest kernel path this CPU has, which the table names) on the 10,000
# Fashion-MNIST test images at uniform 8, 6, 4, 3 and 2 bits, at 200 seeded random per-layer
# configurations, and the dedicated 4- and 2-bit baselines. About 10 minutes on a busy 2-core
# machine (avx512).
# Usage: tools/model-table.sh [--float-only] [BUILD_DIR]   (default build; the full log goes to models/)
#   --float-only: evaluate the float32 model again and keep the engine's part of the existing log
#   (its date and kernel path stay as they were measured).
set -euo pipefail
cd "$(dirname "$0")/.."
float_only=0
if [ "${1:-}" = --float-only ]; then
	float_only=1
	shift
fi
build=${1:-build}
data=/usr/share/datasets/fashion-mnist
images=$data/t10k-images-idx3-ubyte.gz
labels=$data/t10k-labels-idx1-ubyte.gz
log=models/accuracy-log.txt
fp32=models/fmnist-resnet-fp32.pt

tools/setup-deps.sh
[ -d "$build" ] || meson setup "$build" >/dev/null
ninja -C "$build" tools/bmx-eval >/dev/null
eval_() { "$build/tools/bmx-eval" "$@" "$images" "$labels"; }
{
	if [ -e "$fp32" ]; then
		/usr/bin/python3 tools/train/float_model.py eval "$fp32"
	fi
	if [ $float_only = 1 ]; then
		grep -v '^float32 ' "$log"
	else
		echo "# $build/tools/bmx-eval, $(date -u +%Y-%m-%d)"
		eval_ models/fmnist-resnet.bmx --bits 8 --bits 6 --bits 4 --bits 3 --bits 2 --random 200 --seed 1
		eval_ models/baselines/fmnist-resnet-w4.bmx --bits 4
		eval_ models/baselines/fmnist-resnet-w2.bmx --bits 2
	fi
} > "$log.tmp"
mv "$log.tmp" "$log"
cat "$log"

/usr/bin/python3 - "$log" models/fmnist-resnet.json models/README.md <<'PY'
import json, re, sys
log, rec, readme = sys.argv[1:]
text = open(log).read()
uni = [float(x) for x in re.findall(r"^bits \S+\s+\S+\s+([\d.]+)%", text, re.M)]
u = dict(zip((8, 6, 4, 3, 2), uni[:5]))
b4, b2 = uni[5], uni[6]
m = re.search(r"random configurations: (\d+), min ([\d.]+)%, mean ([\d.]+)%, max ([\d.]+)%, worst (\S+)", text)
n, lo, mean, hi, worst = m.group(1), float(m.group(2)), float(m.group(3)), float(m.group(4)), m.group(5)
mm = re.search(r"worst margin ([+-][\d.]+), (\d+) of (\d+) more than 0.3 below", text)
mf = re.search(r"^float32 \(PyTorch ([^)]*)\) (\S+): ([\d.]+)% of 10000 images", text, re.M)
if mf:
    fp, fp_label = float(mf.group(3)), f"float32 ({mf.group(2).split('/')[-1]}, PyTorch {mf.group(1)})"
else:  # no float32 model shipped: the trainer's record says what it measured
    fp, fp_label = json.load(open(rec))["fp32_test_accuracy"], "float32 (PyTorch, the trainer's record)"
kernels = sorted(set(re.findall(r"^# \S+, kernels (\S+)", text, re.M)))
yes = lambda ok: "yes" if ok else "**no**"
rows = [
    (fp_label, f"{fp:.2f}", ">= 92.5", yes(fp >= 92.5)),
    ("uniform 8 bits", f"{u[8]:.2f}", f">= fp32 - 0.3 = {fp - 0.3:.2f}", yes(u[8] >= fp - 0.3)),
    ("uniform 6 bits", f"{u[6]:.2f}", "", ""),
    ("uniform 4 bits", f"{u[4]:.2f}", f">= fp32 - 0.8 = {fp - 0.8:.2f} and >= w4 baseline - 0.3 = {b4 - 0.3:.2f}",
     yes(u[4] >= fp - 0.8 and u[4] >= b4 - 0.3)),
    ("uniform 3 bits", f"{u[3]:.2f}", f">= fp32 - 1.5 = {fp - 1.5:.2f}", yes(u[3] >= fp - 1.5)),
    ("uniform 2 bits", f"{u[2]:.2f}", f">= fp32 - 3.5 = {fp - 3.5:.2f} and >= w2 baseline - 0.5 = {b2 - 0.5:.2f}",
     yes(u[2] >= fp - 3.5 and u[2] >= b2 - 0.5)),
    (f"{n} random per-layer configs: min / mean / max", f"{lo:.2f} / {mean:.2f} / {hi:.2f}",
     "each >= uniform at its lowest bits - 0.3", yes(int(mm.group(2)) == 0) + f" (worst margin {mm.group(1)}, "
     f"{mm.group(2)} of {mm.group(3)} below)"),
    ("worst random config (bits per layer)", worst, "", ""),
    ("dedicated QAT baseline, uniform 4 bits", f"{b4:.2f}", "", ""),
    ("dedicated QAT baseline, uniform 2 bits", f"{b2:.2f}", "", ""),
    ("C engine kernel path of the rows above (bmx-eval)", ", ".join(kernels), "", ""),
]
table = ["| model / operating point | top-1 % | goal | met |", "| --- | --- | --- | --- |"]
table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
sens = json.load(open(rec))["sensitivity"]
st = [f"Spearman rank correlation between the exported sensitivity and the measured validation loss "
      f"increase of running that one layer at b bits (all others at 8), over {sens['pairs']} (layer, b < 8) "
      f"pairs: **{sens['spearman']:.3f}** (Fisher on {sens['fisher_samples']} training images, loss on "
      f"{sens['val_images']} validation images, `tools/train/sensitivity.py`). Per layer, sensitivity / measured "
      "increase (nats):", "",
      "| layer | " + " | ".join(f"{b} bits" for b in range(2, 8)) + " |", "| --- |" + " --- |" * 6]
for name, l in sens["layers"].items():
    if len(l["bits"]) > 1:
        st.append(f"| {name} | " + " | ".join(f"{s:.3g} / {d:.3g}" for s, d in
                                          zip(l["sensitivity"][:-1], l["measured_loss_increase"][:-1])) + " |")


def put(body, tag, lines):
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    i, j = body.index(begin) + len(begin), body.index(end)
    return body[:i] + "\n" + "\n".join(lines) + "\n" + body[j:]


body = put(put(open(readme).read(), "table", table), "sensitivity", st)
open(readme, "w").write(body)
print("\n".join(table + [""] + st))
PY
