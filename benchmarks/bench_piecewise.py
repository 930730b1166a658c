"""The chunked (NumPy) engine on piecewise activations: φ, φ' written piece by piece (copyto where=, today)
against numpy.select (lambdify's printing, before), with PyTorch CPU autograd beside them, in one run.

    python benchmarks/bench_piecewise.py             # N = 20, M = 10^6, float64, shared weights
    python benchmarks/bench_piecewise.py --quick     # a smoke run (seconds)

Times are the minimum of interleaved repeats (wall clock, one thread for symvg and torch alike). The two
symvg routes are the same engine in the same process; only how a piecewise φ, φ' is written differs
(``symvg.engines.kernels.piecewise_writers`` is made to answer None for the select route), and their
results are checked equal.
"""

from __future__ import annotations

import argparse
import os
import time
from unittest import mock

import numpy as np

from symvg.engines import kernels
from symvg.engines.numeric import gradients
from symvg.symbolic.chain import Chain

ACTIVATIONS = ("relu", "leaky_relu", "hard_sigmoid", "elu", "selu")
TORCH = {"relu": "relu", "leaky_relu": "leaky_relu", "hard_sigmoid": "hardsigmoid", "elu": "elu", "selu": "selu"}


def _torch_run(torch, name, x, y, W, B):
    f = getattr(torch.nn.functional, TORCH[name])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    # one leaf of shape (M,) per layer, as bench_numeric.py: per-sample gradients, like symvg's (N, M)
    ws = [torch.full((len(x),), float(w), dtype=torch.float64, requires_grad=True) for w in W]

    def run():
        h = xt
        for w, b in zip(ws, B):
            h = f(w * h + float(b))
        (0.5 * (h - yt) ** 2).sum().backward()
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    n, m, reps = (6, 20_000, 2) if a.quick else (20, 10**6, a.repeats)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"chunked engine, N = {n}, M = {m}, float64, shared weights, 1 thread, min of {reps} interleaved; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'activation':13} {'pieces':>9} {'select':>9} {'torch':>9} | {'select/pieces':>13} {'pieces/torch':>12}")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(m), rng.standard_normal(m)
    W, B = rng.uniform(0.8, 1.2, n), 0.1 * rng.standard_normal(n)
    for name in ACTIVATIONS:
        chain = Chain(n, name)

        def pieces():
            return gradients(chain, x, y, W, B, engine="chunked", threads=1)

        def select():
            with mock.patch.object(kernels, "piecewise_writers", lambda act: None):
                return gradients(chain, x, y, W, B, engine="chunked", threads=1)
        assert np.array_equal(pieces(), select()), name
        runs = {"pieces": pieces, "select": select}
        if torch is not None:
            runs["torch"] = _torch_run(torch, name, x, y, W, B)
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(reps):
            for k, f in runs.items():
                t0 = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - t0)
        tt = best.get("torch", float("nan"))
        print(f"{name:13} {best['pieces'] * 1e3:7.1f}ms {best['select'] * 1e3:7.1f}ms {tt * 1e3:7.1f}ms | "
              f"{best['select'] / best['pieces']:12.2f}x {best['pieces'] / tt:11.2f}x")


if __name__ == "__main__":
    main()
