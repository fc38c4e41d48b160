# SPDX-License-Identifier: MIT
"""Render tools/abn-report.sh's measurements: the table and goal lines between the markers of
docs/adaptive.md, and docs/adaptive.png (accuracy against average BitOps and against measured
time per sample). Usage: abn_report.py RESULTS.tsv RECORD.json ADAPTIVE.md ADAPTIVE.png"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    rows, header = [], None
    for line in open(path):
        if line.startswith("# ") and not header and "kernels" in line:
            header = line[2:].strip()
        if line.startswith("#") or not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        rows.append({"setting": f[0], "acc": float(f[1]), "bitops": float(f[2]), "pct": float(f[3]),
                     "b1": float(f[4]), "b16": float(f[5]), "esc": float(f[6]), "detail": f[7]})
    return header, rows


def label(row, record):
    s = row["setting"]
    kind, _, arg = s.partition(":")
    if kind == "uniform":
        row["kind"] = "uniform"
        return f"uniform {arg} bits"
    if kind == "alloc":
        row["kind"] = "allocator"
        return f"allocator, budget {float(arg) * 100:.0f}% ({row['detail']})"
    base = kind.replace("+noreuse", "")
    row["kind"] = base + (" (no reuse)" if "noreuse" in kind else "")
    rec = record[base]
    if not arg:
        return f"{base}, calibrated default (validation target {rec['default']['target']:.2f}%)" + \
            (", without prefix reuse" if "noreuse" in kind else "")
    ts = [float.fromhex(t) for t in arg.split(",")]
    for sw in rec["sweep"]:
        want = sw["thresholds"] if base == "cascade" else [sw["threshold"]]
        if all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(ts, want)):
            return f"{base}, validation target {sw['target']:.2f}%"
    return f"{base}, thresholds {arg}"


def uniform_curve(rows):
    pts = sorted((r["pct"], r["acc"]) for r in rows if r["kind"] == "uniform")
    return pts


def interp(pts, x):
    """Accuracy of the piecewise-linear uniform curve at BitOps x (None outside its range)."""
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def render(header, rows, record):
    u8 = next(r for r in rows if r["setting"] == "uniform:8")
    pts = uniform_curve(rows)
    lines = [f"Measured by `tools/abn-report.sh` ({header}); latency is the engine's time per "
             "sample on one thread at batch 1 and batch 16, in the same run.", "",
             "| setting | top-1 % | BitOps / sample | % of uniform 8 | us / sample, batch 1 | "
             "us / sample, batch 16 | escalated % | vs uniform curve |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ref = interp(pts, r["pct"])
        vs = "" if r["kind"] == "uniform" or ref is None else f"{r['acc'] - ref:+.2f}"
        lines.append(f"| {r['label']} | {r['acc']:.2f} | {r['bitops'] / 1e6:.1f} M | {r['pct']:.1f} | "
                     f"{r['b1']:.1f} | {r['b16']:.1f} | {r['esc']:.1f} | {vs} |")
    lines.append("")
    adaptive = [r for r in rows if r["kind"] in ("cascade", "policy")]
    ok = [r for r in adaptive if r["acc"] >= u8["acc"] - 0.2 and r["pct"] <= 50]
    lines.append("**Goals** (uniform 8 bits: %.2f%%, %.1f M BitOps, %.1f / %.1f us per sample at "
                 "batch 1 / 16):" % (u8["acc"], u8["bitops"] / 1e6, u8["b1"], u8["b16"]))
    lines.append("")
    if ok:
        best = min(ok, key=lambda r: r["pct"])
        lines.append(f"- adaptive within 0.2 points of uniform 8 at <= 50% of its BitOps: **met** by "
                     f"{best['label']}: {best['acc']:.2f}% at {best['pct']:.1f}% of the BitOps.")
        lines.append(f"- time at that accuracy: {best['b1']:.1f} us (batch 1) and {best['b16']:.1f} us "
                     f"(batch 16) per sample against uniform 8's {u8['b1']:.1f} and {u8['b16']:.1f}: "
                     f"time per sample {100 * (best['b16'] / u8['b16'] - 1):+.0f}% at batch 16 and "
                     f"{100 * (best['b1'] / u8['b1'] - 1):+.0f}% at batch 1, beside "
                     f"{100 - best['pct']:.0f}% fewer BitOps.")
    else:
        lines.append("- adaptive within 0.2 points of uniform 8 at <= 50% of its BitOps: **not met**.")
    for kind in ("cascade", "policy"):
        margins = [r["acc"] - interp(pts, r["pct"]) for r in rows
                   if r["kind"] == kind and interp(pts, r["pct"]) is not None]
        if margins:
            lines.append(f"- {kind} against the uniform curve (accuracy at equal BitOps, linear "
                         f"between uniform points): worst {min(margins):+.2f}, best {max(margins):+.2f} "
                         f"points over {len(margins)} settings: "
                         f"{'**on or above everywhere**' if min(margins) >= 0 else '**not everywhere**'}.")
    return "\n".join(lines)


def plot(rows, path):
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.6))
    style = {"uniform": ("o-", "black"), "allocator": ("s--", "tab:gray"),
             "cascade": ("^-", "tab:red"), "policy": ("D-", "tab:blue"),
             "cascade (no reuse)": ("v", "tab:orange")}
    for kind, (marker, color) in style.items():
        rs = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["pct"])
        if not rs:
            continue
        ax[0].plot([r["pct"] for r in rs], [r["acc"] for r in rs], marker, color=color, label=kind)
        rt = sorted(rs, key=lambda r: r["b16"])
        ax[1].plot([r["b16"] for r in rt], [r["acc"] for r in rt], marker[0], color=color, label=kind)
    for r in rows:
        if r["kind"] == "uniform":
            ax[0].annotate(r["setting"].split(":")[1] + "b", (r["pct"], r["acc"]), fontsize=8,
                           textcoords="offset points", xytext=(4, -10))
    ax[0].set_xlabel("average BitOps per sample, % of uniform 8 bits")
    ax[1].set_xlabel("measured engine time per sample, us (batch 16, one thread)")
    for a in ax:
        a.set_ylabel("top-1 %, Fashion-MNIST test (10,000)")
        a.grid(alpha=0.3)
        a.set_ylim(87.5, 91.5)
    ax[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Per-sample adaptive precision (bundled fmnist-resnet, C engine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    tsv, record_path, md, png = sys.argv[1:]
    record = json.load(open(record_path))
    header, rows = read_rows(tsv)
    for r in rows:
        r["label"] = label(r, record)
    text = open(md).read()
    block = render(header, rows, record)
    new, n = re.subn(r"(<!-- report:begin -->\n).*?(<!-- report:end -->)",
                     lambda m: m.group(1) + block + "\n" + m.group(2), text, flags=re.S)
    if n != 1:
        sys.exit(f"{md}: no <!-- report:begin --> ... <!-- report:end --> block")
    open(md, "w").write(new)
    plot(rows, png)
    print(f"wrote {md} and {png}")


if __name__ == "__main__":
    main()
