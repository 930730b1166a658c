"""float32 generic activations on the fused engine against PyTorch CPU autograd: time and accuracy, one run.

    python benchmarks/bench_generic32.py [gelu,silu,softplus,elu]

N = 20, M = 10^6, float32, shared weights, one thread for both (CPU time, min of 5). The first call's time
includes compiling the kernel unless it is on disk. The error is the median relative error per element against
the chunked engine in float64 on the same inputs, over entries at least 10^-3 of their row's largest.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from symvg.engines.numeric import gradients
from symvg.symbolic.chain import Chain


def cpu_min(f, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best


def main(names: str = "gelu,silu,softplus,elu") -> None:
    import torch
    torch.set_num_threads(1)
    F = torch.nn.functional
    fns = {"gelu": F.gelu, "silu": F.silu, "softplus": lambda v: torch.logaddexp(v, torch.zeros_like(v)),
           "elu": F.elu}
    n, m = 20, 10**6
    rng = np.random.default_rng(0)
    for act in names.split(","):
        c = Chain(n, act)
        x, y = rng.standard_normal(m).astype(np.float32), rng.standard_normal(m).astype(np.float32)
        W, B = rng.uniform(0.5, 1.5, n).astype(np.float32), (0.1 * rng.standard_normal(n)).astype(np.float32)
        t = time.process_time()
        g = gradients(c, x, y, W, B, dtype="float32", engine="fused", threads=1)
        first = time.process_time() - t
        fused = cpu_min(lambda: gradients(c, x, y, W, B, dtype="float32", engine="fused", threads=1))
        ws = [torch.full((m,), float(w), requires_grad=True) for w in W]

        def autograd():
            h = torch.from_numpy(x)
            for w, b in zip(ws, B):
                h = fns[act](w * h + float(b))
            ((h - torch.from_numpy(y)) ** 2).sum().backward()  # symvg's MSE: L = (h_N - y)^2
        ref = gradients(c, *(a.astype(np.float64) for a in (x, y, W, B)), engine="chunked")
        big = np.abs(ref) > 1e-3 * np.abs(ref).max(axis=1, keepdims=True)
        err = np.median((np.abs(g - ref) / np.abs(np.where(big, ref, 1)))[big])
        tt = cpu_min(autograd)
        print(f"{act:9} first call {first:5.1f} s   fused {fused * 1e3:6.1f} ms   torch {tt * 1e3:6.1f} ms   "
              f"fused/torch {fused / tt:4.2f}   median rel err {err:.2e}")


if __name__ == "__main__":
    main(*sys.argv[1:])
