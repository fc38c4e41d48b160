# SPDX-License-Identifier: MIT
"""Training-time quantizers and the transitional batch-norm of the bitmix trainer.

Every quantizer here computes what the C engine computes (docs/model-format.md, "Arithmetic"):
a b-bit weight is the top b bits of one stored 8-bit code, read as the middle of its bucket;
an a-bit activation is clamp(rint(x / step)) * step. Gradients go straight through the rounding
(STE) and into the steps as in LSQ (Esser et al., 2020).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

BITS = (2, 3, 4, 5, 6, 7, 8)  # every bit-width a layer may run at


def bit_index(bits, mask_bits=BITS):
    return mask_bits.index(bits)


def _grad_scale(x, scale):
    return (x - x * scale).detach() + x * scale


def _round_ste(x):
    return (torch.round(x) - x).detach() + x


def _floor_ste(x):
    return (torch.floor(x) - x).detach() + x


def positive(step):
    """Steps are used as |step| (never 0), in training and in the export alike, so that an LSQ
    update that overshoots zero cannot flip the grid."""
    return step.abs().clamp_min(1e-12)


def quantize_weight(w, s_w, bits, grad_scale=1.0):
    """The engine's weight at BITS: code c = clamp(floor(w / s_w), -128, 127) and its top BITS
    bits k = c >> (8 - bits), worth (k + 0.5) * s_w * 2^(8 - bits). floor(floor(y) / 2^n) equals
    floor(y / 2^n), so quantizing at the coarse step directly gives the same k."""
    shape = (-1,) + (1,) * (w.dim() - 1)
    s = positive(_grad_scale(s_w, grad_scale)).view(shape) * float(2 ** (8 - bits))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    k = torch.clamp(_floor_ste(w / s), lo, hi)
    return (k + 0.5) * s


def weight_codes(w, s_w):
    """The stored 8-bit codes (int8 numpy-ready tensor), computed in float32 as in training."""
    shape = (-1,) + (1,) * (w.dim() - 1)
    c = torch.clamp(torch.floor(w.float() / positive(s_w.float()).view(shape)), -128, 127)
    return c.to(torch.int8)


def quantize_act(x, step, bits, grad_scale=1.0):
    """Unsigned activation codes 0..2^bits-1 (every quantized layer here follows a ReLU)."""
    s = positive(_grad_scale(step, grad_scale))
    q = torch.clamp(x / s, 0, 2 ** bits - 1)
    return _round_ste(q) * s


class QLayer(nn.Module):
    """A CONV2D or LINEAR layer with per-output-channel weight steps, one learned activation
    step per bit-width, and one batch-norm per (producing layer's bits, this layer's bits)."""

    def __init__(self, name, op, in_c, out_c, k=0, stride=1, pad=0, groups=1, bits=BITS,
                 tbn_prev=-1, prev_bits=(8,), first=False, bn=True):
        super().__init__()
        self.name, self.op, self.in_c, self.out_c = name, op, in_c, out_c
        self.k, self.stride, self.pad, self.groups = k, stride, pad, groups
        self.bits, self.tbn_prev, self.prev_bits, self.first = tuple(bits), tbn_prev, tuple(prev_bits), first
        if op == "conv":
            self.weight = nn.Parameter(torch.empty(out_c, in_c // groups, k, k))
            nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        else:
            self.weight = nn.Parameter(torch.empty(out_c, in_c))
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.w_scale = nn.Parameter(torch.ones(out_c))
        # The input image is pixels / 255: its 8-bit step is fixed at 1/255, not learned.
        self.a_step = nn.Parameter(torch.ones(len(self.bits)), requires_grad=not first)
        self.has_bn = bn
        if bn:
            self.tbn = nn.ModuleList(nn.ModuleList(nn.BatchNorm2d(out_c) for _ in self.bits)
                                     for _ in self.prev_bits)
        else:  # the classifier: a bias per producing layer's bits, scale 1
            self.bias = nn.Parameter(torch.zeros(len(self.prev_bits), out_c))
        self.steps_ready = False

    def init_steps(self, x):
        """Initial steps from the first batch: activations as LSQ, 2 mean|x| / sqrt(Qp); weights
        so that the 8-bit codes just cover each channel (no clipping at 8 bits), which puts
        the 2-bit thresholds at half the largest weight: a start every bit-width can use."""
        with torch.no_grad():
            w = self.weight.detach()
            per_out = w.reshape(self.out_c, -1).abs().amax(1)
            self.w_scale.copy_(per_out.clamp_min(1e-8) / 128.0)
            for i, b in enumerate(self.bits):
                if self.first:
                    self.a_step[i] = 1.0 / 255.0
                else:
                    self.a_step[i] = 2 * x.abs().mean() / math.sqrt(2 ** b - 1)
        self.steps_ready = True

    def forward(self, x, w_bits, a_bits, prev_bits, fp_weights=False, fp_acts=False):
        if not self.steps_ready:
            self.init_steps(x)
        if not fp_acts:
            ai = self.bits.index(a_bits)
            g = 1.0 / math.sqrt(x[0].numel() * (2 ** a_bits - 1))
            x = quantize_act(x, self.a_step[ai], a_bits, g)
        if fp_weights:
            w = self.weight
        else:
            g = 1.0 / math.sqrt(self.weight[0].numel() * (2 ** (w_bits - 1)))
            w = quantize_weight(self.weight, self.w_scale, w_bits, g)
        if self.op == "conv":
            y = F.conv2d(x, w, None, self.stride, self.pad, 1, self.groups)
        else:
            y = F.linear(x.flatten(1), w)
        p = self.prev_bits.index(prev_bits) if len(self.prev_bits) > 1 else 0
        if self.has_bn:
            return self.tbn[p][self.bits.index(w_bits)](y)
        return y + self.bias[p]
