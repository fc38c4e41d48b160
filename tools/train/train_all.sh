#!/usr/bin/env bash
# The full training behind models/fmnist-resnet.bmx: the float32 model; the distillation
# settings chosen on the validation split (short trials); then the meta-quantized model (stages
# 1-3) and the dedicated 4- and 2-bit baselines in parallel, all from the same float32 start,
# distilled from it with the same settings and trained for the same epochs.
#
# Resumable: every run checkpoints each epoch (NAME.pt.ckpt, atomically), a finished run leaves
# NAME.pt. Calling this again with the same OUTDIR skips the finished runs and resumes the
# running ones where they stopped, so a long training can span several sessions:
#   nice -n 19 tools/train/train_all.sh OUTDIR
# Logs: OUTDIR/NAME.log (appended across resumes). One thread per process: on a shared 2-core
# machine, two OpenMP threads per process stall at every barrier whenever another process holds
# a core.
# Usage: tools/train/train_all.sh OUTDIR
#   FP32_EPOCHS, STAGES override the schedule; TRAIN_ARGS adds train.py options to every run
#   (a dry run: FP32_EPOCHS=1 STAGES=1,1,1 TRAIN_ARGS="--subset 300 --recal-batch 8").
set -euo pipefail
out=${1:?usage: train_all.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
fp32_epochs=${FP32_EPOCHS:-30}
stages=${STAGES:-3,10,30}
kd_candidates="0:1 1:1 0.5:1 1:4 0.5:4"   # alpha:T; alpha 0 is plain cross-entropy (reference)
read -r -a extra <<< "${TRAIN_ARGS:-}"
mkdir -p "$out/kd-select"

# run NAME ARGS...: skip a finished run, else run (or resume) it; exit status kept.
run() {
	local name=$1
	shift
	if [ -e "$out/$name.pt" ]; then
		echo "train_all: $name: done ($out/$name.pt)"
		return 0
	fi
	echo "train_all: $name: $(date -u +%FT%TZ) train.py $* (log $out/$name.log)"
	echo "# $(date -u +%FT%TZ) train.py $*" >> "$out/$name.log"
	$py "$here/train.py" "$@" --out "$out/$name.pt" --threads 1 "${extra[@]}" >> "$out/$name.log" 2>&1
}

run fp32 fp32 --epochs "$fp32_epochs"

# Distillation settings: one epoch of stage 2 from the float32 model per candidate, chosen by the
# mean validation accuracy at uniform 8, 4 and 2 bits. Two trials at a time.
kd_run() { local a=${1%:*} t=${1#*:}; run "kd-select/a$a-T$t" meta --init "$out/fp32.pt" --epochs 0,1,0 --no-recal --kd-alpha "$a" --kd-temp "$t"; }
if [ ! -e "$out/kd.json" ]; then
	set -- $kd_candidates
	pids=()
	( for c in "$1" "$3" "$5"; do kd_run "$c"; done ) & pids+=($!)
	( for c in "$2" "$4"; do kd_run "$c"; done ) & pids+=($!)
	for p in "${pids[@]}"; do wait "$p"; done
	$py - "$out" $kd_candidates <<'PY'
import json, os, sys
import torch
out, cands = sys.argv[1], sys.argv[2:]
res = {}
for c in cands:
    a, t = c.split(":")
    last = torch.load(os.path.join(out, "kd-select", f"a{a}-T{t}.pt"))["log"][-1]
    res[c] = {"alpha": float(a), "temperature": float(t), **{k: v for k, v in last.items() if k.startswith("val_")}}
    res[c]["score"] = (last["val_w8"] + last["val_w4"] + last["val_w2"]) / 3
best = max(res.values(), key=lambda r: r["score"])
rec = {"rule": "highest mean validation accuracy at uniform 8, 4 and 2 bits after one epoch of stage 2 "
               "from the float32 model", "candidates": res, "alpha": best["alpha"], "temperature": best["temperature"]}
json.dump(rec, open(os.path.join(out, "kd.json"), "w"), indent=1)
print(f"train_all: distillation alpha {best['alpha']} T {best['temperature']} (validation mean {best['score']:.2f})")
PY
fi
read -r alpha temp < <($py -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['alpha'], r['temperature'])" "$out/kd.json")
kd=(--kd-alpha "$alpha" --kd-temp "$temp" --init "$out/fp32.pt" --epochs "$stages")

pids=()
run meta meta "${kd[@]}" & pids+=($!)
for b in 4 2; do
	run "w$b" fixed --bits "$b" "${kd[@]}" & pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
echo "train_all: $(date -u +%FT%TZ) finished (status $rc)"
exit $rc
