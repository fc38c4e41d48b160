#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Medians over several bench/kernels --json runs (the machine may be shared: run it 3+ times).
Usage: summarize_kernels.py RUN1.jsonl RUN2.jsonl ...   Prints one table row per shape and bits."""
import json
import statistics
import sys


def main():
    rows = {}
    for path in sys.argv[1:]:
        for line in open(path):
            if line.startswith("{"):
                r = json.loads(line)
                rows.setdefault((r["m"], r["k"], r["n"], r["impl"] == "onednn", -r["w_bits"]), []).append(r)
    # files from before the int8 peak was measured per path name it vnni_*
    med = lambda rs, key: statistics.median(r.get(key, r.get(key.replace("int8", "vnni"), 0))  # noqa: E731
                                            for r in rs)
    every = sum(rows.values(), [])
    print(f"# {every[0].get('cpu', '?')}; kernels {every[0].get('path', '?')}; medians of {len(sys.argv) - 1} runs")
    print(f"# read bandwidth {med(every, 'read_gbps'):.1f} GB/s, int8 peak {med(every, 'int8_peak_tops'):.3f} TOPS "
          f"({every[0].get('peak_instr', 'vpdpbusd zmm')}; medians of the per-run measurements)")
    print(f"{'M':>4} {'K':>5} {'N':>5} {'impl':<7} {'bits':>4} {'ms':>8} {'onednn':>8} {'openblas':>8} "
          f"{'bound':>8} {'/onednn':>7} {'/bound':>6} {'%peak':>6}")
    for key in sorted(rows):
        rs = rows[key]
        m, k, n = key[:3]
        ms, od = med(rs, "ms"), med(rs, "onednn_int8_ms")
        print(f"{m:>4} {k:>5} {n:>5} {rs[0]['impl']:<7} {rs[0]['w_bits']:>4} {ms:8.4f} {od:8.4f} "
              f"{med(rs, 'openblas_fp32_ms'):8.4f} {med(rs, 'bound_ms'):8.4f} {ms / od if od > 0 else 0:7.2f} "
              f"{med(rs, 'ratio_bound'):6.2f} {100 * med(rs, 'int8_peak_fraction'):5.1f}%")


if __name__ == "__main__":
    main()
