"""symvg's own Python work per call on the CUDA path, measured on the CPU with NumPy arrays standing in.

    python benchmarks/bench_host.py

Issue 17 asks for ≤ 50 µs of host time per ``gradients(..., backend="cupy")`` call. That total is
symvg's Python (validate once, route, the kernel's key, its arguments) plus CuPy's own work (allocating
G and the status word, the launch, the one 4-byte status read); the latter needs a GPU and is measured by
``bench_gpu.py`` where one is lent. This script times the former, step by step, with the arrays the
steps would see replaced by NumPy arrays of the same shapes: N = 20 sigmoid, M = 1000, shared weights,
``out=`` given, median of 7 repeats of 2000 calls each.
"""

from __future__ import annotations

import os
import timeit

import numpy as np

from symvg.engines import cuda, numeric, registry
from symvg.symbolic.chain import Chain


def main() -> None:
    chain, m = Chain(20, "sigmoid"), 1000
    x, W, G = np.ones(m), np.ones(chain.depth), np.empty((chain.depth, m))
    dt = np.dtype("float64")
    req = numeric._request(chain, x, x, W, None, "numpy", dt, False, "auto", None, None, G, False)
    key, layers = cuda.kernel_key(chain, dt)
    acts = np.array(layers, dtype=np.uint8)
    flags, status = np.empty(m, dtype=np.uint8), np.zeros(1, dtype=np.uint32)
    as_cupy = registry.Request(chain, backend="cupy", dtype=dt, samples=m, inputs=req.inputs, out=G)
    steps = {
        "validate (numeric._request: inputs, dtype, out=)":
            lambda: numeric._request(chain, x, x, W, None, "numpy", dt, False, "auto", None, None, G, False),
        "route (registry.route)": lambda: registry.route(as_cupy),
        "refusal + kernel key (cuda.kernel_key)": lambda: (cuda.refusal(chain), cuda.kernel_key(chain, dt, False)),
        "kernel arguments (cuda.launch_args)": lambda: cuda.launch_args(chain.depth, req.inputs, acts, G, None, flags,
                                                                        status),
    }
    print(f"symvg's Python per CUDA-path call, N = {chain.depth}, M = {m}, NumPy stand-ins; "
          f"load average {os.getloadavg()[0]:.1f}")
    total = 0.0
    for name, f in steps.items():
        t = float(np.median(timeit.repeat(f, number=2000, repeat=7))) / 2000 * 1e6
        total += t
        print(f"  {name:52} {t:6.1f} µs")
    print(f"  {'total (CuPy allocations, launch and status read come on top)':52} {total:6.1f} µs  (target: ≤ 50 µs in all)")


if __name__ == "__main__":
    main()
