#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The trainer's view of the bundled model's adaptive sections agrees with the C engine's: the
CASCADE and POLICY sections are read here straight from the file as docs/model-format.md lays
them out, the decisions are recomputed with tools/train/adaptive.py's functions from the engine's
dumped outputs and features (bmx-adapt dump), and must give exactly the per-configuration counts
and accuracy that bmx-adapt eval's own runs report, on 1,000 validation images.
Usage: test_adaptive_agreement.py SOURCE_ROOT MODEL BMX_ADAPT"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

root, model, bmx_adapt = sys.argv[1:4]
sys.path.insert(0, os.path.join(root, "tools", "train"))
import adaptive  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
IMAGES = [f"{DATA}/train-images-idx3-ubyte.gz", f"{DATA}/train-labels-idx1-ubyte.gz"]
RANGE = ["--first", "55000", "--count", "1000"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


def sections(raw):
    table, count = struct.unpack_from("<QI", raw, 24)
    out = {}
    for i in range(count):
        kind, _flags, off, size, _r = struct.unpack_from("<IIQQQ", raw, table + 32 * i)
        out[kind] = raw[off:off + size]
    return out


raw = open(model, "rb").read()
sec = sections(raw)
check(5 in sec and 6 in sec, "the model has CASCADE (5) and POLICY (6) sections")
n, layers, conf = struct.unpack_from("<III", sec[5], 0)
thresholds = struct.unpack_from("<7f", sec[5], 20)[:n - 1]
cascade_bits = np.frombuffer(sec[5], np.uint8, n * layers, 64).reshape(n, layers)
pn, _, feature_node, nf = struct.unpack_from("<IIII", sec[6], 0)
(pthreshold,) = struct.unpack_from("<f", sec[6], 16)
policy_bits = np.frombuffer(sec[6], np.uint8, pn * layers, 64).reshape(pn, layers)
at = (64 + pn * layers + 3) & ~3
weights = np.frombuffer(sec[6], np.float32, (pn - 1) * nf, at).reshape(pn - 1, nf)
bias = np.frombuffer(sec[6], np.float32, pn - 1, at + 4 * (pn - 1) * nf)

specs = [",".join(map(str, c)) for c in cascade_bits] + [",".join(map(str, c)) for c in policy_bits]
with tempfile.TemporaryDirectory() as tmp:
    cmd = [bmx_adapt, "dump", model, *IMAGES, *RANGE, "--out", tmp, "--feature-node",
           str(feature_node)]
    for s in specs:
        cmd += ["--config", s]
    subprocess.run(cmd, check=True, capture_output=True)
    meta = json.load(open(os.path.join(tmp, "meta.json")))
    count = meta["count"]
    outputs = np.fromfile(os.path.join(tmp, "outputs.f32"), np.float32).reshape(len(specs), count, -1)
    labels = np.fromfile(os.path.join(tmp, "labels.u8"), np.uint8)
    feats = np.fromfile(os.path.join(tmp, "features.f32"), np.float32).reshape(count, nf)
    ev = subprocess.run([bmx_adapt, "eval", model, *IMAGES, *RANGE, "cascade", "policy"],
                        check=True, capture_output=True, text=True).stdout
rows = {f[0]: f for f in (line.split("\t") for line in ev.splitlines() if not line.startswith("#"))}

# The cascade, decided here as bmx_adaptive_run() decides it.
kind = {1: "max_prob", 2: "margin"}[conf]
c = adaptive.confidence(kind, outputs[:n])
final = np.zeros(count, int)
for level, t in enumerate(thresholds):
    esc = (final == level) & (c[level] < np.float32(t))
    final[esc] = level + 1
counts = [int((final == k).sum()) for k in range(8)]
acc = 100.0 * (outputs[final, np.arange(count)].argmax(-1) == labels).mean()
check(rows["cascade"][7] == ",".join(map(str, counts)),
      f"cascade: configurations {counts[:n]} here, {rows['cascade'][7]} in C")
check(rows["cascade"][1] == f"{acc:.2f}", f"cascade: accuracy {acc:.2f}% here and in C")

# The policy: the same scores in the same order, the same choices.
scores = adaptive.policy_scores(weights, bias, feats)
choice = adaptive.policy_choice(scores, pthreshold)
counts = [int((choice == k).sum()) for k in range(8)]
acc = 100.0 * (outputs[n + choice, np.arange(count)].argmax(-1) == labels).mean()
check(rows["policy"][7] == ",".join(map(str, counts)),
      f"policy: choices {counts[:pn]} here, {rows['policy'][7]} in C")
check(rows["policy"][1] == f"{acc:.2f}", f"policy: accuracy {acc:.2f}% here and in C")
