#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch's quantized int8 engine on the shapes of bitmix's bench models (bench/models).

Builds the "fmnist" and "resnet18" architectures of tools/bmx_arch.c layer for layer (the
same convolutions, strides, pads, groups, residual adds and pools, random weights), quantizes
them with FX graph mode post-training quantization (int8 weights and activations, calibrated on
random inputs) for each of PyTorch's x86 int8 backends ('onednn', and 'fbgemm', PyTorch's own
default on x86), and times batch-1 inference with N threads.
Prints one JSON object per model and backend: {"arch", "backend", "threads", "ms", "runs"}.
Usage: /usr/bin/python3 bench/torch_models.py [--threads N] [--backends onednn,fbgemm]
       [--runs-fmnist N] [--runs-resnet18 N]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx


class Fmnist(nn.Module):
    """tools/bmx_arch.c build_fmnist(): 28x28x1 -> 10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, 1, 1)
        self.c1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.c2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.c3 = nn.Conv2d(16, 32, 3, 2, 1)
        self.dw = nn.Conv2d(32, 32, 3, 1, 1, groups=32)
        self.pw = nn.Conv2d(32, 32, 1)
        self.down = nn.Conv2d(16, 32, 1, 2, 0)
        self.fc = nn.Linear(32, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.stem(x))
        b1 = self.relu(self.c2(self.relu(self.c1(x))) + x)
        y = self.relu(self.pw(self.relu(self.dw(self.relu(self.c3(b1))))))
        b2 = self.relu(y + self.down(b1))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(b2, 1), 1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.down = nn.Conv2d(cin, cout, 1, stride, 0) if stride != 1 else None
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.c2(self.relu(self.c1(x)))
        return self.relu(y + (self.down(x) if self.down is not None else x))


class Resnet18(nn.Module):
    """tools/bmx_arch.c build_resnet18(): 224x224x3 -> 1000 (BN folded, as in bitmix)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 7, 2, 3)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for s, width in enumerate((64, 128, 256, 512)):
            for b in range(2):
                layers.append(Block(cin, width, 2 if s > 0 and b == 0 else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.layers(self.pool(self.relu(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def quantized(model, shape, backend):
    torch.backends.quantized.engine = backend
    example = (torch.rand(*shape),)
    prepared = prepare_fx(model.eval(), get_default_qconfig_mapping(backend), example)
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.rand(*shape))
    return convert_fx(prepared)


def time_model(model, shape, runs):
    x = torch.rand(*shape)
    times = []
    with torch.no_grad():
        for _ in range(3):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backends", default="onednn,fbgemm")
    ap.add_argument("--runs-fmnist", type=int, default=200)
    ap.add_argument("--runs-resnet18", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    backends = [b for b in args.backends.split(",")
                if b in torch.backends.quantized.supported_engines]
    for arch, model, shape, runs in (("fmnist", Fmnist(), (1, 1, 28, 28), args.runs_fmnist),
                                     ("resnet18", Resnet18(), (1, 3, 224, 224), args.runs_resnet18)):
        for backend in backends:
            q = quantized(model, shape, backend)
            ms = time_model(q, shape, runs) * 1e3
            print(json.dumps({"arch": arch, "backend": backend, "threads": args.threads,
                              "torch": torch.__version__, "ms": round(ms, 4), "runs": runs}),
                  flush=True)


if __name__ == "__main__":
    main()
