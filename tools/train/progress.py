#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The state of a (possibly still running) train_all.sh directory as markdown: per run, whether
it finished, the epochs done per stage out of those planned, the seconds per epoch, and the
validation curve so far. Reads the finished NAME.pt or the running NAME.pt.ckpt (written
atomically, so reading while the training runs is safe).

  progress.py OUTDIR [--out models/training-progress.md]
"""
import argparse
import glob
import json
import os
import statistics
import time

import torch


def load(path):
    if os.path.exists(path):
        c = torch.load(path)
        return "finished", c["log"], c["args"], c.get("segments", [])
    if os.path.exists(path + ".ckpt"):
        c = torch.load(path + ".ckpt")
        return "running or stopped (resumable)", c["log"], c["args"], c.get("segments", [])
    return None


def section(name, path):
    got = load(path)
    if got is None:
        return [f"### {name}", "", "not started", ""]
    status, log, args, segments = got
    planned = [int(e) for e in args["epochs"].split(",")]
    stages = [0] if args["mode"] == "fp32" else [1, 2, 3]
    done = {s: sum(1 for e in log if e.get("stage") == s) for s in stages}
    secs = [e["seconds"] for e in log if "seconds" in e]
    kd = f", distillation alpha {args.get('kd_alpha', 0)} T {args.get('kd_temp', 1)}" if args["mode"] != "fp32" else ""
    lines = [f"### {name}", "",
             f"{status}; epochs done / planned per stage: " +
             ", ".join(f"stage {s} {done[s]}/{n}" for s, n in zip(stages, planned)) +
             (f"; seconds per epoch median {statistics.median(secs):.0f} (min {min(secs):.0f}, max {max(secs):.0f})" if secs else "") +
             f"; {len(segments)} segment(s){kd}", ""]
    keys = sorted({k for e in log for k in e if k.startswith("val_")}, key=lambda k: (k != "val_fp32", -int(k[5:]) if k[5:].isdigit() else 0))
    lines += ["| stage | epoch | train loss | s | " + " | ".join(k[4:] for k in keys) + " |",
              "| --- | --- | --- | --- |" + " --- |" * len(keys)]
    for e in log:
        st = e.get("stage", "recal")
        lines.append(f"| {st} | {e.get('epoch', '')} | {e['train_loss']:.4f} | {e['seconds']:.0f} | " if "train_loss" in e
                     else f"| {st} | | | | ")
        lines[-1] += " | ".join(f"{e[k]:.2f}" if k in e else "" for k in keys) + " |"
    return lines + [""]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--out")
    a = ap.parse_args()
    lines = ["# Training progress", "",
             f"Training directory `{a.outdir}` (outside git; checkpoints survive between sessions, "
             f"processes do not), read {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
             "`tools/train/progress.py`; validation split only. Resume (or start) with "
             f"`nice -n 19 tools/train/train_all.sh {a.outdir}`: finished runs are skipped, running ones "
             "continue from their last epoch's checkpoint. Schedule and per-epoch times: "
             "`tools/train/README.md`, \"Schedule\".", ""]
    lines += section("float32 (stage 0)", os.path.join(a.outdir, "fp32.pt"))
    kd = os.path.join(a.outdir, "kd.json")
    lines += ["### distillation choice (one epoch of stage 2 per candidate)", ""]
    if os.path.exists(kd):
        r = json.load(open(kd))
        lines += [f"chosen: alpha {r['alpha']}, T {r['temperature']} ({r['rule']})", "",
                  "| alpha | T | val 8 | val 4 | val 2 | mean |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {c['alpha']} | {c['temperature']} | {c['val_w8']:.2f} | {c['val_w4']:.2f} | {c['val_w2']:.2f} | "
                  f"{c['score']:.2f} |" for c in r["candidates"].values()]
        lines.append("")
    else:
        trials = sorted(glob.glob(os.path.join(a.outdir, "kd-select", "*.pt")))
        lines += [f"not made yet ({len(trials)} of 5 trials finished)", ""]
    for run, title in (("meta", "meta-model (stages 1-3)"), ("w4", "dedicated 4-bit baseline"),
                       ("w2", "dedicated 2-bit baseline")):
        lines += section(title, os.path.join(a.outdir, run + ".pt"))
    text = "\n".join(lines)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
