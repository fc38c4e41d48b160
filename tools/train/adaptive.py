# SPDX-License-Identifier: MIT
"""Per-sample adaptive precision for a trained .bmx, on the frozen model (docs/adaptive.md).

The C engine (tools/bmx-adapt dump) runs the validation split (the last 5,000 training images)
at every candidate configuration and writes its outputs and the pooled features of one early
node; everything here is computed from those numbers, with the engine's own arithmetic for the
decisions, so a threshold means the same in C:

- cascade: for every chain of 2 or 3 candidate configurations (cheap to rich) and every
  accuracy target, the thresholds that reach the target at the lowest average BitOps, with
  BitOps priced as bmx_adaptive_run() spends them (an escalated run starts at the first layer
  whose bits change). Both confidence measures are calibrated; the one that reaches the default
  target more cheaply is kept ("whichever calibrates better"). The confidence is computed as
  bmx_confidence() does: the margin in float32 (bit-exact), the maximum probability in double.
- policy: one logistic regression per candidate but the richest ("is this configuration enough
  for this sample?", enough = right, or the richest is wrong too) on the standardised pooled
  features, fitted on the first half of the split; the threshold on the scores is calibrated on
  the second half. Standardisation is folded into the exported float32 weights, and scores are
  summed in double in index order as bmx_policy_choose() does.

Writes OUT/adaptive.spec (for bmx-pack --adaptive) and OUT/adaptive.json (the calibration record:
every target's thresholds and validation results, read by tools/abn-report.sh).
"""
import argparse
import itertools
import json
import os
import subprocess
import sys

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
CANDIDATES = ["2", "3", "4", "5", "6", "8"]  # uniform middle-layer bits; first/last stay at 8
POLICY_CANDIDATES = ["2", "3", "4", "6", "8"]
DEFAULT_DROP = 0.1  # default target: validation accuracy of uniform 8 bits minus this (points)
SWEEP_DROPS = [0.0, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5]


def dump(bmx_adapt, model, out, feature_node):
    cmd = [bmx_adapt, "dump", model, f"{DATA}/train-images-idx3-ubyte.gz",
           f"{DATA}/train-labels-idx1-ubyte.gz", "--first", "55000", "--out", out,
           "--feature-node", str(feature_node)]
    for c in CANDIDATES:
        cmd += ["--config", c]
    subprocess.run(cmd, check=True)
    meta = json.load(open(os.path.join(out, "meta.json")))
    n, k = meta["count"], meta["outputs"]
    outputs = np.fromfile(os.path.join(out, "outputs.f32"), np.float32).reshape(len(CANDIDATES), n, k)
    labels = np.fromfile(os.path.join(out, "labels.u8"), np.uint8)
    feats = np.fromfile(os.path.join(out, "features.f32"), np.float32).reshape(n, -1)
    return meta, outputs, labels, feats


def confidence(kind, out):
    """bmx_confidence() over the last axis: 'margin' exact in float32, 'max_prob' in double."""
    s = np.sort(out, axis=-1)
    if kind == "margin":
        return (s[..., -1] - s[..., -2]).astype(np.float32)
    d = out.astype(np.float64)
    return (1.0 / np.exp(d - d.max(axis=-1, keepdims=True)).sum(axis=-1)).astype(np.float32)


def between(sorted_conf, k):
    """A float32 threshold t with exactly the k lowest values < t (None if ties forbid it)."""
    # The file holds finite thresholds: "never" and "always" are the extreme float32 values.
    if k == 0:
        return np.float32(np.finfo(np.float32).min)
    if k == len(sorted_conf):
        return np.float32(np.finfo(np.float32).max)
    lo, hi = sorted_conf[k - 1], sorted_conf[k]
    if not lo < hi:
        return None
    t = np.float32((np.float64(lo) + np.float64(hi)) / 2)
    return t if lo < t <= hi else hi


