# SPDX-License-Identifier: MIT
"""Fashion-MNIST from Debian's dataset-fashion-mnist (IDX, gzip), as float tensors in [0, 1]
(pixel / 255, as bitmixctl feeds the engine), with the validation split carved from the
training set and the batch augmentation used in training."""
import gzip
import os

import numpy as np
import torch

DATA_DIR = "/usr/share/datasets/fashion-mnist"
VAL_SIZE = 5000  # the last 5,000 training images; never trained on, used to choose settings


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xff
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path}: not an IDX1/IDX3 ubyte file (magic 0x{magic:08x})")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes of data, the header says {dims}")
    return arr.reshape(dims)


def to_float(pixels):
    """uint8 N x 28 x 28 -> float32 N x 1 x 28 x 28, pixel / 255 in float32 as the C side."""
    x = torch.from_numpy(pixels.astype(np.float32) / np.float32(255.0))
    return x.unsqueeze(1)


def load(split, data_dir=DATA_DIR):
    """split: 'train' (55,000), 'val' (5,000), 'trainval' (60,000) or 'test' (10,000)."""
    prefix = "t10k" if split == "test" else "train"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if split == "train":
        x, y = x[:-VAL_SIZE], y[:-VAL_SIZE]
    elif split == "val":
        x, y = x[-VAL_SIZE:], y[-VAL_SIZE:]
    return to_float(x), torch.from_numpy(y.astype(np.int64))


def augment(x, gen):
    """Random 28x28 crops of the image padded by 2 (zeros) and random horizontal flips."""
    n = x.shape[0]
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    oh = torch.randint(0, 5, (n,), generator=gen)
    ow = torch.randint(0, 5, (n,), generator=gen)
    r = torch.arange(28)
    ih = (oh[:, None] + r[None, :])[:, :, None]
    iw = (ow[:, None] + r[None, :])[:, None, :]
    out = xp[torch.arange(n)[:, None, None], 0, ih, iw].unsqueeze(1)
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out
