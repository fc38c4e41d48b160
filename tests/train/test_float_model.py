#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The shipped float32 model (models/fmnist-resnet-fp32.pt) loads as the float32 network and
classifies the validation split exactly as its export recorded (so the table's float32 row,
measured on the test set by tools/model-table.sh, comes from this very model).
Usage: test_float_model.py SOURCE_ROOT MODEL"""
import os
import sys

import torch

src, model = sys.argv[1:3]
sys.path.insert(0, os.path.join(src, "tools", "train"))
import data  # noqa: E402
from float_model import load_net  # noqa: E402
from train import evaluate  # noqa: E402

torch.set_num_threads(1)
ck = torch.load(model)
x, y = data.load("val")
acc = evaluate(load_net(ck), x, y, None)[0]
ok = ck["format"] == "bitmix-float32 1" and acc == ck["val_accuracy"]
print(("ok   " if ok else "FAIL ") + f"{os.path.basename(model)}: validation {acc:.2f}% "
      f"(recorded at export: {ck['val_accuracy']:.2f}%)")
sys.exit(0 if ok else 1)
