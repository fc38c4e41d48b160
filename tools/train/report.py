#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The trainer's record of a bundled model (models/NAME.json): the float32 model's test accuracy
(PyTorch; the engine has no float path, so this is the one number of the table not measured by
the C engine), the validation curves of every run, the sensitivity check, the settings.

  report.py OUTDIR --out models/fmnist-resnet.json
"""
import argparse
import json
import os

import torch

import data
from export import load_checkpoint
from train import build, evaluate


def run_record(c):
    """Curves and settings of one run, with the epochs each stage had and the segments (calls of
    train.py, resumed from the checkpoint) it ran in."""
    rec = {"log": c["log"], "args": c["args"]}
    for k in ("stage_epochs", "segments", "kd"):
        if k in c:
            rec[k] = c[k]
    if "stage_epochs" not in c:  # runs from before the record kept it: count the curve
        rec["stage_epochs"] = {}
        for e in c["log"]:
            if "stage" in e:
                rec["stage_epochs"][str(e["stage"])] = rec["stage_epochs"].get(str(e["stage"]), 0) + 1
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", help="the directory train_all.sh wrote")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ck = torch.load(os.path.join(args.outdir, "fp32.pt"))
    net = build(ck["width"])
    net.load_state_dict(ck["state"])
    xt, yt = data.load("test")
    fp32_test, _ = evaluate(net, xt, yt, None)
    rep = {"fp32_test_accuracy": fp32_test, "width": ck["width"], "runs": {"fp32": run_record(ck)}}
    for run in ("meta", "w4", "w2"):
        path = os.path.join(args.outdir, run + ".pt")
        if os.path.exists(path):
            c = torch.load(path)
            rep["runs"][run] = dict(run_record(c), mid_bits=c["mid_bits"])
    kd = os.path.join(args.outdir, "kd.json")
    if os.path.exists(kd):
        with open(kd) as f:
            rep["distillation_choice"] = json.load(f)
    sens = os.path.join(args.outdir, "sensitivity.json")
    if os.path.exists(sens):
        with open(sens) as f:
            rep["sensitivity"] = json.load(f)
    with open(args.out, "w") as f:
        json.dump(rep, f, indent=1)
    print(f"fp32 (PyTorch) test accuracy: {fp32_test:.2f}%")


if __name__ == "__main__":
    main()
