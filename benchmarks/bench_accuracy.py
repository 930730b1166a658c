"""float32 accuracy per element: symvg's engines against PyTorch CPU autograd, on the same float32 inputs.

    python benchmarks/bench_accuracy.py          # N = 20, M = 20000, sigmoid and tanh (about 20 s)

The reference is the chunked engine in float64 on the same (float32-representable) inputs: its own
error, ~1e-16 (checked against mpmath in the tests), is far below float32's. For each engine the
relative error |g − ref|/|ref| of every entry with |ref| ≥ 10^-3 of its row's largest (smaller ones are
measured against their row's scale in the first column) is summarised by its median and 99th percentile.
"""

from __future__ import annotations

import numpy as np

from symvg.engines import fused
from symvg.engines.numeric import gradients
from symvg.symbolic.chain import Chain


def _torch(torch, act, x, y, W, B):
    f = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[act]
    n, m = W.shape[0], x.shape[0]
    # one leaf of shape (M,) per layer: per-sample gradients, like symvg's (N, M)
    ws = [torch.tensor(np.broadcast_to(W[k], (m,)).copy(), requires_grad=True) for k in range(n)]
    bs = [torch.tensor(np.broadcast_to(B[k], (m,)).copy()) for k in range(n)]
    h = torch.from_numpy(x)
    for w, b in zip(ws, bs):
        h = f(w * h + b)
    ((h - torch.from_numpy(y)) ** 2).sum().backward()  # symvg's MSE: L = (h_N − y)²
    return np.stack([w.grad.numpy() for w in ws]).astype(np.float64)


def main() -> None:
    try:
        import torch
    except ImportError:
        torch = None
    n, m = 20, 20_000
    rng = np.random.default_rng(1)
    engines = ["fused", "chunked"] if fused.available() else ["chunked"]
    print(f"float32 relative error per element against float64, N = {n}, M = {m}")
    print(f"{'activation':10} {'weights':11} {'engine':8} {'max/rowmax':>11} {'median':>9} {'p99':>9}")
    for act in ("sigmoid", "tanh"):
        for shared in (True, False):
            shape = (n,) if shared else (n, m)
            x, y, W, B = (rng.standard_normal(s).astype(np.float32) for s in ((m,), (m,), shape, shape))
            chain = Chain(n, act)
            ref = gradients(chain, *(a.astype(np.float64) for a in (x, y, W, B)), engine="chunked")
            got = {e: gradients(chain, x, y, W, B, dtype="float32", engine=e).astype(np.float64) for e in engines}
            if torch is not None:
                got["torch"] = _torch(torch, act, x, y, W if W.ndim == 2 else W[:, None], B if B.ndim == 2 else B[:, None])
            scale = np.abs(ref).max(axis=1, keepdims=True)
            big = np.abs(ref) >= 1e-3 * scale
            for name, g in got.items():
                rel = (np.abs(g - ref) / np.abs(np.where(big, ref, 1)))[big]
                print(f"{act:10} {'shared' if shared else 'per-sample':11} {name:8} "
                      f"{(np.abs(g - ref) / scale).max():11.2e} {np.median(rel):9.2e} {np.quantile(rel, 0.99):9.2e}")


if __name__ == "__main__":
    main()
