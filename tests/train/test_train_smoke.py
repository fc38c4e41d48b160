#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The trainer end to end on a small scale, and the cross-implementation check: a smoke training
(one short epoch per stage on 2,000 images), sensitivities, export, bmx-pack and the C loader;
then, for 300 test images at uniform and random mixed bit-widths, the C engine's logits
(bmx-eval) must equal the trainer's integer simulation (tools/train/intsim.py) and agree on
every top-1 class.
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

src, bmx_pack, bmx_eval, bmx_gen, bundled = sys.argv[1:6]
sys.path.insert(0, os.path.join(src, "tools", "train"))
import data  # noqa: E402
import intsim  # noqa: E402

TRAIN = os.path.join(src, "tools", "train")
IMAGES = 300


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
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
        run(py, f"{TRAIN}/train.py", "fp32", "--out", ck("fp32.pt"), "--epochs", "1", "--subset", "2000", "--threads", "1")
        out = run(py, f"{TRAIN}/train.py", "meta", "--init", ck("fp32.pt"), "--out", ck("meta.pt"),
                  "--epochs", "1,1,1", "--subset", "2000", "--recal-batch", "16", "--threads", "1")
        log = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        last = log[-1]
        check([e.get("stage") for e in log[:-1]] == [1, 2, 3] and last.get("recalibrated")
              and last["unvisited_tbn_rows"] == 0 and last["val_w8"] > 20.0,
              f"three stages ran, every TBN row was re-estimated, and the 8-bit model learned "
              f"(validation {last['val_w8']:.1f}% > 20%)")
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
    """Integer accumulators, logits within 1e-4 relative, the same top-1 on every image."""
    exact = all(np.array_equal(a, np.rint(a)) and np.abs(a).max() < 2 ** 31 for a in accs)
    rel = float(np.abs(logits - cl).max() / max(np.abs(cl).max(), 1e-30))
    same = int((logits.argmax(1) == cl.argmax(1)).sum())
    check(exact and rel <= 1e-4 and same == IMAGES,
          f"{os.path.basename(bmx)} ({path} kernels) bits {','.join(map(str, c))}: integer accumulators, "
          f"logits max rel. diff {rel:.2e} (bit-identical: {np.array_equal(logits, cl)}), "
          f"top-1 agrees on {same}/{IMAGES}")


if __name__ == "__main__":
    main()
