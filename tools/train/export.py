#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Export a trained checkpoint for bmx-pack (tools/bmx_pack.c), which lays out the .bmx with the
C writer: a manifest (the graph, one node per line) and a blob of each layer's arrays in the
file's own layout (int8 OHWI codes, float32 w_scale, a_step, folded TBN, sensitivity).

  export.py CKPT --sensitivity S.json --out DIR [--name fmnist] [--pack build/tools/bmx-pack]

writes DIR/model.txt and DIR/model.bin and, with --pack, DIR/NAME.bmx.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

from model import GraphNet, fmnist_resnet_nodes
from quant import positive, weight_codes


def load_checkpoint(path):
    ck = torch.load(path)
    net = GraphNet(fmnist_resnet_nodes(ck["width"], tuple(ck["mid_bits"])))
    net.load_state_dict(ck["state"])
    for lay in net.layers:
        lay.steps_ready = True
    net.eval()
    return net, ck


def mask_of(bits):
    return sum(1 << b for b in bits)


def folded_tbn(lay):
    """[P][nbits][2][out_c]: g = gamma / sqrt(var + eps), beta = bias - mean * g (float64, then
    float32), so that the engine's acc * (s_a * s_w * 2^(7-w) * g) + beta is the trained BN."""
    rows = []
    for p in range(len(lay.prev_bits)):
        per_w = []
        for wi in range(len(lay.bits)):
            if lay.has_bn:
                bn = lay.tbn[p][wi]
                g = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                beta = bn.bias.double() - bn.running_mean.double() * g
            else:
                g = torch.ones(lay.out_c, dtype=torch.float64)
                beta = lay.bias[p].double()
            per_w.append(torch.stack([g, beta]))
        rows.append(torch.stack(per_w))
    return torch.stack(rows).detach().numpy().astype(np.float32)


def layer_arrays(lay, sensitivity):
    codes = weight_codes(lay.weight.detach(), lay.w_scale.detach())
    if lay.op == "conv":
        codes = codes.permute(0, 2, 3, 1)  # OIHW -> OHWI
    w_scale = positive(lay.w_scale.detach()).numpy().astype(np.float32)
    a_step = positive(lay.a_step.detach()).numpy().astype(np.float32)
    if (w_scale <= 0).any() or (a_step <= 0).any():
        raise ValueError(f"layer {lay.name}: a learned step is not positive")
    sens = np.asarray(sensitivity if sensitivity is not None else [0.0] * len(lay.bits), np.float32)
    return [codes.contiguous().numpy().astype(np.int8), w_scale, a_step, folded_tbn(lay), sens]


def manifest_lines(net, name):
    masks = [mask_of(lay.bits) for lay in net.layers]
    model_mask = 0
    for m in masks:
        model_mask |= m
    lines = ["bmx-pack 1", f"model {name} 28 28 1 0x{model_mask:x}"]
    for i, (op, ins, p) in enumerate(net.nodes):
        inputs = "in=" + ",".join(str(x) for x in ins)
        if op == "input":
            continue
        if op in ("conv", "linear"):
            lay = net.layers[net.layer_of_node[i]]
            prev = net.layers[lay.tbn_prev].name if lay.tbn_prev >= 0 else "-"
            geo = f"k={lay.k} stride={lay.stride} pad={lay.pad} groups={lay.groups} " if op == "conv" else ""
            lines.append(f"{'conv2d' if op == 'conv' else 'linear'} {inputs} out_c={lay.out_c} {geo}"
                         f"name={lay.name} mask=0x{mask_of(lay.bits):x} tbn_prev={prev} signed=0")
        elif op == "maxpool":
            lines.append(f"maxpool {inputs} k={p['k']} stride={p['stride']} pad=0")
        elif op == "gap":
            lines.append(f"global_avgpool {inputs}")
        else:
            lines.append(f"{op} {inputs}")
    lines.append(f"output {len(net.nodes) - 1}")
    return lines


def export(net, out_dir, name, sensitivity=None):
    """Write OUT_DIR/model.txt and OUT_DIR/model.bin; SENSITIVITY maps layer name -> [nbits]."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.txt"), "w") as f:
        f.write("\n".join(manifest_lines(net, name)) + "\n")
    with open(os.path.join(out_dir, "model.bin"), "wb") as f:
        for lay in net.layers:
            for arr in layer_arrays(lay, (sensitivity or {}).get(lay.name)):
                f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def pack(tool, out_dir, bmx_path):
    subprocess.run([tool, os.path.join(out_dir, "model.txt"), os.path.join(out_dir, "model.bin"),
                    "-o", bmx_path], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True, help="directory for model.txt, model.bin (and NAME.bmx)")
    ap.add_argument("--name", default="fmnist")
    ap.add_argument("--sensitivity", help="JSON from sensitivity.py (default: zeros)")
    ap.add_argument("--pack", help="the bmx-pack executable: also write OUT/NAME.bmx")
    args = ap.parse_args()
    net, _ = load_checkpoint(args.checkpoint)
    sens = None
    if args.sensitivity:
        with open(args.sensitivity) as f:
            sens = {k: v["sensitivity"] for k, v in json.load(f)["layers"].items()}
    export(net, args.out, args.name, sens)
    if args.pack:
        pack(args.pack, args.out, os.path.join(args.out, args.name + ".bmx"))
        print(f"export: wrote {os.path.join(args.out, args.name + '.bmx')}", file=sys.stderr)


if __name__ == "__main__":
    main()
