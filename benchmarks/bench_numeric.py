"""All-layer gradients dL/dw_k of a sigmoid chain: symvg's numeric path against the alternatives.

    python benchmarks/bench_numeric.py            # N = 20, M = 10^6 (about a minute)
    python benchmarks/bench_numeric.py --quick    # a small smoke run (seconds)

One run, the same data for every contender, float64 and float32, weights shared (N,) and per
sample (N, M). Times are the minimum of several repeats (wall clock). Contenders:

  fused        symvg.engines.numeric.gradients(engine="fused"): one numba kernel, 2 threads (symvg's fastest path),
               a fresh (N, M) result each call
  out=         the same writing into one reused result (out=), as a training loop or a sweep would
  chunked      symvg.engines.numeric.gradients(engine="chunked"): the NumPy engine, the better of 1 and 2 threads
  torch        PyTorch CPU autograd, 2 threads, N leaf weight tensors of shape (M,), one backward
  lambdify     sympy.lambdify of each layer's closed form, no cse (timed on fewer samples, scaled up)
  lambdify+cse the same with cse=True (timed on fewer samples, scaled up)
  numpy loop   a hand-written NumPy forward/backward on full-size arrays
  exp floor    N·M calls of exp alone, chunked over the same 2 threads
  memory floor reading W, B (per sample) and writing the (N, M) result once, 2 threads

plus symbolic compile time (derive + compile) at depths 10..10^4, and peak memory (tracemalloc).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import sympy as sp

from symvg.engines import fused
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.engines.numeric import compile as nc_compile
from symvg.engines.numeric import gradients


def best(f, repeats, clock=time.perf_counter):
    """Min over ``repeats`` calls of ``f`` on ``clock`` (wall time by default)."""
    t = float("inf")
    for _ in range(repeats):
        t0 = clock()
        f()
        t = min(t, clock() - t0)
    return t


def best_cpu(f, repeats):
    """Process CPU time, min of repeats: with one thread this is the work done, and it is not inflated
    by other programs on the machine the way wall-clock time is."""
    return best(f, repeats, clock=time.process_time)


def closed_forms(chain):
    """Each layer's dL/dw_k with the forward pass substituted (derive caps closed_form() at depth 12)."""
    out = []
    for k in range(1, chain.depth + 1):
        e = derive(chain, k).product
        for sym, rhs in reversed(chain.forward()):
            e = e.xreplace({sym: rhs})
        out.append(e)
    return out


def lambdify_layers(chain, exprs, cse):
    args = chain.symbols()
    fs = [sp.lambdify(args, e, "numpy", cse=cse) for e in exprs]
    n = chain.depth

    def run(x, y, W, B):
        ws = [W[k] for k in range(n)]
        bs = [B[k] for k in range(n)]
        return [f(x, y, *ws, *bs) for f in fs]
    return run


def numpy_loop(x, y, W, B):
    """The obvious hand-written loop: one full-size array per layer and step."""
    n = W.shape[0]
    hs, ds = [x], []
    for k in range(n):
        h = 1 / (1 + np.exp(-(W[k] * hs[-1] + B[k])))
        hs.append(h)
        ds.append(h * (1 - h))
    d = 2 * (hs[-1] - y)
    g = np.empty((n, x.shape[0]), dtype=x.dtype)
    for k in range(n, 0, -1):
        d = d * ds[k - 1]
        g[k - 1] = d * hs[k - 1]
        d = d * W[k - 1]
    return g


def torch_grad(torch, x, y, W, B):
    """A closure doing forward + backward; the leaf tensors are made once, outside the timing (for shared
    weights they are (M,) tensors filled with w_k, so that torch returns per-sample gradients too)."""
    n, m = W.shape[0], x.shape[0]
    dt = torch.from_numpy(x).dtype
    ws = [(torch.from_numpy(np.ascontiguousarray(W[k])) if W.ndim == 2
           else torch.full((m,), float(W[k]), dtype=dt)).requires_grad_() for k in range(n)]
    bs = [torch.from_numpy(np.ascontiguousarray(B[k])) if B.ndim == 2 else float(B[k]) for k in range(n)]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        for w in ws:
            w.grad = None
        h = xt
        for k in range(n):
            h = torch.sigmoid(ws[k] * h + bs[k])
        ((h - yt) ** 2).sum().backward()
        return [w.grad for w in ws]
    return run


