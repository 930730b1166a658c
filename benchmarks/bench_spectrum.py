"""Jacobian spectra at initialisation: wall time of ``symvg.theory.spectrum.spectrum`` against width, depth and samples.

    python benchmarks/bench_spectrum.py              # widths 256/1024 × depths 50/200, one BLAS thread and the default
    python benchmarks/bench_spectrum.py --threads 1  # one setting only
    python benchmarks/bench_spectrum.py --quick      # a small smoke run (seconds)

One sample costs L matrix products W·J (2n³ flops each) and one SVD of J per recorded depth; the
orthogonal init adds one Haar matrix per layer, formed from Householder reflectors without a QR
factorisation (dorgqr, 4n³/3 flops). So the gaussian run is at the floor of L dense products; the
orthogonal one measured 2-2.5× that (dorgqr runs at about half a matrix product's speed). The last table compares the two Haar routes on one n×n matrix.
Threaded BLAS on a machine shared with other jobs can be slower than one thread: both are shown. The CPU
seconds (this process, all threads) are the work done; on a loaded machine the wall time is larger.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Iterator

FULL = [(256, 50, 1), (256, 200, 1), (1024, 50, 1), (1024, 200, 1), (256, 50, 8)]
QUICK = [(64, 10, 1), (64, 10, 4), (128, 20, 1)]


def run(cases: list[tuple[int, int, int]]) -> Iterator[tuple]:
    """(width, depth, samples, init, wall seconds, CPU seconds of this process, log10 cond) per case, as measured."""
    from symvg.theory.spectrum import spectrum

    spectrum("tanh", width=8, depth=2, init="orthogonal")  # imports and compiled expressions: not timed
    for width, depth, samples in cases:
        for init in ("gaussian", "orthogonal"):
            t, c = time.perf_counter(), time.process_time()
            r = spectrum("tanh", width=width, depth=depth, init=init, sigma_w2="1.4242", sigma_b2="0.01",
                         samples=samples)
            yield (width, depth, samples, init, time.perf_counter() - t, time.process_time() - c,
                   r.at[-1].log10_condition)


def haar_routes(widths: list[int], repeat: int = 3) -> list[tuple]:
    """Seconds per n×n Haar matrix: NumPy QR of a Gaussian + sign fix, against the reflector route."""
    import numpy as np

    from symvg.theory.spectrum import haar_householder, haar_qr

    rng, rows = np.random.default_rng(0), []
    for n in widths:
        t = time.perf_counter()
        for _ in range(repeat):
            haar_qr(np, rng.standard_normal((1, n, n)))
        qr = (time.perf_counter() - t) / repeat
        t = time.perf_counter()
        for _ in range(repeat):
            haar_householder(rng, n, 1)
        rows.append((n, qr, (time.perf_counter() - t) / repeat))
    return rows


def report(quick: bool) -> None:
    cases = QUICK if quick else FULL
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} on {os.cpu_count()} CPUs")
    print(f"{'width':>6} {'depth':>6} {'samples':>7} {'init':>11} {'wall s':>8} {'CPU s':>8} {'log10 cond':>10}",
          flush=True)
    for w, d, s, init, sec, cpu, cond in run(cases):
        print(f"{w:6} {d:6} {s:7} {init:>11} {sec:8.2f} {cpu:8.2f} {cond:10.3g}", flush=True)
    print(f"{'width':>6} {'QR route s':>10} {'reflector route s':>17}")
    for n, qr, hh in haar_routes(sorted({c[0] for c in cases})):
        print(f"{n:6} {qr:10.3f} {hh:17.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", choices=["1", "default"], default=None,
                    help="one BLAS setting only (default: both, each in a fresh interpreter)")
    args = ap.parse_args()
    if args.threads is not None:
        report(args.quick)
        return
    for threads in ("1", "default"):
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(var, None)
            if threads == "1":
                env[var] = "1"
        # BLAS reads its thread count once, at import: a fresh interpreter per setting
        subprocess.run([sys.executable, __file__, "--threads", threads] + (["--quick"] if args.quick else []),
                       env=env, check=True)


if __name__ == "__main__":
    main()
