# SPDX-License-Identifier: MIT
"""The network, written once as a graph of nodes that both PyTorch (training) and the exporter
(the .bmx graph) walk, so the trained model and the served model cannot disagree in shape.

"fmnist-resnet": an 8-bit stem conv, a residual block of two 3x3 convs, a downsampling block
whose main branch is 3x3 stride 2 -> depthwise 3x3 -> pointwise 1x1 with a 1x1 stride-2
shortcut, global average pooling and an 8-bit classifier. The first and last layers stay at
8 bits (see README.md); the six layers between run at any of 2..8 bits.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from quant import BITS, QLayer


def fmnist_resnet_nodes(width, mid_bits=BITS):
    """Node list: (op, inputs, params). Layer nodes carry a 'name', their TBN producer and their
    bit-widths (MID_BITS for the six middle layers; a fixed-precision baseline has one)."""
    c1, c2, m = width, 2 * width, tuple(mid_bits)
    return [
        ("input", (), {}),
        ("conv", (0,), dict(name="stem", out_c=c1, k=3, stride=1, pad=1, bits=(8,), tbn_prev=None, first=True)),
        ("relu", (1,), {}),
        ("maxpool", (2,), dict(k=2, stride=2)),
        ("conv", (3,), dict(name="block1.conv1", out_c=c1, k=3, stride=1, pad=1, tbn_prev="stem", bits=m)),
        ("relu", (4,), {}),
        ("conv", (5,), dict(name="block1.conv2", out_c=c1, k=3, stride=1, pad=1, tbn_prev="block1.conv1", bits=m)),
        ("add", (6, 3), {}),
        ("relu", (7,), {}),
        ("conv", (8,), dict(name="block2.conv1", out_c=c2, k=3, stride=2, pad=1, tbn_prev="block1.conv2", bits=m)),
        ("relu", (9,), {}),
        ("conv", (10,), dict(name="block2.dw", out_c=c2, k=3, stride=1, pad=1, groups=c2, tbn_prev="block2.conv1", bits=m)),
        ("relu", (11,), {}),
        ("conv", (12,), dict(name="block2.pw", out_c=c2, k=1, stride=1, pad=0, tbn_prev="block2.dw", bits=m)),
        ("conv", (8,), dict(name="block2.down", out_c=c2, k=1, stride=2, pad=0, tbn_prev="block1.conv2", bits=m)),
        ("add", (13, 14), {}),
        ("relu", (15,), {}),
        ("gap", (16,), {}),
        ("linear", (17,), dict(name="fc", out_c=10, bits=(8,), tbn_prev="block2.pw", bn=False)),
    ]


def _out_hw(h, k, stride, pad):
    return (h + 2 * pad - k) // stride + 1


class GraphNet(nn.Module):
    """Runs the node list. bits: one bit-width per quantized layer (weights and activations of a
    layer share it); None runs the float32 model."""

    def __init__(self, nodes, in_shape=(28, 28, 1)):
        super().__init__()
        self.nodes = nodes
        self.layers = nn.ModuleList()
        self.layer_of_node = {}
        shapes = []
        names = {}
        for i, (op, ins, p) in enumerate(nodes):
            if op == "input":
                shapes.append(in_shape)
            elif op in ("conv", "linear"):
                h, w, c = shapes[ins[0]]
                bits = p.get("bits", BITS)
                prev = names[p["tbn_prev"]] if p["tbn_prev"] else -1
                prev_bits = self.layers[prev].bits if prev >= 0 else (8,)
                if op == "conv":
                    lay = QLayer(p["name"], "conv", c, p["out_c"], p["k"], p["stride"], p["pad"],
                                 p.get("groups", 1), bits, prev, prev_bits, p.get("first", False))
                    shapes.append((_out_hw(h, p["k"], p["stride"], p["pad"]),
                                   _out_hw(w, p["k"], p["stride"], p["pad"]), p["out_c"]))
                else:
                    lay = QLayer(p["name"], "linear", h * w * c, p["out_c"], bits=bits, tbn_prev=prev,
                                 prev_bits=prev_bits, bn=p.get("bn", True))
                    shapes.append((1, 1, p["out_c"]))
                names[p["name"]] = len(self.layers)
                self.layer_of_node[i] = len(self.layers)
                self.layers.append(lay)
            elif op == "maxpool":
                h, w, c = shapes[ins[0]]
                shapes.append((_out_hw(h, p["k"], p["stride"], 0), _out_hw(w, p["k"], p["stride"], 0), c))
            elif op == "gap":
                shapes.append((1, 1, shapes[ins[0]][2]))
            else:
                shapes.append(shapes[ins[0]])
        self.shapes = shapes

    def layer_bits(self):
        return [lay.bits for lay in self.layers]

    def forward(self, x, bits=None, fp_weights=False, fp_acts=False):
        """x: N x 1 x 28 x 28 in [0, 1]. bits: per-layer list, or None for float32."""
        vals = []
        for i, (op, ins, p) in enumerate(self.nodes):
            if op == "input":
                v = x
            elif op in ("conv", "linear"):
                li = self.layer_of_node[i]
                lay = self.layers[li]
                b = 8 if bits is None else bits[li]
                pb = 8 if lay.tbn_prev < 0 or bits is None else bits[lay.tbn_prev]
                v = lay(vals[ins[0]], b, b, pb, fp_weights=fp_weights or bits is None,
                        fp_acts=fp_acts or bits is None)
            elif op == "relu":
                v = F.relu(vals[ins[0]])
            elif op == "add":
                v = vals[ins[0]] + vals[ins[1]]
            elif op == "maxpool":
                v = F.max_pool2d(vals[ins[0]], p["k"], p["stride"])
            elif op == "gap":
                v = vals[ins[0]].mean((2, 3))
            else:
                raise ValueError(op)
            vals.append(v)
        return vals[-1]
