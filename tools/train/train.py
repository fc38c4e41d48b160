#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The bitmix trainer: Bit-Mixer meta-quantization of the Fashion-MNIST residual CNN.

  train.py fp32  --out fp32.pt                     stage 0: the float32 model (and the init)
  train.py meta  --init fp32.pt --out meta.pt      stages 1-3: the meta-quantized model
  train.py fixed --bits 4 --init fp32.pt --out w4.pt   the same recipe at one fixed precision

Stage 1 quantizes activations only (one bit-width per iteration), stage 2 weights and
activations at one bit-width for the whole network per iteration, stage 3 random per-layer
bit-widths per iteration. With --kd-alpha > 0 every quantized iteration (whatever bit-widths it
sampled) is distilled from the float32 teacher (--teacher, default --init): the loss is
alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * cross-entropy.

Resumable: every epoch the run's whole state (model, optimizer, scheduler, stage and epoch, RNG
states, curves) goes to OUT.ckpt (written to a temporary file and renamed, so a kill leaves the
previous epoch's checkpoint), and a later call with the same arguments resumes from it and
gives the same result as an uninterrupted run. README.md gives the choices and why.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

import data
from model import GraphNet, fmnist_resnet_nodes
from quant import BITS


def build(width, mid_bits=BITS):
    return GraphNet(fmnist_resnet_nodes(width, mid_bits))


def param_groups(net, wd):
    decay, rest = [], []
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        (decay if name.endswith(".weight") and p.dim() > 1 else rest).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


def evaluate(net, x, y, bits, batch=128):
    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = net(x[i:i + batch], bits)
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    net.train()
    return 100.0 * correct / len(x), loss / len(x)


def sample_bits(net, stage, fixed, rng):
    """Per-layer bits for one iteration (layers that allow one bit-width keep it)."""
    allowed = net.layer_bits()
    if fixed:
        return [b[0] for b in allowed], stage == 1, False
    if stage == 3 and rng.random() >= 0.25:  # 3/4 of iterations mixed, 1/4 uniform
        return [b[0] if len(b) == 1 else rng.choice(b) for b in allowed], False, False
    u = rng.choice(BITS)
    return [b[0] if len(b) == 1 else u for b in allowed], stage == 1, False


def save_atomic(obj, path):
    """torch.save to PATH.tmp, flushed to disk, then renamed over PATH: a kill at any moment
    leaves either the old file or the new one, never a torn one."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def distill_loss(out, yb, t_out, alpha, temp):
    """alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y); alpha 0: CE."""
    hard = F.cross_entropy(out, yb)
    if t_out is None or alpha == 0:
        return hard
    soft = F.kl_div(F.log_softmax(out / temp, 1), F.log_softmax(t_out / temp, 1), reduction="batchmean",
                    log_target=True) * (temp * temp)
    return alpha * soft + (1 - alpha) * hard if alpha < 1 else soft


class Checkpointer:
    """OUT.ckpt: the whole training state after every epoch, and the resume point."""

    def __init__(self, args, net, log):
        self.path = args.out + ".ckpt"
        self.args, self.net, self.log = args, net, log
        self.state = None
        self.segments = []
        if os.path.exists(self.path):
            self.state = torch.load(self.path)
            keep = ("mode", "bits", "width", "lr", "batch", "wd", "wd_q", "subset", "seed", "kd_alpha", "kd_temp")
            old = self.state["args"]
            diff = [k for k in keep if old.get(k) != vars(args).get(k)]
            if diff:
                sys.exit(f"train: {self.path} was written with other settings ({', '.join(diff)}): "
                         "remove it or use the same arguments")
            if old["epochs"] != args.epochs:
                print(f"train: resuming {self.path} (epochs {old['epochs']}) with --epochs {args.epochs}: "
                      "the cosine schedule of the running stage changes", file=sys.stderr)
            net.load_state_dict(self.state["model"])
            for lay in net.layers:
                lay.steps_ready = True
            log[:] = self.state["log"]
            self.segments = self.state["segments"]
            torch.set_rng_state(self.state["torch_rng"])
            print(f"train: resuming from {self.path} at stage {self.state['stage']}, "
                  f"{self.state['epoch']} epochs done in it", file=sys.stderr)
        self.segments.append({"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "from": [self.state["stage"], self.state["epoch"]] if self.state else [None, 0],
                              "epochs": 0})

    def done_in(self, stage):
        """Epochs of STAGE already done (a later stage in the checkpoint: all of them)."""
        if self.state is None or self.state["stage"] < stage:
            return 0
        return self.state["epoch"] if self.state["stage"] == stage else math.inf

    def save(self, stage, epoch, opt, sched, gen, rng):
        self.segments[-1]["epochs"] += 1
        self.segments[-1]["to"] = [stage, epoch]
        self.state = {"args": vars(self.args), "stage": stage, "epoch": epoch, "model": self.net.state_dict(),
                      "opt": opt.state_dict(), "sched": sched.state_dict(), "gen": gen.get_state(),
                      "rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "log": self.log,
                      "segments": self.segments}
        save_atomic(self.state, self.path)


def run_stage(net, args, stage, epochs, lr, xs, ys, xv, yv, log, ckpt, fixed=None, teacher=None):
    done = ckpt.done_in(stage)
    if done >= epochs:
        return
    gen = torch.Generator().manual_seed(args.seed + stage)
    rng = random.Random(args.seed + 100 * stage)
    opt = torch.optim.SGD(param_groups(net, args.wd if stage == 0 else args.wd_q), lr=lr,
                          momentum=0.9, nesterov=True)
    steps = epochs * math.ceil(len(xs) / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    if done:
        st = ckpt.state
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        gen.set_state(st["gen"])
        rng.setstate(st["rng"])
    net.train()
    for ep in range(done, epochs):
        if args.stop_after is not None and ckpt.segments[-1]["epochs"] >= args.stop_after:
            print(f"train: stopping after {args.stop_after} epochs (--stop-after)", file=sys.stderr)
            sys.exit(3)
        t0 = time.time()
        perm = torch.randperm(len(xs), generator=gen)
        total = 0.0
        for i in range(0, len(xs), args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = data.augment(xs[idx], gen), ys[idx]
            if stage == 0:
                out = net(xb, None)
            else:
                bits, fp_w, _ = sample_bits(net, stage, fixed, rng)
                out = net(xb, bits, fp_weights=fp_w)
            t_out = None
            if teacher is not None and args.kd_alpha > 0:
                with torch.no_grad():
                    t_out = teacher(xb, None)
            loss = distill_loss(out, yb, t_out, args.kd_alpha, args.kd_temp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        entry = {"stage": stage, "epoch": ep + 1, "train_loss": total / len(xs), "seconds": time.time() - t0}
        if stage == 0:
            entry["val_fp32"] = evaluate(net, xv, yv, None)[0]
        else:
            for b in ([fixed] if fixed else (8, 4, 2)):
                entry[f"val_w{b}"] = evaluate(net, xv, yv, [l[0] if len(l) == 1 else b for l in net.layer_bits()])[0]
        log.append(entry)
        print(json.dumps(entry), flush=True)
        ckpt.save(stage, ep + 1, opt, sched, gen, rng)


def recalibrate(net, xs, fixed, seed, batches=600, batch=128):
    """Re-estimate every TBN's running statistics after training (no weights change). During
    training a row's running average only moves on the iterations that use it while the weights
    keep moving, so rarely used rows lag behind; here each row averages (momentum None) over all
    the batches that use it: 8 per uniform bit-width, then random per-layer configurations."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    allowed = net.layer_bits()
    configs = [[b[0] if len(b) == 1 else u for b in allowed] for u in BITS for _ in range(8)]
    if not fixed:
        configs += [[rng.choice(b) for b in allowed] for _ in range(batches)]
    net.train()
    with torch.no_grad():
        for bits in (configs if not fixed else [[b[0] for b in allowed]] * 40):
            idx = torch.randint(0, len(xs), (batch,), generator=gen)
            net(xs[idx], bits)
    unused = sum(int(bn.num_batches_tracked) == 0 for bn in bns)
    for bn in bns:
        bn.momentum = 0.1
    return unused


