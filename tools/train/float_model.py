#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The float32 model in a form the repository holds, and its test accuracy.

  float_model.py export FP32.pt OUT.pt     keep only what the float32 network uses
  float_model.py eval OUT.pt               top-1 on the 10,000 test images (PyTorch, float32)

A stage-0 checkpoint carries a TBN grid per layer of which the float32 network runs one row
(the (8, 8) batch-norm; the classifier's 8-bit bias): export rebuilds the same network with one
bit-width per layer and keeps exactly those tensors, so the file is the float32 model and no more
(float32, bit for bit the trained values), with its training curve. eval prints one line that
tools/model-table.sh reads.
"""
import argparse
import os
import sys

import torch

import data
from train import build, evaluate


def export(src, dst):
    ck = torch.load(src)
    full = build(ck["width"])
    full.load_state_dict(ck["state"])
    small = build(ck["width"], (8,))
    with torch.no_grad():
        for a, b in zip(small.layers, full.layers):
            a.weight.copy_(b.weight)
            if a.has_bn:
                a.tbn[0][0].load_state_dict(b.tbn[b.prev_bits.index(8)][b.bits.index(8)].state_dict())
            else:
                a.bias.copy_(b.bias[b.prev_bits.index(8)].unsqueeze(0))
    # Keep only what float32 inference reads: weights, BN parameters and statistics, the bias.
    state = {k: v for k, v in small.state_dict().items()
             if not k.endswith(("w_scale", "a_step", "num_batches_tracked"))}
    x, y = data.load("val")
    check = evaluate(full, x, y, None)[0], evaluate(load_net({"width": ck["width"], "state": state}), x, y, None)[0]
    if check[0] != check[1]:
        sys.exit(f"float_model: the exported model disagrees with the checkpoint on validation ({check})")
    tmp = dst + ".tmp"
    torch.save({"format": "bitmix-float32 1", "width": ck["width"], "state": state, "log": ck["log"],
                "args": ck["args"], "val_accuracy": check[0]}, tmp)
    os.replace(tmp, dst)
    print(f"float_model: wrote {dst} ({os.path.getsize(dst)} bytes; validation {check[0]:.2f}%, as the checkpoint)")


def load_net(ck):
    net = build(ck["width"], (8,))
    missing, unexpected = net.load_state_dict(ck["state"], strict=False)
    if unexpected or any(not k.endswith(("w_scale", "a_step", "num_batches_tracked")) for k in missing):
        raise ValueError(f"float_model: not a float32 export (missing {missing}, unexpected {unexpected})")
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("out")
    v = sub.add_parser("eval")
    v.add_argument("model")
    v.add_argument("--split", default="test", choices=("test", "val"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "export":
        export(args.checkpoint, args.out)
    else:
        net = load_net(torch.load(args.model))
        x, y = data.load(args.split)
        acc, loss = evaluate(net, x, y, None)
        print(f"float32 (PyTorch {torch.__version__}, CPU) {args.model}: {acc:.2f}% of {len(x)} images "
              f"({args.split}), loss {loss:.4f}")


if __name__ == "__main__":
    main()
