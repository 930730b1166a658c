"""All-layer gradients on a GPU: symvg's whole-chain CUDA kernel against its peers, and the memory floor.

    python benchmarks/bench_gpu.py                 # N = 20 and 100 sigmoid, M = 10^7, float32/float64,
                                                   # shared/per-sample weights (~1-2 min on an H200)
    python benchmarks/bench_gpu.py --quick         # M = 10^5, N = 20: a smoke run, seconds
    python benchmarks/bench_gpu.py --agree         # every activation vs torch CUDA float64 autograd

One process, inputs already on the device, min of ``--repeats`` synchronised calls (wall clock):

  floor        a device-to-device copy moving the same bytes as the gradient must (read x, y, W, B,
               write the (N, M) result): half that many bytes copied, since a copy reads and writes
  symvg chain  symvg.engines.cuda.gradients_cuda: one kernel for the whole chain, writing into out=
  symvg fresh  the same returning a fresh result
  symvg layer  symvg.engines.numeric.gradients(backend="cupy"): one CuPy ElementwiseKernel per layer (today's path)
  torch        PyTorch eager CUDA autograd, weights one (N, M) leaf (shared weights expanded, so torch also
               returns per-sample gradients)
  compile      torch.compile(torch.func.grad(loss)) (only where --compile-depths/--compile-dtypes say:
               compiling takes tens of seconds per shape)
  jax          jax.jit(jax.grad(loss)) (shared weights: jit(vmap(grad)) over samples), where JAX has a GPU

Ratios: each time over the floor, and the fastest peer over symvg's kernel. Where CuPy or a CUDA device is
missing the script prints one line and exits 0: nothing is measured, and no number is claimed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def gpu_or_none() -> tuple[object | None, str]:
    """(cupy, device name), or (None, why not)."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy finds no CUDA device"
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    except Exception as e:  # CUDARuntimeError, or a driver too old for this CuPy
        return None, f"no usable CUDA device ({type(e).__name__}: {str(e)[:80]})"
    return cupy, name.decode() if isinstance(name, bytes) else str(name)


def timed(f, sync, repeats: int) -> float:
    """Min over ``repeats`` synchronised calls, after one warm-up call (compilation, caches)."""
    f()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def moved_bytes(n: int, m: int, itemsize: int, per_sample: bool) -> int:
    """What any method must move: read x, y (M each), W and B (N·M each per sample, N shared), write N·M."""
    return itemsize * (2 * m + (2 * n * m if per_sample else 2 * n) + n * m)


def copy_floor(cupy, nbytes: int, sync, repeats: int) -> float:
    """Time of a device-to-device copy reading nbytes/2 and writing nbytes/2 bytes."""
    half = max(nbytes // 2, 1)
    src, dst = cupy.empty(half, dtype=cupy.uint8), cupy.empty(half, dtype=cupy.uint8)
    src.fill(1)
    return timed(lambda: dst.data.copy_from_device(src.data, half), sync, repeats)


# ----------------------------------------------------------------------------- peers


def torch_eager(torch, act, tx, ty, tW, tB, residual=False, bce=False):
    """``run()`` → dL/dW of shape (N, M) by eager autograd; W is one leaf so torch returns per-sample grads."""
    W = tW.detach().clone().requires_grad_()

    def run():
        h = tx
        for k in range(W.shape[0]):
            z = W[k] * h + tB[k]
            if bce and k == W.shape[0] - 1 and not residual:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(z, ty, reduction="sum")
                return torch.autograd.grad(loss, [W])[0]
            h = h + act(z) if residual else act(z)
        return torch.autograd.grad(((h - ty) ** 2).sum(), [W])[0]
    return run


def torch_compiled(torch, tx, ty, tW, tB):
    def loss(W, x, y, B):
        h = x
        for k in range(W.shape[0]):
            h = torch.sigmoid(W[k] * h + B[k])
        return ((h - y) ** 2).sum()
    g = torch.compile(torch.func.grad(loss))
    return lambda: g(tW, tx, ty, tB)


def jax_grad(jax, x, y, W, B):
    jnp = jax.numpy

    def loss(W, B, x, y):
        h = x
        for k in range(W.shape[0]):
            h = jax.nn.sigmoid(W[k] * h + B[k])
        return jnp.sum((h - y) ** 2)
    if W.ndim == 2:
        g = jax.jit(jax.grad(loss))
    else:  # shared weights: per-sample gradients, one sample at a time under vmap
        g = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, None, 0, 0)))
    def on_device(v):  # CuPy → JAX without a trip through the host where DLPack allows
        try:
            return jax.dlpack.from_dlpack(v)
        except Exception:
            return jax.device_put(np.asarray(v.get()))
    dW, dB, dx, dy = (on_device(v) for v in (W, B, x, y))
    return lambda: g(dW, dB, dx, dy).block_until_ready()


