#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The bundled model as committed: the C loader accepts it, every middle layer carries the
trainer's sensitivities (positive, falling as bits rise), and the C engine classifies the first
1,000 Fashion-MNIST test images about as well as models/README.md says (loose floors well below
the measured numbers, so that only a broken model or engine trips them).
Usage: test_bundled_model.py MODEL BMX_EVAL BMX_GEN"""
import re
import subprocess
import sys

model, bmx_eval, bmx_gen = sys.argv[1:4]
DATA = "/usr/share/datasets/fashion-mnist"
FLOORS = {8: 88.0, 4: 87.0, 2: 82.0}  # percent on 1,000 images; measured numbers: models/README.md


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


info = subprocess.run([bmx_gen, "--info", model], capture_output=True, text=True)
check(info.returncode == 0 and 'model "fmnist"' in info.stdout and "8 layers" in info.stdout,
      f"the C loader accepts {model} (model \"fmnist\", 8 layers)")
for line in info.stdout.splitlines():
    m = re.search(r"layer +\d+ (\S+) .*bits ([\d ]+) +MACs.*sensitivity ([\d.e+\- ]+)$", line)
    if not m:
        continue
    bits, sens = m.group(2).split(), [float(v) for v in m.group(3).split()]
    check(len(sens) == len(bits) and all(s > 0 for s in sens)
          and all(a > b for a, b in zip(sens, sens[1:])),
          f"layer {m.group(1)}: sensitivities positive and falling with bits {sens}")

args = [bmx_eval, model, f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz",
        "--limit", "1000"]
for b in FLOORS:
    args += ["--bits", str(b)]
out = subprocess.run(args, capture_output=True, text=True)
check(out.returncode == 0, "bmx-eval runs the bundled model")
accs = [float(a) for a in re.findall(r"([\d.]+)% of 1000 images", out.stdout)]
for (b, floor), acc in zip(FLOORS.items(), accs):
    check(acc >= floor, f"uniform {b} bits: {acc:.1f}% of the first 1,000 test images >= {floor}%")
