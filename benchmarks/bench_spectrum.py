"""Jacobian spectra at initialisation: wall time of ``symvg.theory.spectrum.spectrum`` against width, depth and samples.

    python benchmarks/bench_spectrum.py            # up to width 1024, depth 200 (minutes on a shared machine)
    python benchmarks/bench_spectrum.py --quick    # a small smoke run (seconds)

One sample costs L matrix products, L QR factorisations (orthogonal init only) and one SVD, all n×n: O(L·n³).
Set OPENBLAS_NUM_THREADS=1 on a machine shared with other jobs: threaded BLAS on tiny time slices is slower.
"""

from __future__ import annotations

import argparse
import os
import time

from symvg.theory.spectrum import spectrum

FULL = [(256, 50, 1), (256, 50, 8), (512, 100, 1), (1024, 200, 1)]
QUICK = [(64, 10, 1), (64, 10, 4), (128, 20, 1)]


def run(cases: list[tuple[int, int, int]]) -> list[tuple]:
    rows = []
    for width, depth, samples in cases:
        for init in ("gaussian", "orthogonal"):
            t = time.perf_counter()
            r = spectrum("tanh", width=width, depth=depth, init=init, sigma_w2="1.4242", sigma_b2="0.01",
                         samples=samples)
            rows.append((width, depth, samples, init, time.perf_counter() - t, r.at[-1].log10_condition))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"{'width':>6} {'depth':>6} {'samples':>7} {'init':>11} {'seconds':>8} {'log10 cond':>10}")
    for w, d, s, init, sec, cond in run(QUICK if args.quick else FULL):
        print(f"{w:6} {d:6} {s:7} {init:>11} {sec:8.2f} {cond:10.3g}")


if __name__ == "__main__":
    main()