def copy_from_fp32(net, fp_net):
    """Weights from the float32 model; its BN (the (8, 8) row) into every TBN row."""
    with torch.no_grad():
        for lay, src in zip(net.layers, fp_net.layers):
            lay.weight.copy_(src.weight)
            if lay.has_bn:
                bn8 = src.tbn[src.prev_bits.index(8)][src.bits.index(8)]
                for row in lay.tbn:
                    for bn in row:
                        bn.load_state_dict(bn8.state_dict())
            else:
                lay.bias.copy_(src.bias[src.prev_bits.index(8)].expand_as(lay.bias))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("fp32", "meta", "fixed"))
    ap.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    ap.add_argument("--init", help="float32 checkpoint to start from (meta, fixed)")
    ap.add_argument("--bits", type=int, help="fixed: the one bit-width of the middle layers")
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--epochs", default="1,1,3", help="fp32: N; meta/fixed: stage1,stage2,stage3")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--wd-q", type=float, default=1e-4)
    ap.add_argument("--subset", type=int, default=0, help="train on the first N images (smoke runs)")
    ap.add_argument("--recal-batch", type=int, default=128,
                    help="images per configuration when the TBN statistics are re-estimated after "
                         "training (smoke runs use fewer: every configuration still runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--teacher", help="float32 checkpoint to distil from (meta, fixed; default: --init)")
    ap.add_argument("--kd-alpha", type=float, default=0.0,
                    help="weight of the distillation term (0: plain cross-entropy, 1: soft targets only)")
    ap.add_argument("--kd-temp", type=float, default=1.0, help="distillation temperature T")
    ap.add_argument("--no-recal", action="store_true",
                    help="skip the TBN re-estimation after the last stage (short validation trials)")
    ap.add_argument("--stop-after", type=int, help="stop (exit 3) after this many epochs in this call "
                    "(tests of the resume; the checkpoint stays)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    xs, ys = data.load("train")
    xv, yv = data.load("val")
    if args.subset:
        xs, ys, xv, yv = xs[:args.subset], ys[:args.subset], xv[:args.subset], yv[:args.subset]
    epochs = [int(e) for e in args.epochs.split(",")]
    log = []
    if args.mode == "fp32":
        net = build(args.width)
        ckpt = Checkpointer(args, net, log)
        run_stage(net, args, 0, epochs[0], args.lr or 0.1, xs, ys, xv, yv, log, ckpt)
        meta = {"mode": "fp32", "width": args.width, "mid_bits": list(BITS), "stage_epochs": {"0": epochs[0]}}
    else:
        if args.mode == "fixed" and args.bits not in BITS:
            ap.error(f"--bits: expected one of {BITS}")
        ck = torch.load(args.init)
        fp_net = build(ck["width"])
        fp_net.load_state_dict(ck["state"])
        mid = (args.bits,) if args.mode == "fixed" else BITS
        net = build(ck["width"], mid)
        # One forward to give LSQ its initial steps from real data, then the float32 weights.
        copy_from_fp32(net, fp_net)
        with torch.no_grad():
            net(xs[:256], [l[-1] for l in net.layer_bits()])
        fixed = args.bits if args.mode == "fixed" else None
        teacher = None
        if args.kd_alpha > 0:
            tk = torch.load(args.teacher or args.init)
            teacher = build(tk["width"])
            teacher.load_state_dict(tk["state"])
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        ckpt = Checkpointer(args, net, log)
        for stage, n in zip((1, 2, 3), epochs):
            if n:
                run_stage(net, args, stage, n, args.lr or 0.01, xs, ys, xv, yv, log, ckpt, fixed, teacher)
        if not args.no_recal:
            unused = recalibrate(net, xs, fixed, args.seed, batch=args.recal_batch)
            entry = {"recalibrated": True, "unvisited_tbn_rows": unused}
            for b in ([fixed] if fixed else (8, 6, 4, 3, 2)):
                entry[f"val_w{b}"] = evaluate(net, xv, yv, [l[0] if len(l) == 1 else b for l in net.layer_bits()])[0]
            log.append(entry)
            print(json.dumps(entry), flush=True)
        meta = {"mode": args.mode, "width": ck["width"], "mid_bits": list(mid), "fp32_log": ck["log"],
                "stage_epochs": {str(s): n for s, n in zip((1, 2, 3), epochs)},
                "kd": {"alpha": args.kd_alpha, "temperature": args.kd_temp,
                       "teacher": args.teacher or args.init} if args.kd_alpha > 0 else None}
    meta.update(state=net.state_dict(), log=log, args=vars(args), segments=ckpt.segments)
    save_atomic(meta, args.out)
    print(f"train: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