class Chain:
    """A cascade over candidate indices IDX, priced like bmx_adaptive_run()."""

    def __init__(self, meta, idx):
        cfgs = meta["configs"]
        self.idx = idx
        pos = min(cfgs[a]["first_difference"][b] for a, b in zip(idx, idx[1:]))
        pos = max(pos, 1)
        self.first = cfgs[idx[0]]["bitops_from"][0]
        self.resume = [cfgs[i]["bitops_from"][pos] for i in idx[1:]]

    def evaluate(self, corr, conf, thresholds):
        """(accuracy %, average BitOps) of the cascade with these thresholds, as C decides."""
        n = corr.shape[1]
        final = np.full(n, self.idx[0])
        cost = np.full(n, float(self.first))
        active = np.ones(n, bool)
        for level, t in enumerate(thresholds):
            esc = active & (conf[self.idx[level]] < t)
            final[esc] = self.idx[level + 1]
            cost[esc] += self.resume[level]
            active = esc
        return 100.0 * corr[final, np.arange(n)].mean(), cost.mean()

    def calibrate(self, corr, conf, target, grid=120):
        """The cheapest thresholds reaching TARGET %, or None."""
        n = corr.shape[1]
        need = target * n / 100.0 - 1e-9
        best = None
        c0 = conf[self.idx[0]]
        order0 = np.argsort(c0, kind="stable")
        s0 = c0[order0]
        k1s = range(n + 1) if len(self.idx) == 2 else np.unique(np.linspace(0, n, grid).astype(int))
        for k1 in k1s:
            t0 = between(s0, k1)
            if t0 is None:
                continue
            if len(self.idx) == 2:
                right = corr[self.idx[0]].sum() - corr[self.idx[0], order0[:k1]].sum() + \
                    corr[self.idx[1], order0[:k1]].sum()
                cost = self.first + k1 / n * self.resume[0]
                if right >= need and (best is None or cost < best[0]):
                    best = (cost, [t0])
                continue
            esc = order0[:k1]
            c1 = conf[self.idx[1], esc]
            o1 = np.argsort(c1, kind="stable")
            s1 = c1[o1]
            base = corr[self.idx[0]].sum() - corr[self.idx[0], esc].sum()
            r1 = corr[self.idx[1], esc[o1]]
            r2 = corr[self.idx[2], esc[o1]]
            # k2 lowest of the escalated go on to the third configuration
            right = base + r1.sum() - np.concatenate([[0], np.cumsum(r1)]) + \
                np.concatenate([[0], np.cumsum(r2)])
            cost = self.first + k1 / n * self.resume[0] + np.arange(k1 + 1) / n * self.resume[1]
            for k2 in np.where(right >= need)[0]:  # cost grows with k2: the first is best
                if best is not None and cost[k2] >= best[0]:
                    break
                t1 = between(s1, k2) if k1 else np.float32(0)
                if t1 is not None:
                    best = (cost[k2], [t0, t1])
                    break
        if best is None:
            return None
        acc, cost = self.evaluate(corr, conf, best[1])
        assert acc >= target - 1e-9 and abs(cost - best[0]) < 1, "calibration disagrees with the rule"
        return {"thresholds": [float(t) for t in best[1]], "accuracy": acc, "bitops": cost}


def calibrate_cascade(meta, outputs, labels, u8_acc, u8_bitops):
    corr = outputs.argmax(-1) == labels
    chains = [list(c) for r in (2, 3) for c in itertools.combinations(range(len(CANDIDATES)), r)]
    best = None
    for kind in ("margin", "max_prob"):
        conf = confidence(kind, outputs)
        for idx in chains:
            ch = Chain(meta, idx)
            res = ch.calibrate(corr, conf, u8_acc - DEFAULT_DROP)
            if res and (best is None or res["bitops"] < best[2]["bitops"]):
                best = (kind, idx, res)
            print(f"cascade {kind:8s} {'->'.join(CANDIDATES[i] for i in idx):8s} "
                  f"{'-' if not res else '%.1f%% of u8 BitOps' % (100 * res['bitops'] / u8_bitops)}",
                  file=sys.stderr)
    kind, idx, _ = best
    conf, ch = confidence(kind, outputs), Chain(meta, best[1])
    sweep = []
    for drop in SWEEP_DROPS:
        res = ch.calibrate(corr, conf, u8_acc - drop)
        if res:
            sweep.append({"target": round(u8_acc - drop, 2), **res})
    return {"confidence": kind, "configs": [meta["configs"][i]["bits"] for i in idx],
            "specs": [CANDIDATES[i] for i in idx], "default": best[2] | {"target": u8_acc - DEFAULT_DROP},
            "sweep": sweep}