def exp_floor(n, m, dtype, chunk=16384, threads=2):
    """N·M calls of NumPy's exp, on cache-resident chunks, over ``threads`` threads: the transcendental work."""
    a = np.random.default_rng(1).standard_normal(m).astype(dtype)

    def work(first):
        o = np.empty(chunk, dtype=dtype)
        for s in range(first * chunk, m, threads * chunk):
            c = min(chunk, m - s)
            for _ in range(n):
                np.exp(a[s:s + c], out=o[:c])

    def run():
        with ThreadPoolExecutor(threads) as p:
            list(p.map(work, range(threads)))
    return run


def memory_floor(W, B, G, threads=2):
    """Read W and B (when per sample) and write the (N, M) result once, over ``threads`` threads: the traffic
    any all-layer gradient has to move, with no arithmetic to speak of."""
    n, m = G.shape
    step = -(-m // threads)

    def work(t):
        sl = slice(t * step, min((t + 1) * step, m))
        if W.ndim == 2:
            np.add(W[:, sl], B[:, sl], out=G[:, sl])
        else:
            G[:, sl] = W[:, None]

    def run():
        with ThreadPoolExecutor(threads) as p:
            list(p.map(work, range(threads)))
    return run


def gpu_section(chain, n, m, reps, rng):
    """symvg's CuPy backend (one fused ElementwiseKernel per layer) against torch on the same GPU, when
    both a GPU and CuPy are present; inputs already on the device, times synchronised."""
    try:
        from symvg.engines.numeric import array_module

        cupy = array_module("cupy")
    except Exception as e:  # noqa: BLE001 - any reason means "skip", and the reason is printed
        print(f"\nGPU: skipped ({e})")
        return
    try:
        import torch
        has_torch_cuda = torch.cuda.is_available()
    except ImportError:
        has_torch_cuda = False

    def timed(f):
        def run():
            f()
            cupy.cuda.Device().synchronize()
        run()
        return best(run, reps)

    print(f"\nGPU ({cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}), wall clock, inputs on the device:")
    for dtype in ("float64", "float32"):
        for shared in (True, False):
            shape = (n,) if shared else (n, m)
            x, y = rng.standard_normal(m).astype(dtype), rng.standard_normal(m).astype(dtype)
            W, B = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
            dx, dy, dW, dB = (cupy.asarray(v) for v in (x, y, W, B))
            g = cupy.asnumpy(gradients(chain, dx, dy, dW, dB, backend="cupy", dtype=dtype))
            ref = gradients(chain, x, y, W, B, dtype=dtype)
            err = float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))
            t_cupy = timed(lambda: gradients(chain, dx, dy, dW, dB, backend="cupy", dtype=dtype))
            t_torch = float("nan")
            if has_torch_cuda:
                tW, tB = (torch.as_tensor(v, device="cuda") for v in (W, B))
                tx, ty = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")
                ws = [(tW[k].clone() if W.ndim == 2 else torch.full((m,), float(W[k]), dtype=tx.dtype,
                                                                    device="cuda")).requires_grad_() for k in range(n)]

                def torch_run():
                    h = tx
                    for k in range(n):
                        h = torch.sigmoid(ws[k] * h + tB[k])
                    ((h - ty) ** 2).sum().backward()
                    torch.cuda.synchronize()
                torch_run()
                t_torch = best(torch_run, reps)
            w = "shared (N,)" if shared else "per-sample (N,M)"
            print(f"  {dtype:8} {w:17} cupy {t_cupy * 1e3:7.2f} ms   torch cuda {t_torch * 1e3:7.2f} ms   "
                  f"ratio {t_cupy / t_torch:5.2f}x   max rel err vs NumPy {err:.1e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--samples", type=int, default=10**6)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    n, m, reps = (6, 20_000, 2) if a.quick else (a.layers, a.samples, a.repeats)
    depths = (10, 100) if a.quick else (10, 100, 1000, 10000)
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    has_fused = fused.available()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"all-layer gradients, sigmoid chain, N = {n}, M = {m}, min of {reps}; "
          f"{os.cpu_count()} cores, load average {load:.1f} (other work on the machine inflates all times)")
    if not has_fused:
        print("numba is not installed (pip install symvg[fast]): the fused engine is skipped")
    chain = Chain(n, "sigmoid")
    t0 = time.perf_counter()
    exprs = closed_forms(chain)
    lam_plain, lam_cse = lambdify_layers(chain, exprs, False), lambdify_layers(chain, exprs, True)
    print(f"closed forms + lambdify for the lambdify contenders: {time.perf_counter() - t0:.1f} s (not timed below)")
    rng = np.random.default_rng(0)
    rows, kernel_compile = [], {}
    nan = float("nan")
    for dtype in ("float64", "float32"):
        for shared in (True, False):
            shape = (n,) if shared else (n, m)
            x, y = rng.standard_normal(m).astype(dtype), rng.standard_normal(m).astype(dtype)
            W, B = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
            W2, B2 = (W, B) if not shared else (W[:, None], B[:, None])
            ref = numpy_loop(x, y, W2, B2)
            t_fused = c_fused = t_out = c_out = err = nan
            if has_fused:
                t0 = time.perf_counter()
                g = gradients(chain, x, y, W, B, dtype=dtype, engine="fused")
                kernel_compile.setdefault(dtype, time.perf_counter() - t0)
                err = float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))
                t_fused = best(lambda: gradients(chain, x, y, W, B, dtype=dtype, engine="fused", threads=2), reps)
                c_fused = best_cpu(lambda: gradients(chain, x, y, W, B, dtype=dtype, engine="fused", threads=1), reps)
                t_out = best(lambda: gradients(chain, x, y, W, B, dtype=dtype, engine="fused", threads=2, out=g), reps)
                c_out = best_cpu(lambda: gradients(chain, x, y, W, B, dtype=dtype, engine="fused", threads=1, out=g),
                                 reps)
            # the chunked engine: on a loaded machine the GIL hand-offs between ~1 µs NumPy calls can make
            # 1 thread faster than 2, so both are timed and the better kept
            t_chunked = min(best(lambda: gradients(chain, x, y, W, B, dtype=dtype, engine="chunked", threads=th), reps)
                            for th in (1, 2))
            t_loop = best(lambda: numpy_loop(x, y, W2, B2), reps)
            t_exp = best(exp_floor(n, m, dtype), reps)
            c_exp = best_cpu(exp_floor(n, m, dtype, threads=1), reps)
            t_mem = best(memory_floor(W, B, np.empty((n, m), dtype=dtype)), reps)
            c_mem = best_cpu(memory_floor(W, B, np.empty((n, m), dtype=dtype), threads=1), reps)
            t_torch = best(torch_grad(torch, x, y, W, B), reps) if torch else nan
            if torch:
                torch.set_num_threads(1)
                c_torch = best_cpu(torch_grad(torch, x, y, W, B), reps)
                torch.set_num_threads(2)
            else:
                c_torch = nan
            # lambdify contenders on a slice of the samples, scaled linearly (they are elementwise in M)
            ms_plain, ms_cse = max(m // 100, 100), max(m // 10, 100)
            sl = lambda v, k: v if v.ndim == 1 and shared and v.shape[0] == n else v[..., :k]  # noqa: E731
            t_plain = best(lambda: lam_plain(x[:ms_plain], y[:ms_plain], sl(W, ms_plain), sl(B, ms_plain)),
                           max(1, reps // 2)) * m / ms_plain
            t_cse = best(lambda: lam_cse(x[:ms_cse], y[:ms_cse], sl(W, ms_cse), sl(B, ms_cse)), reps) * m / ms_cse
            rows.append((dtype, "shared (N,)" if shared else "per-sample (N,M)", t_fused, t_out, t_chunked, t_torch,
                         t_plain, t_cse, t_loop, t_exp, t_mem, err, c_fused, c_out, c_torch, c_exp, c_mem))
    ms = lambda t: f"{t * 1e3:7.1f}"  # noqa: E731
    print()
    print(f"{'dtype':8} {'weights':17} {'fused':>7} {'out=':>6} {'chunked':>7} {'torch':>7} {'lambdify*':>9} "
          f"{'+cse*':>7} {'np loop':>7} {'exp':>6} {'memory':>6} | {'vs torch':>8} {'vs cse':>6} {'vs exp':>6} "
          f"{'vs floor':>8}  max rel err")
    for d, w, tf, to, tc, tt, tp, tcse, tl, te, tm, err, *_ in rows:
        print(f"{d:8} {w:17} {ms(tf)} {to * 1e3:6.1f} {ms(tc)} {ms(tt)} {tp * 1e3:9.0f} {tcse * 1e3:7.0f} {ms(tl)} "
              f"{te * 1e3:6.1f} {tm * 1e3:6.1f} | {tf / tt:7.2f}x {tcse / tf:5.0f}x {to / te:5.2f}x "
              f"{to / max(te, tm):7.2f}x  {err:.1e}")
    print("milliseconds, wall clock, 2 threads everywhere (chunked: the better of 1 and 2). fused is symvg's")
    print("fastest path (engine='fused', numba), out= the same into a reused result; chunked is its NumPy engine.")
    print("Targets: 'vs torch' = fused/torch ≤ 1.0 (both allocate their result); 'vs cse' = how many times faster")
    print("than lambdify(cse=True) (≥ 10); 'vs exp' = out=/exp ≤ 2 (neither allocates: the zeroing of fresh pages")
    print("is the OS's work, the fused-out= gap); 'vs floor' = out= over the larger of the exp and memory floors.")
    print("* timed on M/100 (plain) and M/10 (cse) samples, scaled up linearly. max rel err: fused against the")
    print("NumPy loop, relative to the largest |g|.")
    if kernel_compile:
        print("one-off numba compilation of the fused kernel (first call, not in the table): "
              + ", ".join(f"{d} {t:.1f} s" for d, t in kernel_compile.items()))

    gpu_section(chain, n, m, reps, rng)

    print("\none thread, CPU time (robust to other load on the machine): fused vs torch.set_num_threads(1),")
    print("and fused with out= vs the exp floor on one thread; the memory floor on one thread beside it (reading")
    print("W and B when per sample, writing the result: work the exp floor does not count)")
    for d, w, *_, cf, co, ct, ce, cm in rows:
        print(f"  {d:8} {w:17} fused {cf * 1e3:5.1f} ms  torch {ct * 1e3:5.1f} ms  ratio {cf / ct:4.2f}x  |  "
              f"out= {co * 1e3:5.1f} ms  exp {ce * 1e3:4.1f} ms  ratio {co / ce:4.2f}x  |  memory {cm * 1e3:4.1f} ms  "
              f"out=/(exp + memory) {co / (ce + cm):4.2f}x")

    print("\nsymbolic time per depth, sigmoid: derive(chain, 1) (symvg.symbolic.derive) and numeric.compile(chain):")
    for depth in depths:
        c = Chain(depth, "sigmoid")
        t0 = time.perf_counter()
        derive(c, 1)
        t1 = time.perf_counter()
        nc_compile(c)
        t2 = time.perf_counter()
        print(f"  depth {depth:>6}: derive {t1 - t0:7.3f} s   compile {t2 - t1:7.3f} s   total {t2 - t0:7.3f} s")
    print("  (the sigmoid's local forms were proved once, earlier in this run, and are cached; the numba kernel")
    print("  does not depend on the depth, so its one-off compilation above is not repeated per depth)")

    x, y = rng.standard_normal(m), rng.standard_normal(m)
    W, B = rng.standard_normal(n), rng.standard_normal(n)
    print()
    for engine in ("fused", "chunked") if has_fused else ("chunked",):
        gradients(chain, x[:10], y[:10], W, B, engine=engine)  # compiled outside the measurement
        tracemalloc.start()
        g = gradients(chain, x, y, W, B, engine=engine)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # the warm-up above ran 10 samples, so this call allocates the fused kernel's block scratch anew,
        # where tracemalloc sees it (NumPy reports its allocations to tracemalloc)
        extra = " (incl. the kernel's block scratch)" if engine == "fused" else ""
        print(f"peak memory, {engine}, N = {n}, M = {m}, float64, shared weights: "
              f"{peak / 1e6:.1f} MB = {peak / g.nbytes:.2f}× the {g.nbytes / 1e6:.1f} MB result (target < 4×){extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
