#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""QBitOpt-style per-layer sensitivities of a trained meta-model, and their check.

For layer l at b bits the sensitivity is the second-order estimate of the loss increase,
0.5 * sum_i F_ii * delta_i(b)^2, over the layer's weights (delta = Q_b(w) - w) and over its input
activations (delta = Q_b(x) - x, per sample), with F the diagonal of the empirical Fisher
information (mean squared per-sample gradient) at the all-8-bit operating point, measured on
training images. The check measures, on the validation split, the loss increase of running that
one layer at b bits with every other layer at 8, and reports Spearman's rank correlation.

With --measure loss the exported sensitivity is the measured validation loss increase itself
(issue 20's alternative): measured on the first half of the validation split, made positive and
strictly falling with bits (a layer never gets cheaper in loss by losing bits: the running
maximum from 8 bits down, then a tiny floor), and checked against the increase measured on the
second half, so that the rank correlation is not the measurement compared with itself.

  sensitivity.py CKPT --out sens.json [--samples 512] [--measure fisher|loss]
"""
import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

import data
from export import load_checkpoint
from quant import quantize_act, quantize_weight
from train import evaluate


def fisher_terms(net, x, y):
    """Per layer and bit-width: (weight term, activation term) of 0.5 * sum F delta^2."""
    base = [lay.bits[-1] for lay in net.layers]  # 8 everywhere
    inputs = {}

    def hook(mod, args):
        if args[0].requires_grad:  # not the image: pixels / 255 are exact 8-bit codes
            args[0].retain_grad()
            inputs[mod.name] = args[0]

    handles = [lay.register_forward_pre_hook(hook) for lay in net.layers]
    fw = {lay.name: torch.zeros_like(lay.weight) for lay in net.layers}
    act = {lay.name: np.zeros(len(lay.bits)) for lay in net.layers}
    for i in range(len(x)):
        net.zero_grad()
        loss = F.cross_entropy(net(x[i:i + 1], base), y[i:i + 1])
        loss.backward()
        for lay in net.layers:
            fw[lay.name] += lay.weight.grad.detach() ** 2
            if lay.name not in inputs:
                continue
            xin, g2 = inputs[lay.name].detach(), inputs[lay.name].grad.detach() ** 2
            for bi, b in enumerate(lay.bits):
                d = quantize_act(xin, lay.a_step[bi].detach(), b) - xin
                act[lay.name][bi] += 0.5 * float((g2 * d * d).sum())
    for h in handles:
        h.remove()
    out = {}
    with torch.no_grad():
        for lay in net.layers:
            f = fw[lay.name] / len(x)
            wt = [0.5 * float((f * (quantize_weight(lay.weight, lay.w_scale, b) - lay.weight) ** 2).sum())
                  for b in lay.bits]
            out[lay.name] = (wt, list(act[lay.name] / len(x)))
    return out


def spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", type=int, default=512, help="training images for the Fisher")
    ap.add_argument("--val", type=int, default=5000, help="validation images for the check")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--measure", choices=("fisher", "loss"), default="fisher",
                    help="what the exported sensitivity is: the Fisher estimate (default) or the "
                         "measured validation loss increase (first half; checked on the second)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net, _ = load_checkpoint(args.checkpoint)
    xs, ys = data.load("train")
    g = torch.Generator().manual_seed(7)
    idx = torch.randperm(len(xs), generator=g)[:args.samples]
    terms = fisher_terms(net, xs[idx], ys[idx])

    xv, yv = data.load("val")
    xv, yv = xv[:args.val], yv[:args.val]
    base = [lay.bits[-1] for lay in net.layers]
    halves = [(xv, yv)] if args.measure == "fisher" else [(xv[:len(xv) // 2], yv[:len(yv) // 2]),
                                                           (xv[len(xv) // 2:], yv[len(yv) // 2:])]
    base_loss = [evaluate(net, x, y, base)[1] for x, y in halves]
    layers, pred, meas = {}, [], []
    for li, lay in enumerate(net.layers):
        wt, at = terms[lay.name]
        dls = []
        for (x, y), bl in zip(halves, base_loss):
            dl = []
            for b in lay.bits:
                bits = list(base)
                bits[li] = b
                dl.append(evaluate(net, x, y, bits)[1] - bl if b != base[li] else 0.0)
            dls.append(dl)
        if args.measure == "fisher":
            sens = [w + a for w, a in zip(wt, at)]
        else:
            sens, run = [0.0] * len(lay.bits), 0.0
            for i in range(len(lay.bits) - 1, -1, -1):  # from the most bits down
                run = max(dls[0][i], run * (1 + 1e-3), 1e-6)
                sens[i] = run
        dl = dls[-1]  # the check's measurement (second half with --measure loss)
        for b, sv, d in zip(lay.bits, sens, dl):
            if b != base[li]:
                pred.append(sv)
                meas.append(d)
        layers[lay.name] = {"bits": list(lay.bits), "sensitivity": sens, "weight_term": wt,
                            "activation_term": at, "measured_loss_increase": dl}
        if args.measure == "loss":
            layers[lay.name]["measured_loss_increase_first_half"] = dls[0]
        print(lay.name, " ".join(f"{b}:{sv:.4g}/{d:.4g}" for b, sv, d in zip(lay.bits, sens, dl)), flush=True)
    rho = spearman(np.array(pred), np.array(meas))
    print(f"Spearman rank correlation, sensitivity vs measured loss increase, {len(pred)} "
          f"(layer, bits) pairs below 8 bits: {rho:.3f}")
    with open(args.out, "w") as f:
        json.dump({"layers": layers, "spearman": rho, "pairs": len(pred), "base_val_loss": base_loss[-1],
                   "measure": args.measure, "fisher_samples": args.samples,
                   "val_images": len(halves[-1][0])}, f, indent=1)


if __name__ == "__main__":
    main()
