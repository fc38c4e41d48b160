#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The trainer end to end on a small scale, and the cross-implementation check: a smoke training
(two short float32 epochs, then one distilled epoch per stage, on 2,000 images; both runs are
stopped and resumed from their checkpoints), sensitivities, export, bmx-pack and the C loader;
then, for 300 test images at uniform and random mixed bit-widths, the C engine's logits
(bmx-eval) must equal the trainer's integer simulation (tools/train/intsim.py) bit for bit, so
the top-1 class agrees on every image (engine-exact checks the whole test set).
The same cross-check then runs on the committed model, read back from its .bmx; both on the
reference kernels and on the fastest path this CPU has.
Usage: test_train_smoke.py SOURCE_ROOT BMX_PACK BMX_EVAL BMX_GEN BUNDLED_MODEL"""
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import torch

src, bmx_pack, bmx_eval, bmx_gen, bundled = sys.argv[1:6]
sys.path.insert(0, os.path.join(src, "tools", "train"))
import data  # noqa: E402
import intsim  # noqa: E402

TRAIN = os.path.join(src, "tools", "train")
IMAGES = 300


def run(*cmd, ok=(0,)):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in ok:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


def main():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        ck = lambda n: os.path.join(tmp, n)  # noqa: E731
        # Resumable: a run stopped after its first epoch and resumed ends bit-identical to one
        # that ran through.
        fp32 = [py, f"{TRAIN}/train.py", "fp32", "--epochs", "2", "--subset", "2000", "--threads", "1"]
        run(*fp32, "--out", ck("fp32-through.pt"))
        run(*fp32, "--out", ck("fp32.pt"), "--stop-after", "1", ok=(3,))
        check(os.path.exists(ck("fp32.pt.ckpt")) and not os.path.exists(ck("fp32.pt")),
              "a stopped run leaves its checkpoint and no result")
        run(*fp32, "--out", ck("fp32.pt"))
        a, b = torch.load(ck("fp32-through.pt")), torch.load(ck("fp32.pt"))
        check(all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
              and [e["train_loss"] for e in a["log"]] == [e["train_loss"] for e in b["log"]]
              and [s["epochs"] for s in b["segments"]] == [1, 1],
              "fp32 stopped after 1 of 2 epochs and resumed: weights and curves bit-identical to an "
              "uninterrupted run, the record shows two segments of 1 epoch")
        # The meta-model distilled from the float32 one, stopped in stage 2 and resumed.
        meta = [py, f"{TRAIN}/train.py", "meta", "--init", ck("fp32.pt"), "--out", ck("meta.pt"),
                "--epochs", "1,1,1", "--subset", "2000", "--recal-batch", "16", "--threads", "1",
                "--kd-alpha", "0.5", "--kd-temp", "2"]
        out = run(*meta, "--stop-after", "2", ok=(3,)) + run(*meta)
        log = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        last = log[-1]
        check([e.get("stage") for e in log[:-1]] == [1, 2, 3] and last.get("recalibrated")
              and last["unvisited_tbn_rows"] == 0 and last["val_w8"] > 20.0,
              f"three distilled stages ran (resumed after stage 2), every TBN row was re-estimated, and "
              f"the 8-bit model learned (validation {last['val_w8']:.1f}% > 20%)")
        rec = torch.load(ck("meta.pt"))
        check(rec["stage_epochs"] == {"1": 1, "2": 1, "3": 1} and rec["kd"]["alpha"] == 0.5
              and [s["epochs"] for s in rec["segments"]] == [2, 1],
              f"the record holds the epochs per stage {rec['stage_epochs']}, the distillation settings "
              f"and the two segments of the run")
        run(py, f"{TRAIN}/sensitivity.py", ck("meta.pt"), "--out", ck("sens.json"), "--samples", "8", "--val", "100")
        run(py, f"{TRAIN}/export.py", ck("meta.pt"), "--out", ck("exp"), "--sensitivity", ck("sens.json"),
            "--pack", bmx_pack)
        bmx = ck("exp/fmnist.bmx")

        # Round trip through the C loader: the graph and the sensitivities as exported.
        info = run(bmx_gen, "--info", bmx)
        check("8 layers" in info and "10 outputs" in info, "the C loader accepts the packed model (8 layers, 10 outputs)")
        sens = json.load(open(ck("sens.json")))["layers"]
        model = intsim.load(ck("exp"))
        for lay in model["layers"]:
            line = [l for l in info.splitlines() if f" {lay['name']} " in l][0]
            printed = [float(v) for v in line.split("sensitivity")[1].split()]
            want = [float(f"{v:.3g}") for v in np.float32(sens[lay["name"]]["sensitivity"])]
            check(np.allclose(printed, want, rtol=1e-6) and max(want) > 0,
                  f"layer {lay['name']}: the .bmx holds the exported sensitivities {printed}")

        packed = intsim.load_bmx(bmx)
        same = all(np.array_equal(a[k], b[k]) for a, b in zip(model["layers"], packed["layers"])
                   for k in ("codes", "w_scale", "a_step", "tbn", "sensitivity", "bits", "prev", "name"))
        check(same and len(packed["layers"]) == len(model["layers"]),
              "the .bmx holds exactly the exported arrays (codes, steps, TBN, sensitivities, wiring)")
        cross_check(model, bmx, tmp, 3)
        cross_check(intsim.load_bmx(bundled), bundled, tmp, 2)


def cross_check(model, bmx, tmp, n_random):
    """C engine logits (bmx-eval) against the integer simulation, uniform and random configs."""
    rng = random.Random(3)
    configs = [[b if b in lay["bits"] else 8 for lay in model["layers"]] for b in (8, 6, 4, 3, 2)]
    configs += [[rng.choice(lay["bits"]) for lay in model["layers"]] for _ in range(n_random)]
    args = []
    for c in configs:
        args += ["--bits", ",".join(map(str, c))]
    x, _ = data.load("test")
    x = x[:IMAGES].numpy()
    sims = [intsim.run(model, x, c, keep_acc=True) for c in configs]
    for kernels in ("ref", "auto"):  # the reference kernels and the fastest path this CPU has
        logits_path = os.path.join(tmp, "logits.bin")
        out = run(bmx_eval, bmx, f"{data.DATA_DIR}/t10k-images-idx3-ubyte.gz",
                  f"{data.DATA_DIR}/t10k-labels-idx1-ubyte.gz", "--limit", str(IMAGES), "--logits", logits_path,
                  "--kernels", kernels, *args)
        path = out.split("kernels ")[1].split()[0]
        c_logits = np.fromfile(logits_path, dtype="<f4").reshape(len(configs), IMAGES, 10)
        for c, cl, sim in zip(configs, c_logits, sims):
            compare(bmx, path, c, cl, *sim)


def compare(bmx, path, c, cl, logits, accs):
    """Integer accumulators, every logit bit-identical (float32 bit patterns), the same top-1."""
    exact = all(np.array_equal(a, np.rint(a)) and np.abs(a).max() < 2 ** 31 for a in accs)
    diff = int((logits.view(np.uint32) != cl.view(np.uint32)).sum())
    same = int((logits.argmax(1) == cl.argmax(1)).sum())
    check(exact and diff == 0 and same == IMAGES,
          f"{os.path.basename(bmx)} ({path} kernels) bits {','.join(map(str, c))}: integer accumulators, "
          f"{logits.size - diff} of {logits.size} logits bit-identical, top-1 agrees on {same}/{IMAGES}")


if __name__ == "__main__":
    main()