def optional(name: str):
    try:
        return __import__(name)
    except Exception:
        return None


# ----------------------------------------------------------------------------- the benchmark


def bench(cupy, args) -> None:
    from symvg.symbolic.chain import Chain
    from symvg.engines.cuda import gradients_cuda

    torch = optional("torch")
    torch = torch if torch is not None and torch.cuda.is_available() else None
    jax = optional("jax") if args.jax else None
    try:
        jax = jax if jax is not None and any(d.platform == "gpu" for d in jax.devices()) else None
    except RuntimeError:  # no backend JAX can start
        jax = None
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
    rng = cupy.random.default_rng(0)
    overhead(cupy, gradients_cuda, Chain(20, "sigmoid"))
    print(f"{'N':>4} {'dtype':8} {'weights':10} {'floor':>7} {'chain':>7} {'fresh':>7} {'layer':>7} {'torch':>7} "
          f"{'compile':>7} {'jax':>7} | {'chain/floor':>11} {'peer/chain':>10}   (ms; max rel diff chain vs layer)")
    configs = [(n, dt, ps) for n in args.depths for dt in args.dtypes for ps in (False, True)]
    # torch.compile's first call compiles for tens of seconds: those rows last, so a time limit cuts only them
    configs.sort(key=lambda c: c[0] in args.compile_depths and c[1] in args.compile_dtypes)
    for n, dtype, per_sample in configs:
        t, err = measure(cupy, torch, jax, args, rng, n, dtype, per_sample)
        peers = [t[k] for k in ("torch", "compile", "jax") if k in t]
        cells = " ".join(f"{t[k] * 1e3:7.2f}" if k in t else f"{'-':>7}" for k in
                         ("floor", "chain", "fresh", "layer", "torch", "compile", "jax"))
        peer = f"{min(peers) / t['chain']:9.1f}x" if peers else f"{'-':>10}"
        print(f"{n:4d} {dtype:8} {'per-sample' if per_sample else 'shared':10} {cells} | "
              f"{t['chain'] / t['floor']:10.2f}x {peer}   {err:.1e}", flush=True)
    print("Targets (issue 17): chain/floor <= 1.5 and peer/chain >= 5.")


def measure(cupy, torch, jax, args, rng, n: int, dtype: str, per_sample: bool) -> tuple[dict, float]:
    """Times (s) of every contender on one configuration, and symvg's two paths' max row-relative difference."""
    from symvg.symbolic.chain import Chain
    from symvg.engines.cuda import gradients_cuda
    from symvg.engines.numeric import gradients

    chain, m, reps, sync = Chain(n, "sigmoid"), args.samples, args.repeats, cupy.cuda.Device().synchronize
    shape = (n, m) if per_sample else (n,)
    # drawn on the device: 10^9 host normals would take longer than the whole benchmark
    x, y = (rng.standard_normal(m, dtype=dtype) for _ in range(2))
    W, B = (rng.standard_normal(shape, dtype=dtype) for _ in range(2))
    G = cupy.empty((n, m), dtype=dtype)
    t = {"floor": copy_floor(cupy, moved_bytes(n, m, G.itemsize, per_sample), sync, reps)}
    t["chain"] = timed(lambda: gradients_cuda(chain, x, y, W, B, dtype=dtype, out=G), sync, reps)
    t["fresh"] = timed(lambda: gradients_cuda(chain, x, y, W, B, dtype=dtype), sync, reps)
    t["layer"] = timed(lambda: gradients(chain, x, y, W, B, backend="cupy", dtype=dtype), sync, reps)
    ref = gradients(chain, x, y, W, B, backend="cupy", dtype=dtype)
    gradients_cuda(chain, x, y, W, B, dtype=dtype, out=G)
    err = float((cupy.abs(G - ref) / cupy.abs(ref).max(axis=1, keepdims=True)).max())
    del ref, G
    if torch is not None:
        tx, ty = (torch.as_tensor(v, device="cuda") for v in (x, y))
        tW, tB = (torch.as_tensor(v if per_sample else cupy.broadcast_to(v[:, None], (n, m)).copy(), device="cuda")
                  for v in (W, B))
        t["torch"] = timed(torch_eager(torch, torch.sigmoid, tx, ty, tW, tB), torch.cuda.synchronize, reps)
        if n in args.compile_depths and dtype in args.compile_dtypes:
            try:
                t["compile"] = timed(torch_compiled(torch, tx, ty, tW, tB), torch.cuda.synchronize, reps)
            except Exception as e:  # an inductor failure is a result too, not a crash
                print(f"     torch.compile failed: {type(e).__name__}: {str(e)[:100]}")
        del tx, ty, tW, tB
        torch.cuda.empty_cache()
    if jax is not None:
        try:
            t["jax"] = timed(jax_grad(jax, x, y, W, B), lambda: None, reps)
        except Exception as e:  # as above
            print(f"     jax failed: {type(e).__name__}: {str(e)[:100]}")
    del x, y, W, B
    cupy.get_default_memory_pool().free_all_blocks()
    return t, err


