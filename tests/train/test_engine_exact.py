#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The C engine equals the trainer's integer simulation exactly: for the bundled model on the
whole Fashion-MNIST test set (10,000 images), at every uniform bit-width of the middle layers
(2..8) and at random mixed per-layer configurations (two seeds), every logit bmx-eval writes is
bit for bit (as float32 bit patterns) the logit tools/train/intsim.py computes from the arrays
of the .bmx, so the top-1 class and the accuracy agree on every image too.
bmx-eval runs on the fastest kernel path this CPU has (named in the output); train-smoke checks
the reference kernels the same way on the first 300 images, and the engine unit tests check that
every kernel path computes the same bits.
Usage: test_engine_exact.py SOURCE_ROOT BMX_EVAL MODEL"""
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

src, bmx_eval, model_path = sys.argv[1:4]
sys.path.insert(0, os.path.join(src, "tools", "train"))
import data  # noqa: E402
import intsim  # noqa: E402

RANDOM = {1: 4, 2: 4}  # seed: random mixed configurations drawn with it


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


def main():
    torch.set_num_threads(1)
    model = intsim.load_bmx(model_path)
    layers = model["layers"]
    configs = [[b if b in lay["bits"] else lay["bits"][-1] for lay in layers] for b in range(8, 1, -1)]
    for seed, n in RANDOM.items():
        rng = random.Random(seed)
        configs += [[rng.choice(lay["bits"]) for lay in layers] for _ in range(n)]
    x, y = data.load("test")
    x, y = x.numpy(), y.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "logits.bin")
        cmd = [bmx_eval, model_path, f"{data.DATA_DIR}/t10k-images-idx3-ubyte.gz",
               f"{data.DATA_DIR}/t10k-labels-idx1-ubyte.gz", "--logits", path, "--kernels", "auto"]
        for c in configs:
            cmd += ["--bits", ",".join(map(str, c))]
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        check(r.returncode == 0, f"bmx-eval ran {len(configs)} configurations on {len(x)} images "
                                 f"({time.time() - t0:.0f} s)\n{r.stdout}{r.stderr}")
        kernels = r.stdout.split("kernels ")[1].split()[0]
        c_all = np.fromfile(path, dtype="<f4").reshape(len(configs), len(x), -1)
    for c, cl in zip(configs, c_all):
        t0 = time.time()
        sim = intsim.run(model, x, c)
        diff = int((sim.view(np.uint32) != cl.view(np.uint32)).sum())
        top_c, top_s = cl.argmax(1), sim.argmax(1)
        check(diff == 0 and np.array_equal(top_c, top_s),
              f"bits {','.join(map(str, c))} ({kernels} kernels): {sim.size - diff} of {sim.size} logits "
              f"bit-identical, top-1 agrees on {int((top_c == top_s).sum())} of {len(x)} images, "
              f"accuracy {100 * (top_c == y).mean():.2f}% (engine) / {100 * (top_s == y).mean():.2f}% "
              f"(simulation); simulated in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
