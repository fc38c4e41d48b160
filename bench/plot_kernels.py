#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Plot bench/kernels --json output: time against weight bits per shape, with oneDNN int8 and
the roofline bound of each bit-width. Usage: plot_kernels.py KERNELS.jsonl OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    shapes = sorted({(r["m"], r["k"], r["n"]) for r in rows})
    fig, axes = plt.subplots(1, len(shapes), figsize=(4 * len(shapes), 3.6), squeeze=False)
    for ax, (m, k, n) in zip(axes[0], shapes):
        ours = sorted((r["w_bits"], r["ms"], r["bound_ms"]) for r in rows
                      if (r["m"], r["k"], r["n"]) == (m, k, n) and r["impl"] == "bitmix")
        onednn = next(r["ms"] for r in rows if (r["m"], r["k"], r["n"]) == (m, k, n)
                      and r["impl"] == "onednn")
        bits = [b for b, _, _ in ours]
        ax.plot(bits, [t for _, t, _ in ours], "o-", label="bitmix (bit-planes)")
        ax.plot(bits, [b for _, _, b in ours], "--", color="gray", label="roofline bound")
        if onednn > 0:
            ax.axhline(onednn, color="tab:red", label="oneDNN int8 (8 bits)")
        ax.set_title(f"M={m} K={k} N={n}" + (" (DRAM)" if m == 1 and k == 4096 else ""))
        ax.set_xlabel("weight = activation bits")
        ax.set_ylabel("ms (median)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