def overhead(cupy, gradients_cuda, chain) -> None:
    """Host time per call with a tiny M (the kernel is then a few µs): what a launch costs on the CPU."""
    try:
        from cupyx.profiler import benchmark
    except ImportError:
        return
    x = cupy.ones(1000)
    G = cupy.empty((chain.depth, 1000))
    r = benchmark(gradients_cuda, (chain, x, x, cupy.ones(chain.depth)), {"out": G}, n_repeat=200, n_warmup=10)
    print(f"host time per call (N = {chain.depth}, M = 1000): cpu {np.median(r.cpu_times) * 1e6:.0f} µs, "
          f"gpu {np.median(r.gpu_times) * 1e6:.0f} µs (target: cpu <= 50 µs)")


# ----------------------------------------------------------------------------- agreement with torch


def torch_activations(torch):
    F = torch.nn.functional
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z,
            "leaky_relu": lambda z: F.leaky_relu(z, 0.01), "elu": F.elu, "selu": F.selu, "gelu": F.gelu,
            "silu": F.silu, "erf": torch.erf,
            # F.hardsigmoid multiplies by a float32 1/6 (6e-7 off in float64); this is exact, kinks as symvg's
            "hard_sigmoid": lambda z: torch.where((z > -3) & (z < 3), z / 6 + 0.5, (z >= 3).to(z.dtype)),
            # F.softplus switches to z above its threshold (20): off by e^-20 there; this is exact
            "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z))}


def agree(cupy, args) -> int:
    """Every catalogue activation (plain, residual; MSE, and BCE for the sigmoid) against torch CUDA float64
    autograd: max |symvg − torch| over each row's largest |torch|. Returns the number of failures."""
    from symvg.symbolic.activations import names
    from symvg.symbolic.chain import Chain
    from symvg.engines.cuda import gradients_cuda

    torch = optional("torch")
    if torch is None or not torch.cuda.is_available():
        print("agree: torch with CUDA is not installed here: no agreement check")
        return 0
    acts = torch_activations(torch)
    rng = np.random.default_rng(1)
    n, m, fails = 20, args.agree_samples, 0
    for name in names():
        for residual, loss in ((False, "mse"), (True, "mse")) + (((False, "bce"),) if name == "sigmoid" else ()):
            scale = 0.3 if residual else 1.0  # residual chains grow with depth: keep h moderate
            x, W, B = (cupy.asarray(scale * rng.standard_normal(s)) for s in (m, (n, m), (n, m)))
            y = cupy.asarray(rng.uniform(0, 1, m) if loss == "bce" else rng.standard_normal(m))
            g = gradients_cuda(Chain(n, name, loss=loss, residual=residual), x, y, W, B, allow_underflow=True)
            tx, ty, tW, tB = (torch.as_tensor(v, device="cuda") for v in (x, y, W, B))
            want = cupy.asarray(torch_eager(torch, acts[name], tx, ty, tW, tB, residual, loss == "bce")().detach())
            rows = cupy.maximum(cupy.abs(want).max(axis=1, keepdims=True), 1e-300)  # a ReLU row may be all 0
            err = float((cupy.abs(g - want) / rows).max())
            ok = err <= args.agree_tol
            fails += not ok
            print(f"  {name:13} {'residual' if residual else 'plain':8} {loss}  max rel (row scale) {err:.1e}  "
                  f"{'ok' if ok else 'FAIL'}", flush=True)
    print(f"agreement with torch CUDA float64 autograd (N = {n}, M = {m}, tolerance {args.agree_tol:g}): "
          f"{'all ok' if not fails else f'{fails} FAILED'}")
    return fails


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="M = 10^5, N = 20, 3 repeats: a smoke run")
    p.add_argument("--samples", type=float, default=1e7)
    p.add_argument("--depths", type=int, nargs="+", default=[20, 100])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--compile-depths", type=int, nargs="*", default=[20])
    p.add_argument("--compile-dtypes", nargs="*", default=["float32"])
    p.add_argument("--no-jax", dest="jax", action="store_false")
    p.add_argument("--agree", action="store_true", help="only the agreement check against torch CUDA float64")
    p.add_argument("--agree-samples", type=int, default=100_000)
    p.add_argument("--agree-tol", type=float, default=1e-13)
    args = p.parse_args(argv)
    cupy, device = gpu_or_none()
    if cupy is None:
        print(f"bench_gpu: {device}: nothing measured, no GPU number claimed")
        return 0
    args.samples = int(args.samples)
    if args.quick:
        args.samples, args.depths, args.repeats, args.compile_depths = 10**5, [20], 3, []
    print(f"device: {device}; CuPy {cupy.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.agree:
        return 1 if agree(cupy, args) else 0
    bench(cupy, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
