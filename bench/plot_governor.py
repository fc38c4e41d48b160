#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Plot bench/governor --json output: temperature, average bits and expected accuracy over time
for each governor. Usage: plot_governor.py GOVERNOR.jsonl OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
    rows = [r for r in rows if "governor" in r]
    governors = list(dict.fromkeys(r["governor"] for r in rows))
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for g in governors:
        pts = [r for r in rows if r["governor"] == g]
        t = [r["t_s"] for r in pts]
        axes[0].plot(t, [r["temp_c"] for r in pts], label=g)
        axes[1].plot(t, [r["avg_bits"] for r in pts], label=g)
        axes[2].plot(t, [r["expected_accuracy"] for r in pts], label=g)
    axes[0].set_ylabel("temperature (C)")
    axes[1].set_ylabel("average bits")
    axes[2].set_ylabel("expected accuracy (%)")
    axes[2].set_xlabel("simulated time (s); load step at 60 s")
    axes[0].legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