def fit_logistic(x, y, l2=1e-3, steps=2000, lr=0.5):
    """Plain full-batch gradient descent on the mean log loss (deterministic, seconds)."""
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        g = p - y
        w -= lr * (x.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return w, b


def auc(score, positive):
    """Area under the ROC curve: how well SCORE ranks the positive samples above the others."""
    order = np.argsort(score, kind="stable")
    rank = np.empty(len(score))
    rank[order] = np.arange(len(score))
    p = int(positive.sum())
    n = len(positive) - p
    return float((rank[positive].sum() - p * (p - 1) / 2) / (p * n)) if p and n else float("nan")


def policy_scores(weights, bias, feats):
    """bmx_policy_choose()'s scores: double, bias first, then features in index order."""
    s = np.repeat(bias.astype(np.float64)[None, :], len(feats), axis=0)
    for i in range(feats.shape[1]):
        s += weights[:, i].astype(np.float64)[None, :] * feats[:, i].astype(np.float64)[:, None]
    return s


def policy_choice(scores, t):
    k = scores.shape[1]
    ok = scores >= np.float64(np.float32(t))
    return np.where(ok.any(axis=1), ok.argmax(axis=1), k)


def calibrate_policy(meta, outputs, labels, feats, u8_acc, feature_node):
    cand = [CANDIDATES.index(c) for c in POLICY_CANDIDATES]
    corr = (outputs.argmax(-1) == labels)[cand]
    cost = np.array([meta["configs"][i]["bitops_from"][0] for i in cand], np.float64)
    n = len(labels)
    fit, cal = np.arange(n // 2), np.arange(n // 2, n)
    mean = feats[fit].astype(np.float64).mean(0)
    std = feats[fit].astype(np.float64).std(0) + 1e-6
    xs = (feats.astype(np.float64) - mean) / std
    enough = corr | ~corr[-1][None, :]
    weights, bias = [], []
    for k in range(len(cand) - 1):
        w, b = fit_logistic(xs[fit], enough[k, fit].astype(np.float64))
        weights.append(w / std)                  # folded: score = b' + sum w'_i f_i
        bias.append(b - float((w * mean / std).sum()))
    weights = np.array(weights, np.float32)
    bias = np.array(bias, np.float32)
    scores = policy_scores(weights, bias, feats[cal])
    results = []
    for t in np.unique(np.quantile(scores[:, :].ravel(), np.linspace(0, 1, 201)).astype(np.float32)):
        ch = policy_choice(scores, t)
        acc = 100.0 * corr[ch, cal].mean()
        results.append({"threshold": float(t), "accuracy": acc, "bitops": float(cost[ch].mean())})
    results.append({"threshold": float(np.finfo(np.float32).max), "accuracy": 100.0 * corr[-1, cal].mean(),
                    "bitops": float(cost[-1])})

    def cheapest(target):
        ok = [r for r in results if r["accuracy"] >= target - 1e-9]
        return min(ok, key=lambda r: r["bitops"]) if ok else None
    u8_cal = 100.0 * corr[-1, cal].mean()
    # How well each signal tells "the cheapest candidate is enough" (second half): the policy's
    # score on early features against the cheapest run's own confidence (what a cascade reads).
    separation = {"policy_score_auc": auc(scores[:, 0], enough[0, cal]),
                  "cheap_max_prob_auc": auc(confidence("max_prob", outputs[cand[0], cal]), enough[0, cal]),
                  "cheap_margin_auc": auc(confidence("margin", outputs[cand[0], cal]), enough[0, cal])}
    sweep = [dict(cheapest(u8_cal - d), target=round(u8_cal - d, 2)) for d in SWEEP_DROPS
             if cheapest(u8_cal - d)]
    default = dict(cheapest(u8_cal - DEFAULT_DROP), target=u8_cal - DEFAULT_DROP)
    return {"feature_node": feature_node, "configs": [meta["configs"][i]["bits"] for i in cand],
            "specs": POLICY_CANDIDATES, "weights": weights, "bias": bias, "default": default,
            "sweep": sweep, "curve": results, "separation": separation}


def hexf(x):
    return float(np.float32(x)).hex()


def write_spec(path, cascade, policy):
    """The text bmx-pack --adaptive reads (floats in C99 hex: exact)."""
    conf = {"max_prob": 1, "margin": 2}[cascade["confidence"]]
    d = cascade["default"]
    lines = ["bmx-adaptive 1",
             f"cascade confidence={conf} target={hexf(d['target'])} accuracy={hexf(d['accuracy'])} "
             f"thresholds={','.join(hexf(t) for t in d['thresholds'])}"]
    lines += ["config " + ",".join(map(str, c)) for c in cascade["configs"]]
    p = policy["default"]
    lines.append(f"policy feature_node={policy['feature_node']} threshold={hexf(p['threshold'])} "
                 f"target={hexf(p['target'])} accuracy={hexf(p['accuracy'])}")
    lines += ["config " + ",".join(map(str, c)) for c in policy["configs"]]
    lines += ["weights " + " ".join(hexf(v) for v in row) for row in policy["weights"]]
    lines.append("bias " + " ".join(hexf(v) for v in policy["bias"]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="the trained .bmx (its weights are not changed)")
    ap.add_argument("--bmx-adapt", default="build/tools/bmx-adapt")
    ap.add_argument("--feature-node", type=int, default=3, help="the policy's features (default: "
                    "the max-pool after the 8-bit stem, node 3 of fmnist-resnet)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    meta, outputs, labels, feats = dump(a.bmx_adapt, a.model, os.path.join(a.out), a.feature_node)
    u8 = CANDIDATES.index("8")
    u8_acc = 100.0 * (outputs[u8].argmax(-1) == labels).mean()
    u8_bitops = meta["configs"][u8]["bitops_from"][0]
    cascade = calibrate_cascade(meta, outputs, labels, u8_acc, u8_bitops)
    policy = calibrate_policy(meta, outputs, labels, feats, u8_acc, a.feature_node)
    write_spec(os.path.join(a.out, "adaptive.spec"), cascade, policy)
    record = {"validation": "the last 5,000 training images", "uniform8_accuracy": u8_acc,
              "uniform8_bitops": u8_bitops, "default_target_drop": DEFAULT_DROP,
              "cascade": cascade,
              "policy": {k: v for k, v in policy.items() if k not in ("weights", "bias", "curve")}}
    with open(os.path.join(a.out, "adaptive.json"), "w") as f:
        json.dump(record, f, indent=1)
    c, p = cascade["default"], policy["default"]
    print(f"cascade {'->'.join(cascade['specs'])} on {cascade['confidence']}: validation "
          f"{c['accuracy']:.2f}% at {100 * c['bitops'] / u8_bitops:.1f}% of uniform 8's BitOps "
          f"(target {c['target']:.2f}%)")
    print(f"policy over {','.join(policy['specs'])}: validation (second half) {p['accuracy']:.2f}% "
          f"at {100 * p['bitops'] / u8_bitops:.1f}% (target {p['target']:.2f}%)")


if __name__ == "__main__":
    main()
